"""fader-train's messages: option problems found before the data is read, a checkpoint given as a
model, a misspelt CelebA attribute, a resume with nothing to train, the skipped images' list."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from training import cli
from training.trainer import CHECKPOINT_NAME

TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1"]


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _folder(root: Path, n: int = 12, n_corrupt: int = 0) -> Path:
    """root/Bangs/{no,yes} of n random 40x40 images each, plus n_corrupt unreadable ones in yes/."""
    rng = np.random.default_rng(0)
    for v in ("no", "yes"):
        for i in range(n):
            p = root / "Bangs" / v / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    for i in range(n_corrupt):
        (root / "Bangs" / "yes" / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root / "Bangs"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One tiny 2-step run on a folder with 2 unreadable images: (data, run folder, its stderr lines)."""
    tmp = tmp_path_factory.mktemp("base")
    data = _folder(tmp / "data", n_corrupt=2)
    lines: list = []
    torch.set_num_threads(1)
    code = cli.run(["--data", str(data), *TINY, "--steps", "2", "--out", str(tmp / "run"),
                    "--cache-dir", str(tmp / "cache"), "--val-size", "4"], log=lines.append)
    assert code == 0, lines
    return data, tmp / "run", lines


def _train(args, capsys) -> tuple:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_an_architecture_too_deep_for_the_image_size_is_refused_before_the_data_is_read(tmp_path, capsys):
    data = _folder(tmp_path)
    code, err = _train(["--data", str(data), *TINY, "--n-layers", "6", "--steps", "2",
                        "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "n_layers (6) must be at most" in err and "--n-layers" in err and "--img-size 32" in err
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists()


def test_an_out_in_a_read_only_place_is_refused_before_the_data_is_read(tmp_path, capsys, monkeypatch):
    data = _folder(tmp_path)
    (tmp_path / "ro").mkdir()
    real = os.access
    # as a read-only mount or a folder of another user (root, running the tests, may write anywhere)
    monkeypatch.setattr(cli.os, "access", lambda p, m: False if Path(p) == tmp_path / "ro" else real(p, m))
    code, err = _train(["--data", str(data), *TINY, "--steps", "2", "--out", str(tmp_path / "ro" / "a" / "run"),
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and f"cannot write in {tmp_path / 'ro'}" in err and "choose a folder you can write to" in err
    assert not (tmp_path / "cache").exists()


def test_continue_with_steps_not_above_the_models_is_refused_before_the_data_is_read(base, tmp_path, capsys):
    data, run, _ = base
    code, err = _train(["--data", str(data), "--continue", str(run / "model.fader"), "--steps", "2", "--quiet",
                        "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "must exceed the model's 2 steps" in err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("option", ["--init", "--continue"])
def test_the_runs_checkpoint_given_as_a_model_names_resume_and_export_last(base, tmp_path, capsys, option):
    data, run, _ = base
    code, err = _train(["--data", str(data), option, str(run / CHECKPOINT_NAME), "--steps", "5", "--quiet",
                        "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "is a fader-train checkpoint" in err
    assert f"--resume --out {run}" in err and f"--export-last --out {run}" in err and "import-reference" not in err


def test_a_misspelt_celeba_attribute_suggests_the_right_one(tmp_path, capsys):
    (tmp_path / "img_align_celeba").mkdir()
    rows = []
    for i in range(4):
        name = f"{i:06d}.jpg"
        cv2.imwrite(str(tmp_path / "img_align_celeba" / name), np.zeros((218, 178, 3), np.uint8))
        rows.append(f"{name} {1 if i % 2 else -1} -1")
    (tmp_path / "list_attr_celeba.txt").write_text("4\nSmiling Male\n" + "\n".join(rows) + "\n")
    code, err = _train(["--data", str(tmp_path / "list_attr_celeba.txt"), "--attr", "smiling", *TINY, "--steps", "2",
                        "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "unknown CelebA attribute(s) ['smiling']" in err and "did you mean 'Smiling'?" in err


@pytest.mark.parametrize("steps", [["--steps", "1"], []])
def test_resume_of_a_run_already_at_its_steps_says_there_is_nothing_to_train(base, capsys, steps):
    data, run, _ = base
    before = (run / CHECKPOINT_NAME).stat().st_mtime_ns
    code, err = _train(["--data", str(data), *TINY, "--resume", *steps, "--out", str(run),
                        "--cache-dir", str(run.parent / "cache"), "--val-size", "4"], capsys)
    target = steps[1] if steps else "2"
    assert code == 0 and f"the run is already at step 2 (>= --steps {target}); nothing to train" in err
    assert (run / CHECKPOINT_NAME).stat().st_mtime_ns == before


def test_the_skipped_images_are_listed_in_the_run_folder(base):
    data, run, lines = base
    listed = (run / "skipped.txt").read_text().splitlines()
    assert sorted(x.split("\t")[0] for x in listed) == [str(data / "yes" / "bad0.png"), str(data / "yes" / "bad1.png")]
    assert all(len(x.split("\t")) == 2 and x.split("\t")[1] for x in listed)
    assert any("skipped 2 image(s)" in x and f"listed in {run / 'skipped.txt'}" in x for x in lines)
