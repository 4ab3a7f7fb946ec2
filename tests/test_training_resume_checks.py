"""fader-train: a finished run resumed on other data is refused before "nothing to train"; a
fine-tuned attribute keeps the --init model's slider range (tiny 32 px models, in process)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.model_file import load_model
from training import cli
from training.trainer import CHECKPOINT_NAME, load_checkpoint

from conftest import make_tiny_model

TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1", "--batch-size", "4",
        "--val-size", "4"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(folder: Path, n: int, seed: int, start: int = 0) -> list:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        out.append(folder / f"{i}.png")
        cv2.imwrite(str(out[-1]), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    return out


def _folder(root: Path, n: int = 6, seed: int = 0) -> Path:
    for k, v in enumerate(("no", "yes")):
        _images(root / v, n, seed + k)
    return root


def _main(args, capsys) -> tuple:
    code = cli.main(args)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-step run on Smiling/{no,yes}: (data, run folder)."""
    tmp = tmp_path_factory.mktemp("finished")
    data = _folder(tmp / "Smiling")
    assert cli.main(["--data", str(data), *TINY, "--steps", "2", "--out", str(tmp / "run"),
                     "--cache-dir", str(tmp / "cache")]) == 0
    return data, tmp / "run"


# -- other data on --resume: an error, not "nothing to train" ----------------------------------

def test_a_finished_run_resumed_on_another_attribute_is_refused(finished, tmp_path, capsys):
    """QA: `--resume --steps 10` on a Glasses folder of a finished Smiling run exited 0 with "the
    run is already at step 10 … nothing to train" (the training window then showed the old model as
    the result)."""
    _, run = finished
    before = (run / CHECKPOINT_NAME).read_bytes()
    other = _folder(tmp_path / "Glasses", seed=5)
    code, err = _main(["--data", str(other), *TINY, "--resume", "--steps", "2", "--out", str(run),
                       "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "nothing to train" not in err
    assert "--resume: the run trains 'Smiling', not the data's 'Glasses'" in err
    assert (run / CHECKPOINT_NAME).read_bytes() == before


@pytest.mark.parametrize("steps", [["--steps", "2"], []])
def test_a_finished_run_resumed_on_changed_images_is_refused(finished, tmp_path, capsys, steps):
    data, run = finished
    changed = tmp_path / "Smiling"
    _folder(changed)                                   # the run's images
    _images(changed / "yes", 3, seed=9, start=100)    # and three more
    code, err = _main(["--data", str(changed), *TINY, "--resume", *steps, "--out", str(run),
                       "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "nothing to train" not in err
    assert "the data differ from the run's (3 images added since the run started)" in err
    assert not (tmp_path / "cache").exists()   # refused before any preprocessing


def test_the_runs_own_data_still_has_nothing_to_train_without_preprocessing(finished, tmp_path, capsys):
    data, run = finished
    code, err = _main(["--data", str(data), *TINY, "--resume", "--steps", "2", "--out", str(run),
                       "--cache-dir", str(tmp_path / "new_cache")], capsys)
    assert code == 0 and "the run is already at step 2 (>= --steps 2); nothing to train" in err
    assert not (tmp_path / "new_cache").exists()   # the data were checked by name, not preprocessed again


# -- --init keeps the model's slider ranges ------------------------------------------------------

@pytest.fixture(scope="module")
def ranged_model(tmp_path_factory) -> Path:
    """A tiny model whose ranges are tuned (not the default -1..2), like the shipped one's."""
    return make_tiny_model(tmp_path_factory.mktemp("ranged") / "ranged.fader", attrs=(
        ("Smiling", ("no", "yes"), (-0.25, 1.0)), ("Male", ("no", "yes"), (0.0, 1.0)),
        ("Hair", ("black", "blond", "brown"), (0.0, 1.5))))


def test_fine_tuning_keeps_the_models_slider_ranges(tmp_path, ranged_model, capsys):
    """QA: fine-tuning the default model on a Smiling folder gave Smiling the default range -1..2
    (the shipped model's is -0.25..1)."""
    imgs = _images(tmp_path / "d", 12, seed=3)
    table = tmp_path / "d" / "labels.csv"
    # Smiling (the model's, in another spelling of its values) and Bangs (new)
    table.write_text("file,Smiling,Bangs\n" + "".join(f"{p.name},{'YES' if i % 2 else 'NO'},{'yes' if i % 3 else 'no'}\n"
                                                     for i, p in enumerate(imgs)))
    out = tmp_path / "ft"
    code, err = _main(["--data", str(table), "--init", str(ranged_model), *TINY, "--steps", "2", "--out", str(out),
                       "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, err
    ranges = {x.name: x.range for x in load_model(out / "model.fader").attributes}
    assert ranges == {"Smiling": (-0.25, 1.0), "Male": (0.0, 1.0), "Hair": (0.0, 1.5), "Bangs": (-1.0, 2.0)}
    # the run's checkpoint holds them too, so a resumed run exports them
    assert {x["name"]: tuple(x["range"]) for x in load_checkpoint(out / CHECKPOINT_NAME)["attributes"]}["Smiling"] \
        == (-0.25, 1.0)
    code, err = _main(["--data", str(table), *TINY, "--steps", "3", "--resume", "--eval-every", "1", "--out", str(out),
                       "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 0, err
    assert load_model(out / "model.fader").attributes[0].range == (-0.25, 1.0)
