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


# ----------------------------------------------------------------------------------------------
# the evaluation and the slider classifier command open the data once

_COUNT_OPENS = r"""
import json, sys
from pathlib import Path
from core.attributes import Attribute
from training.datasets import open_dataset
from training.evaluation import labelled_data

root = sys.argv[1]
seen = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and str(args[0]).startswith(root):
        seen.append(event)
sys.addaudithook(hook)
model = [Attribute("Smiling", ("no", "yes")), Attribute("Male", ("no", "yes"))]
out = {}
for data in sys.argv[2:]:
    seen.clear()
    open_dataset([data], None, every_column=True)
    once = len(seen)
    seen.clear()
    ds = labelled_data([data], model)[0]
    out[Path(data).name] = [once, len(seen), [a.name for a in ds.attributes]]
print(json.dumps(out))
"""


def test_data_labelling_some_of_the_models_attributes_are_opened_once(tmp_path):
    """A labeled folder Smiling/ and a table labelling Smiling and Bangs, measured with a model of
    Smiling and Male: each is read as one opening of the data reads it (it was read three times:
    with the model's attributes, refused; with all of its own; with the model's it has)."""
    import json
    import subprocess
    import sys
    from pathlib import Path
    folder = value_folders(tmp_path / "Smiling", {"no": 3, "yes": 3})
    table = tmp_path / "table"
    table.mkdir()
    (table / "labels.csv").write_text("file,Smiling,Bangs\n" + "".join(
        f"../Smiling/{v}/{p.name},{int(v == 'yes')},{i % 2}\n"
        for v in ("no", "yes") for i, p in enumerate(sorted((folder / v).iterdir()))))
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", _COUNT_OPENS, str(tmp_path), str(folder), str(table / "labels.csv")],
                       cwd=repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    counts = json.loads(r.stdout)
    assert counts["Smiling"][0] > 0 and counts["labels.csv"][0] > 0
    assert counts == {"Smiling": [counts["Smiling"][0]] * 2 + [["Smiling"]],
                      "labels.csv": [counts["labels.csv"][0]] * 2 + [["Smiling"]]}


def test_the_data_opened_once_are_the_data_opened_with_the_models_attributes(tmp_path):
    """What the evaluation measures on is unchanged: the model's attributes the table labels, in the
    model's order, with their labels, and the notes on those columns alone (a column of other values
    whose order is a guess is noted only where it is read)."""
    from core.attributes import Attribute
    from training.datasets import open_dataset
    value_folders(tmp_path / "img", {"a": 4})
    rows = sorted((tmp_path / "img" / "a").iterdir())
    (tmp_path / "labels.csv").write_text("file,Bangs,Mood,Smiling,Id\n" + "".join(
        f"img/a/{p.name},{i % 2},{'calm' if i < 2 else 'glad'},{'happy' if i % 3 else 'sad'},{i}\n"
        for i, p in enumerate(rows)))
    model = [Attribute("Smiling", ("no", "yes")), Attribute("Male", ("no", "yes")), Attribute("Bangs", ("no", "yes"))]
    ds, spelt, notes = evaluation.labelled_data([str(tmp_path / "labels.csv")], model)
    want = open_dataset([str(tmp_path / "labels.csv")], "Smiling,Bangs")
    assert (spelt, notes) == ({}, [])
    assert [(a.name, a.values) for a in ds.attributes] == [(a.name, a.values) for a in want.attributes]
    assert ds.items == want.items and ds.description == want.description
    assert ds.notes == want.notes and len(ds.notes) == 1 and "'happy'" in ds.notes[0]   # Mood's is left out
    full = [Attribute("Bangs", ("no", "yes")), Attribute("Smiling", ("happy", "sad"))]
    ds, _, _ = evaluation.labelled_data([str(tmp_path / "labels.csv")], full)
    want = open_dataset([str(tmp_path / "labels.csv")], "Bangs,Smiling")
    assert ds.items == want.items and ds.notes == want.notes and ds.attributes == want.attributes


# ----------------------------------------------------------------------------------------------
# image lists: one reading of their lines, one message for an image not in the data

def test_an_image_list_naming_images_not_in_the_data_says_what_a_line_takes(tmp_path):
    """datasets.listed_indices (the evaluation's --val-list) refuses bare file names with one of them
    and the forms a line takes (it said only '2 of its 2 images are not in the data'; the evaluation
    checked the list a second time to say more), and takes a full path as a run's val_files.txt
    lists it."""
    from core.errors import FaderError
    from training.datasets import listed_indices, open_dataset
    data = value_folders(tmp_path / "Smiling", {"no": 2, "yes": 2})
    ds = open_dataset([str(data)])
    with pytest.raises(FaderError) as e:
        listed_indices(ds, ["IMG_00000.png", " IMG_01001.png", ""], "names.txt")
    assert str(e.value) == (f"names.txt: 2 of its 2 images are not in the data (e.g. IMG_00000.png); name each "
                            f"image by its path relative to {data} (e.g. no/IMG_00000.png) or by its full path, as "
                            f"a run's val_files.txt lists it (e.g. {data / 'no' / 'IMG_00000.png'})")
    moved = f"/where/it/was/Smiling/yes/IMG_01001.png"
    assert [ds.items[i].path for i in listed_indices(ds, ["no/IMG_00000.png", moved], "val_files.txt")] == \
        [str(data / "no" / "IMG_00000.png"), str(data / "yes" / "IMG_01001.png")]


def test_a_continuation_counts_as_trained_only_the_images_its_train_files_name(tmp_path):
    """--continue warns of validation images the model trained on, reading train_files.txt as the
    evaluation reads a --val-list: each line as the one image its longest ending names. A table
    listing photos/001.png and 001.png, whose model trained on photos/001.png only, was warned that
    001.png (a validation image) was one it trained on."""
    from training import cli
    from training.datasets import open_dataset
    noise = value_folders(tmp_path / "noise", {"a": 3})
    table = tmp_path / "table"
    (table / "photos").mkdir(parents=True)
    for i, p in enumerate(sorted((noise / "a").iterdir())):
        p.rename(table / ("photos" if i == 2 else ".") / f"00{i % 2 + 1}.png")
    (table / "labels.csv").write_text("file,Smiling\n001.png,1\n002.png,0\nphotos/001.png,1\n")
    ds = open_dataset([str(table / "labels.csv")])
    paths = [it.path for it in ds.items]
    run = tmp_path / "old_run"
    run.mkdir()
    (run / "train_files.txt").write_text("/data/then/photos/001.png\n/data/then/002.png\n")
    a = cli.build_parser().parse_args(["--data", str(table), "--continue", str(run / "model.fader"),
                                       "--out", str(tmp_path / "run")])
    a.given = set()
    said = []
    val = np.asarray([paths.index(str(table / "001.png"))])
    cli._warn_validating_on_trained(a, ds, paths, val, None, said.append)
    assert said == []
    val = np.asarray([paths.index(str(table / "photos" / "001.png")), paths.index(str(table / "001.png"))])
    cli._warn_validating_on_trained(a, ds, paths, val, None, said.append)
    assert len(said) == 1 and "warning: 1 of the 2 validation images are images the model trained on" in said[0]


# ----------------------------------------------------------------------------------------------
# the training commands put torch's thread count back when they return

def test_the_training_commands_called_in_process_leave_the_callers_thread_count(tmp_path, capsys):
    """fader-train, the evaluation, the judge and the slider classifier command set torch's thread
    count for their work; called in-process (a test, a program), each left its caller at that count
    (here: an error after the count was set). They put the caller's back."""
    from core.engine import usable_cores
    from training import classifier, cli, judge
    own = usable_cores() + 1   # none of the commands' counts
    missing = str(tmp_path / "missing.fader")
    data = str(value_folders(tmp_path / "Smiling", {"no": 2, "yes": 2}))
    # fader-train refuses a missing --data before it sets the count: its data here are read, and
    # refused once preprocessed (every 'yes' image unreadable), after the count was set
    unreadable = str(value_folders(tmp_path / "Unreadable" / "Smiling", {"no": 3, "yes": 3}, junk={"yes": 3}))
    commands = {
        "fader-train": lambda: cli.main(["--data", unreadable, "--out", str(tmp_path / "run"), "--steps", "2",
                                         "--img-size", "32", "--val-size", "1", "--threads", "2",
                                         "--cache-dir", str(tmp_path / "cache")]),
        "evaluation": lambda: evaluation.main(["--model", missing, "--data", data]),
        "judge": lambda: judge.main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "j.safetensors"),
                                     "--threads", "2"]),
        "classifier": lambda: classifier.main(["--model", missing, "--data", data, "--out", str(tmp_path / "o.fader"),
                                               "--threads", "2"]),
    }
    left = {}
    for name, command in commands.items():
        torch.set_num_threads(own)
        code, said = command(), capsys.readouterr().err
        assert code == 2, said
        if name == "fader-train":   # refused where the count is set, not before
            assert "Smiling = 'yes' has no usable training image" in said, said
        left[name] = torch.get_num_threads()
    assert left == dict.fromkeys(commands, own)
