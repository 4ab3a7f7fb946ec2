"""QA round 48c, evaluation and `fader-desktop info`: a model of several attributes (the default
model, any --init fine-tune) could not be measured on a labeled folder of one attribute; a
--val-list of unreadable images gave figures of 0 images that looked real, and one of bare file
names was refused without saying what it takes; `info` did not say what a model was trained on."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import make_tiny_model
from training import cli, evaluation

TINY = ["--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1", "--batch-size", "8"]
SMILING_ONLY = (("Smiling", ("no", "yes"), (-1.0, 2.0)),)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _folder(root: Path, n: int = 6, broken: int = 0) -> Path:
    """A labeled folder Smiling/{no,yes} of n small images each; the last `broken` 'no' ones unreadable."""
    rng = np.random.default_rng(0)
    for value in ("no", "yes"):
        (root / value).mkdir(parents=True)
        for i in range(n):
            f = root / value / f"IMG_{value}{i:02d}.png"
            if value == "no" and i >= n - broken:
                f.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
            else:
                cv2.imwrite(str(f), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    return root


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory):
    """A real fine-tune (--init) of a 3-attribute model on a labeled folder of one: (run, data, init model)."""
    tmp = tmp_path_factory.mktemp("fine_tune")
    init = make_tiny_model(tmp / "tiny.fader")
    data = _folder(tmp / "Smiling", n=10, broken=2)
    run = tmp / "run"
    assert cli.main(["--data", str(data), "--init", str(init), "--out", str(run), "--steps", "2", "--eval-every", "2",
                     "--cache-dir", str(tmp / "cache"), *TINY]) == 0
    return run, data, init


def _evaluate(capsys, *args) -> tuple:
    capsys.readouterr()
    rc = evaluation.main([*args, "--device", "cpu"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_fine_tune_is_measured_on_the_attribute_its_labeled_folder_labels(fine_tune, tmp_path, capsys):
    """Item 1: a model of Smiling, Male and Hair on the labeled folder Smiling was refused ('a labeled
    folder defines one attribute named after the folder ... --attr Smiling,Male,Hair does not match').
    It is measured on Smiling; Male and Hair are said to be left out, and have no per-attribute figures
    (a fine-tune's are circular: its data never labelled them)."""
    run, data, _ = fine_tune
    rc, out, err = _evaluate(capsys, "--model", str(run / "model.fader"), "--data", str(data),
                             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 0, err
    res = json.loads(out)
    assert res["measured"] == ["Smiling"] and res["not_measured"] == ["Male", "Hair"]
    for figure in ("swap_accuracy", "paste_swap_accuracy", "others_unchanged", "classifier_accuracy"):
        assert list(res[figure]) == ["Smiling"], figure
    assert res["swap_mean"] == res["swap_accuracy"]["Smiling"]
    assert res["n_images"] >= 1 and res["psnr"] > 0
    assert "measured Smiling; left out Male, Hair (not labelled by the data)" in err
    # the images measured are the run's own validation images, drawn again
    assert "as the model's training drew it" in res["split"], res["split"]


def test_a_val_list_of_only_unreadable_images_is_an_error(tmp_path, capsys):
    """Item 2: a --val-list naming one broken image printed n_images 0, PSNR 0.0, others unchanged
    1.0 and exited 0. It is a one-line error naming the image and why."""
    model = make_tiny_model(tmp_path / "smiling.fader", attrs=SMILING_ONLY)
    data = _folder(tmp_path / "Smiling", n=3, broken=1)
    listed = tmp_path / "bl2.txt"
    listed.write_text(str(data / "no" / "IMG_no02.png") + "\n")
    rc, out, err = _evaluate(capsys, "--model", str(model), "--data", str(data), "--val-list", str(listed),
                             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 2 and out == "", out
    assert err.count("\n") == 1 and err.startswith("python -m training.evaluation: error: the listed image could not "
                                                   f"be read: {data / 'no' / 'IMG_no02.png'} ("), err


def test_a_val_list_of_bare_file_names_says_what_it_takes(tmp_path, capsys):
    """Item 2: a --val-list of file names without their value folder was refused as '2 of its 2
    images are not in the data', naming neither one nor the forms a list takes."""
    model = make_tiny_model(tmp_path / "smiling.fader", attrs=SMILING_ONLY)
    data = _folder(tmp_path / "Smiling", n=3)
    listed = tmp_path / "names.txt"
    listed.write_text("IMG_no00.png\nIMG_yes01.png\n")
    rc, out, err = _evaluate(capsys, "--model", str(model), "--data", str(data), "--val-list", str(listed),
                             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 2 and out == ""
    assert err == (f"python -m training.evaluation: error: {listed}: 2 of its 2 images are not in the data (e.g. "
                   f"IMG_no00.png); name each image by its path relative to {data} (e.g. no/IMG_no00.png) or by its "
                   f"full path, as a run's val_files.txt lists it (e.g. {data / 'no' / 'IMG_no00.png'})\n"), err
    # the forms it names are taken
    listed.write_text(f"no/IMG_no00.png\n{data / 'yes' / 'IMG_yes01.png'}\n")
    rc, out, err = _evaluate(capsys, "--model", str(model), "--data", str(data), "--val-list", str(listed),
                             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 0, err
    assert json.loads(out)["n_images"] == 2


def _info(capsys, *args) -> str:
    from fader_desktop.cli import main
    capsys.readouterr()
    assert main(["info", *args]) == 0
    return capsys.readouterr().out


def test_info_says_what_a_fine_tune_was_trained_on(fine_tune, capsys):
    """Item 3: `info` showed 'training: step 2; validation on N images: …' but not the data, its
    counts, nor the model it was fine-tuned from (all in --json). Item 4: the swap accuracy it showed
    took in Male and Hair, which the init model's classifier labelled (circular 1.000 figures)."""
    run, data, init = fine_tune
    meta = json.loads(_info(capsys, "--model", str(run / "model.fader"), "--json"))["training"]
    text = _info(capsys, "--model", str(run / "model.fader"))
    lines = text.splitlines()
    n_train, n_val = meta["n_train"], meta["n_val"]
    assert n_train + n_val == 18   # the premise: 20 images of which 2 unreadable
    # the counts are of the images used (session 49: they counted the 2 unreadable 'no' files too)
    assert f"  trained on: labeled folders {data} (no: 8, yes: 10), {n_train} training / {n_val} validation " \
           "images (2 skipped)" in lines, text
    assert f"  fine-tuned from {init}; Male, Hair labelled by its classifier, not by the data" in lines, text
    val = json.loads(_info(capsys, "--model", str(run / "model.fader"), "--json"))["metrics"]["validation"]
    own = val["swap_accuracy"]["Smiling"]
    assert f"swap accuracy {own:.3f} on Smiling (Male, Hair: not measured, labelled by the classifier it was " \
           "fine-tuned from)," in text, text


def test_info_says_what_the_default_model_was_trained_on(capsys):
    """Item 3, the shipped model: CelebA, its counts and the images its run excluded."""
    lines = _info(capsys).splitlines()
    trained = [x for x in lines if x.startswith("  trained on: ")]
    assert len(trained) == 1 and trained[0].startswith("  trained on: CelebA "), lines
    assert trained[0].endswith(", 7,849 training / 300 validation images (27 excluded)"), trained
    assert not any("fine-tuned" in x or "continued from" in x for x in lines)


def test_an_untrained_model_of_several_attributes_on_a_labeled_folder(tiny_model_path, labeled_folder, tmp_path,
                                                                       capsys):
    """Item 1 with the conftest model (Smiling, Male, Hair) on real faces labelled Smiling; a folder
    naming none of its attributes is refused so."""
    rc, out, err = _evaluate(capsys, "--model", str(tiny_model_path), "--data", str(labeled_folder),
                             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 0, err
    res = json.loads(out)
    assert list(res["swap_accuracy"]) == ["Smiling"] and res["not_measured"] == ["Male", "Hair"]
    bangs = labeled_folder.rename(labeled_folder.parent / "Bangs")
    rc, out, err = _evaluate(capsys, "--model", str(tiny_model_path), "--data", str(bangs),
                             "--cache-dir", str(tmp_path / "cache"))
    assert rc == 2 and err == "python -m training.evaluation: error: the data label none of the model's attributes " \
                              "(Smiling, Male, Hair); they label Bangs\n", err
