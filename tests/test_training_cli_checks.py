"""fader-train's checks and messages around a run: where its folder may be, values without images,
what --resume keeps, a run stopped early, the licence a trained-on model carries, option problems
found before the data is read, a checkpoint given as a model, a misspelt CelebA attribute, the
skipped images' list (tiny 32 px models)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.model_file import load_model, save_model
from training import cli
from training.trainer import CHECKPOINT_NAME, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1"]


# one intra-op thread (conftest): tiny tensors, a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _folder(root: Path, n: int = 12, corrupt_yes: bool = False, n_corrupt: int = 0, seed: int = 0) -> Path:
    """root/Bangs/{no,yes} of n random 40x40 images each (the yes images unreadable if corrupt_yes),
    plus n_corrupt unreadable ones in yes/."""
    rng = np.random.default_rng(seed)
    for v in ("no", "yes"):
        for i in range(n):
            p = root / "Bangs" / v / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            if corrupt_yes and v == "yes":
                p.write_bytes(b"\x89PNG\r\n\x1a\n not really")
            else:
                cv2.imwrite(str(p), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    for i in range(n_corrupt):
        (root / "Bangs" / "yes" / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root / "Bangs"


def _train(args, capsys) -> tuple:
    code = cli.main(args)
    return code, capsys.readouterr().err


def test_a_run_folder_inside_the_data_is_refused_before_any_work(tmp_path, capsys):
    data = _folder(tmp_path)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    code, err = _train(["--data", str(data), *TINY, "--steps", "2", "--out", str(data / "run1"),
                        "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2
    assert "is inside --data" in err and "Traceback" not in err
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before   # nothing written into the data


def test_a_value_without_usable_training_images_is_an_error(tmp_path, capsys):
    data = _folder(tmp_path, corrupt_yes=True)
    code, err = _train(["--data", str(data), *TINY, "--steps", "2", "--out", str(tmp_path / "run"),
                        "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"], capsys)
    assert code == 2
    assert "Bangs = 'yes' has no usable training image" in err
    assert not (tmp_path / "run" / "model.fader").exists()


def test_resume_keeps_the_runs_cadence_and_names_the_options_it_ignores(tmp_path, capsys):
    data = _folder(tmp_path)
    out = tmp_path / "run"
    common = ["--data", str(data), *TINY, "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"]
    code, err = _train(common + ["--steps", "4", "--eval-every", "2", "--ckpt-every", "2"], capsys)
    assert code == 0, err
    code, err = _train(common + ["--resume", "--steps", "8", "--lr", "0.1", "--seed", "5"], capsys)
    assert code == 0, err
    # evaluated every 2 steps after the resume too (the default would have been 1000)
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").read_text().splitlines()] == [2, 4, 6, 8]
    assert "ignored: --lr 0.1 (the run's: 0.0002), --seed 5 (the run's: 0)" in err
    assert load_checkpoint(out / CHECKPOINT_NAME)["config"]["lr"] == 0.0002


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_it_again(tmp_path, capsys):
    data = _folder(tmp_path)
    out = tmp_path / "run"
    common = ["--data", str(data), *TINY, "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
              "--val-size", "4", "--steps", "3"]
    assert _train(common, capsys)[0] == 0
    (out / CHECKPOINT_NAME).unlink()   # as where a kill came during the evaluation classifier's training
    code, err = _train(common + ["--resume"], capsys)
    assert code == 0, err
    assert "stopped before its first checkpoint; starting it again" in err
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 3


def test_bad_seed_is_refused_before_any_work(tmp_path, capsys):
    data = _folder(tmp_path)
    for seed in ("-1", str(2 ** 40)):
        code, err = _train(["--data", str(data), *TINY, "--steps", "2", "--seed", seed,
                            "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")], capsys)
        assert code == 2 and "--seed must be in" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


def test_a_model_trained_from_another_carries_its_licence(tmp_path, capsys):
    data = _folder(tmp_path)
    code, err = _train(["--data", str(data), *TINY, "--steps", "2", "--out", str(tmp_path / "base"),
                        "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"], capsys)
    assert code == 0, err
    base = load_model(tmp_path / "base" / "model.fader")
    assert base.meta["license"] == "same terms as the training images (user data)"
    terms = "CC BY-NC 4.0 (a test model's own terms)"
    save_model(replace(base, meta={**base.meta, "license": terms}), tmp_path / "licensed.fader")
    code, err = _train(["--data", str(data), "--init", str(tmp_path / "licensed.fader"), "--steps", "2",
                        "--classifier-steps", "2", "--quiet", "--threads", "1", "--out", str(tmp_path / "ft"),
                        "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"], capsys)
    assert code == 0, err
    licence = load_model(tmp_path / "ft" / "model.fader").meta["license"]
    assert terms in licence and "user data" in licence


def test_ctrl_c_before_the_first_evaluation_does_not_name_a_model(tmp_path):
    data = _folder(tmp_path)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "training.cli", "--data", str(data), *TINY[:-3],
                          "--classifier-steps", "2", "--threads", "1", "--steps", "1000000", "--eval-every", "1000000",
                          "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--val-size", "4"],
                         cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
                         # SIGINT as a terminal's Ctrl-C sends it, also where pytest runs as a background
                         # job of a script (which ignores SIGINT, and so would the run)
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / CHECKPOINT_NAME).exists():
            time.sleep(0.02)
        assert (out / CHECKPOINT_NAME).exists(), "the run never started"
        time.sleep(0.3)   # the first checkpoint is written with the trainer's handlers in place: a few steps on
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130
    assert "no model yet" in err and "-1.000" not in err
    assert not (out / "model.fader").exists()


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
    assert code == 2 and "unknown CelebA attribute 'smiling'" in err and "did you mean 'Smiling'?" in err


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
    assert any("skipped 2 images" in x for x in lines)
    assert any(f"the skipped images are listed in {run / 'skipped.txt'}" in x for x in lines)
