"""Session 50, training review items: the evaluation reads each validation image with the slider
classifier once (a fine-tune's data labelling some attributes read them twice), with the same figures."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.model_file import load_model
from core.networks import Classifier
from tests.conftest import make_tiny_model, value_folders
from training import evaluation

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smiling_only(tmp_path_factory):
    """The conftest model (Smiling, Male, Hair) and a labeled folder that labels Smiling alone."""
    tmp = tmp_path_factory.mktemp("s50")
    return make_tiny_model(tmp / "tiny.fader", seed=3), value_folders(tmp / "Smiling", {"no": 12, "yes": 12})


def _images(folder, size: int) -> np.ndarray:
    from training.cache import open_cache
    paths = sorted(str(p) for p in folder.rglob("*.png"))
    return np.array(open_cache(paths, size, False, None, progress=False).images)


@torch.no_grad()
def _read_apart(clf, images, attrs, measured_labels, measured) -> np.ndarray:
    """The labels as the evaluation made them before: a pass of its own over the images (128 at a
    time) for the attributes the data lack, the data's labels for the others."""
    out = np.concatenate([evaluation.predict_indices(clf(evaluation.to_input(images[s:s + 128], "cpu")), attrs).numpy()
                          for s in range(0, len(images), 128)]).astype(np.int64)
    out[:, measured] = measured_labels
    return out


def test_the_readings_taken_in_the_scoring_pass_give_the_figures_of_a_pass_of_their_own(smiling_only, tmp_path):
    """The figures of a fine-tune's data (Smiling labelled, Male and Hair read by the classifier) are
    the same whether the readings come from the pass that scores the classifier or from one of their
    own, over more images than one batch."""
    model_path, _ = smiling_only
    model = load_model(model_path)
    value_folders(tmp_path / "more", {"no": 75, "yes": 75})
    images = _images(tmp_path / "more", model.image_size)
    attrs, clf = model.attributes, model.classifier.eval()
    with torch.no_grad():   # a random classifier reads every image alike: its readings spread, centred
        last = clf.proj_layers[-1]
        last.weight.mul_(1000)
        last.bias.zero_()
        last.bias.sub_(clf(evaluation.to_input(images, "cpu")).mean(0))
    smiling = (np.arange(len(images)) % 2)[:, None]
    apart = _read_apart(clf, images, attrs, smiling, [0])
    assert all(len(set(apart[:, j])) > 1 for j in (1, 2))   # the readings vary: the labels they set matter
    ae = model.autoencoder.eval()
    before = evaluation.evaluate(ae, clf, attrs, images, apart, "cpu", measured=[0], batch=64)
    unread = np.zeros_like(apart)
    unread[:, 0] = smiling[:, 0]
    after = evaluation.evaluate(ae, clf, attrs, images, unread, "cpu", measured=[0], batch=64, read_unmeasured=True)
    assert after == before
    assert (unread[:, 1:] == 0).all()   # the caller's array is left as it was


def test_the_measurement_reads_each_validation_image_with_the_classifier_once(smiling_only, tmp_path):
    """`python -m training.evaluation` on data labelling Smiling alone: the classifier reads each image
    once, each reconstruction once, and each Smiling swap twice (the decode, and the decode laid on
    the input): 4 readings per image, not 5 (a second pass over the inputs for Male and Hair)."""
    model_path, data = smiling_only
    read = []

    def count(module, inputs, output):
        if isinstance(module, Classifier):
            read.append(inputs[0].shape[0])
    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        res = evaluation.measure_model(model_path, [str(data)], device="cpu", cache_dir=tmp_path / "cache")
    finally:
        hook.remove()
    assert res["not_measured"] == ["Male", "Hair"] and res["n_images"] > 0
    assert sum(read) == 4 * res["n_images"]
