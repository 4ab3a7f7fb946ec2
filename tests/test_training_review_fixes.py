"""fader-train's review fixes (tiny 32 px runs): resuming a fine-tuning run, the label values a
resumed run checks, the best model's --psnr-drop rule, odd file names and paths, an empty
checkpoint, the skipped images' list, --batch-size with --continue, value and attribute names that
differ only in letter case."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.model_file import load_model
from training import cli
from training.trainer import CHECKPOINT_NAME, load_checkpoint

TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--quiet", "--threads", "1", "--workers", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(folder: Path, names, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        cv2.imwrite(str(folder / n), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    return list(names)


def _table(root: Path, header: str, rows: list) -> Path:
    """root/labels.csv over root/imgs/<i>.png: `rows` are the label cells after the file name."""
    names = _images(root / "imgs", [f"{i}.png" for i in range(len(rows))])
    (root / "labels.csv").write_text("\n".join([header] + [f"imgs/{n},{r}" for n, r in zip(names, rows)]) + "\n")
    return root / "labels.csv"


def _folder(root: Path, values=("no", "yes"), n: int = 8) -> Path:
    for k, v in enumerate(values):
        _images(root / v, [f"{i}.png" for i in range(n)], seed=k)
    return root


def _train(args, capsys, tmp_path, batch=("--batch-size", "4")) -> tuple:
    code = cli.main([*TINY, *batch, *args, "--cache-dir", str(tmp_path / "cache")])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def two_attr_model(tmp_path_factory):
    """A tiny model of Eyeglasses and Bangs (with its classifier), trained on a CSV table."""
    root = tmp_path_factory.mktemp("base")
    rows = [f"{i % 2},{(i // 2) % 2}" for i in range(16)]
    table = _table(root / "data", "file,Eyeglasses,Bangs", rows)
    code = cli.main(["--data", str(table), "--steps", "2", "--out", str(root / "run"), "--val-size", "4",
                     *TINY, "--batch-size", "4", "--cache-dir", str(root / "cache")])
    assert code == 0
    return root / "run" / "model.fader"


def test_a_fine_tuning_run_resumes_without_the_init_model(two_attr_model, tmp_path, capsys):
    data = _folder(tmp_path / "Bangs")
    init = tmp_path / "init.fader"
    shutil.copy(two_attr_model, init)
    out = tmp_path / "rfi"
    common = ["--data", str(data), "--out", str(out), "--val-size", "4", "--eval-every", "2", "--ckpt-every", "2"]
    code, err = _train(common + ["--init", str(init), "--steps", "2"], capsys, tmp_path)
    assert code == 0, err
    code, err = _train(common + ["--resume", "--steps", "3"], capsys, tmp_path)
    assert code == 0, err
    assert (out / "pseudo_labels.txt").read_text().splitlines()[0] == "file\tEyeglasses"
    init.unlink()   # the labels the model's classifier gave are the run's own: the model is not needed
    code, err = _train(common + ["--resume", "--steps", "4"], capsys, tmp_path)
    assert code == 0, err
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 4
    # a run written before pseudo_labels.txt: labelled again by the --init model its metadata names
    shutil.copy(two_attr_model, init)
    (out / cli.PSEUDO_LABELS).unlink()
    code, err = _train(common + ["--resume", "--steps", "6"], capsys, tmp_path)
    assert code == 0, err
    assert "labelling 'Eyeglasses' with the classifier of the model it starts from" in err
    init.unlink()
    code, err = _train(common + ["--resume", "--steps", "8"], capsys, tmp_path)
    assert code == 2 and "which the --init model" in err and "Traceback" not in err


def test_a_fine_tuning_run_on_a_table_of_another_column_order_resumes(two_attr_model, tmp_path, capsys):
    table = _table(tmp_path / "d", "file,Bangs,Eyeglasses", [f"{i % 2},{(i // 2) % 2}" for i in range(16)])
    out = tmp_path / "run"
    common = ["--data", str(table), "--out", str(out), "--val-size", "4", "--eval-every", "2"]
    code, err = _train(common + ["--init", str(two_attr_model), "--steps", "2"], capsys, tmp_path)
    assert code == 0, err
    code, err = _train(common + ["--resume", "--steps", "4"], capsys, tmp_path)
    assert code == 0, err
    assert [a.name for a in load_model(out / "model.fader").attributes] == ["Eyeglasses", "Bangs"]


@pytest.mark.parametrize("changed", ["sunglasses", "specs"])
def test_resume_refuses_changed_label_values(tmp_path, capsys, changed):
    rows = ["glasses" if i % 2 else "plain" for i in range(16)]
    table = _table(tmp_path / "d", "file,Look", rows)
    out = tmp_path / "run"
    common = ["--data", str(table), "--out", str(out), "--val-size", "4"]
    assert _train(common + ["--steps", "2"], capsys, tmp_path)[0] == 0
    # a new value (would index past the networks' planes), or a renamed one (would flip 0 and 1)
    new = [changed if r == "glasses" and (changed == "specs" or i == 1) else r for i, r in enumerate(rows)]
    (table).write_text("\n".join(["file,Look"] + [f"imgs/{i}.png,{r}" for i, r in enumerate(new)]) + "\n")
    code, err = _train(common + ["--resume", "--steps", "4"], capsys, tmp_path)
    assert code == 2, err
    assert "Look has values" in err and "in the run" in err and "Traceback" not in err


def test_select_best_keeps_to_the_psnr_drop_of_the_runs_best_psnr():
    from training.trainer import select_best
    # the review's run: equal swap accuracy, PSNR rising from 10.6 to 16 dB: the blurry start is out
    evals = {2: (0.5, 10.6), 4: (0.5, 14.0), 6: (0.5, 16.0)}
    assert select_best(evals, 16.0, 3.0) == 6
    assert select_best({2: (0.9, 10.6), 6: (0.5, 16.0)}, 16.0, 3.0) == 6   # higher swap, but 5.4 dB down
    assert select_best({4: (0.9, 14.0), 6: (0.5, 16.0)}, 16.0, 3.0) == 4   # within 3 dB: swap decides
    assert select_best({2: (0.9, 10.6)}, 16.0, 3.0) is None
    assert select_best({4: (0.5, 14.0), 6: (0.5, 14.0)}, 14.0, 3.0) == 4   # a full tie: no new export


# The --psnr-drop of the test below: its run's PSNR rises about 0.6 dB in its 12 steps at --lr 0.005
# (0.4-0.5 dB at 0.002, against drops of 0.3 and 0.5: little margin or none), so that its first
# states fall out of the band with room to spare
PSNR_DROP = 0.1


@pytest.mark.parametrize("keep", [True, False])
def test_the_best_model_stays_within_the_psnr_drop_of_the_runs_best(tmp_path, capsys, keep):
    data = _folder(tmp_path / "Bangs")
    out = tmp_path / "run"
    code, err = _train(["--data", str(data), "--out", str(out), "--val-size", "4", "--steps", "12",
                        "--eval-every", "2", "--psnr-drop", str(PSNR_DROP), "--lr", "0.005"]
                       + (["--keep-evals"] if keep else []), capsys, tmp_path)
    assert code == 0, err
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    psnr = {r["step"]: r["val"]["psnr"] for r in log}
    swap = {r["step"]: r["val"]["swap_mean"] for r in log}
    rise = max(psnr.values()) - min(psnr.values())
    # the premise: states below the band, which the rule must pass over (else any state would do)
    assert rise > PSNR_DROP, f"the run's PSNR rose {rise:.2f} dB, not past --psnr-drop {PSNR_DROP}: the test proves nothing"
    best = load_model(out / "model.fader").meta["metrics"]["step"]
    assert best == load_checkpoint(out / CHECKPOINT_NAME)["best"]["step"] == log[-1]["best_step"]
    assert psnr[best] >= max(psnr.values()) - PSNR_DROP
    if keep:   # every state can be exported again: the rule's own best
        band = [s for s in psnr if psnr[s] >= max(psnr.values()) - PSNR_DROP]
        assert (swap[best], psnr[best]) == max((swap[s], psnr[s]) for s in band)


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file names there are always Unicode")
def test_a_file_name_that_is_not_utf8_trains(tmp_path, capsys):
    data = _folder(tmp_path / "Bangs")
    odd = os.path.join(os.fsencode(data / "yes"), b"caf\xe9.png")   # Latin-1, as from an old archive
    shutil.copy(data / "yes" / "0.png", odd)
    out = tmp_path / "run"
    code, err = _train(["--data", str(data), "--out", str(out), "--val-size", "4", "--steps", "2"], capsys, tmp_path)
    assert code == 0, err
    listed = (out / "train_files.txt").read_bytes() + (out / "val_files.txt").read_bytes()
    assert b"caf\xe9.png" in listed
    code, err = _train(["--data", str(data), "--out", str(out), "--resume", "--steps", "4"], capsys, tmp_path)
    assert code == 0, err
    assert (out / "val_files.txt").read_bytes() == listed[len((out / "train_files.txt").read_bytes()):]


def test_an_empty_checkpoint_is_a_clear_error(tmp_path, capsys):
    data = _folder(tmp_path / "Bangs")
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--val-size", "4"]
    assert _train(common + ["--steps", "2"], capsys, tmp_path)[0] == 0
    (out / CHECKPOINT_NAME).write_bytes(b"")   # as after a full disk outside fader-train's own writes
    code, err = _train(common + ["--resume", "--steps", "4"], capsys, tmp_path)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"fader-train: error: {out / CHECKPOINT_NAME}: damaged or not a fader-train checkpoint (EOFError)"


def test_a_run_stopped_by_its_skipped_images_names_them_in_its_error(tmp_path, capsys):
    data = _folder(tmp_path / "Bangs", n=6)
    for i in range(6):
        (data / "yes" / f"{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "run"
    code, err = _train(["--data", str(data), "--out", str(out), "--val-size", "2", "--steps", "2"], capsys, tmp_path)
    assert code == 2 and "Traceback" not in err
    assert "skipped.txt" not in err and not out.exists()   # no promise of a list the run never writes
    last = err.strip().splitlines()[-1]
    assert "Bangs = 'yes' has no usable training image" in last
    assert f"skipped: {data / 'yes' / '0.png'} (cannot read image: the file is truncated or corrupt), " in last and last.endswith(", … (6 in all)")


def test_a_pack_in_a_folder_named_with_a_hash_trains(tmp_path, capsys):
    from training import pack
    data = _folder(tmp_path / "Bangs")
    shutil.copy(data / "yes" / "0.png", data / "yes" / "take#2.png")   # a member's name may hold one too
    p = tmp_path / "packs#1" / "faces.fpack"
    p.parent.mkdir()
    assert pack.main(["--data", str(data), "--img-size", "32", "-o", str(p)]) == 0
    out = tmp_path / "run"
    code, err = _train(["--data", str(p), "--out", str(out), "--val-size", "4", "--steps", "2"], capsys, tmp_path)
    assert code == 0, err
    assert "skipped" not in err
    assert f"{p}#yes/take#2.png" in (out / "train_files.txt").read_text() + (out / "val_files.txt").read_text()


def test_continue_reduces_the_models_recorded_batch_to_the_data(tmp_path, capsys):
    base = tmp_path / "base"
    code, err = _train(["--data", str(_folder(tmp_path / "big" / "Bangs")), "--out", str(base), "--val-size", "4",
                        "--steps", "2"], capsys, tmp_path, batch=("--batch-size", "8"))
    assert code == 0, err
    small = _folder(tmp_path / "small" / "Bangs", n=3)   # 6 images, 4 of them for training
    code, err = _train(["--data", str(small), "--continue", str(base / "model.fader"), "--out", str(tmp_path / "c"),
                        "--val-size", "2", "--steps", "4"], capsys, tmp_path, batch=())
    assert code == 0, err
    assert "the model's recorded batch size 8 is more than the 4 training images; using 4" in err
    assert "--batch-size 32" not in err
    assert load_checkpoint(tmp_path / "c" / CHECKPOINT_NAME)["config"]["batch_size"] == 4


def test_value_folders_differing_only_in_letter_case_are_refused(tmp_path, capsys):
    data = _folder(tmp_path / "G2", values=("no", "yes", "Yes"))
    code, err = _train(["--data", str(data), "--out", str(tmp_path / "run"), "--steps", "2"], capsys, tmp_path)
    assert code == 2 and "Traceback" not in err
    assert "value folders 'Yes' and 'yes' differ only in letter case" in err


def test_fine_tuning_on_a_folder_named_in_another_letter_case_takes_the_models_attribute(two_attr_model, tmp_path,
                                                                                        capsys):
    data = _folder(tmp_path / "bangs")
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--val-size", "4"]
    code, err = _train(common + ["--init", str(two_attr_model), "--steps", "2"], capsys, tmp_path)
    assert code == 0, err
    assert [a.name for a in load_model(out / "model.fader").attributes] == ["Eyeglasses", "Bangs"]
    assert "the data's attribute 'bangs' is the model's 'Bangs'" in err
    code, err = _train(common + ["--resume", "--steps", "4"], capsys, tmp_path)
    assert code == 0, err


def test_a_kept_earlier_state_that_becomes_the_best_is_copied_to_model_fader(tmp_path, capsys):
    data = _folder(tmp_path / "Bangs")
    out = tmp_path / "run"
    common = ["--data", str(data), "--out", str(out), "--val-size", "4", "--eval-every", "2", "--keep-evals",
              "--psnr-drop", "100"]
    assert _train(common + ["--steps", "4"], capsys, tmp_path)[0] == 0
    held = load_checkpoint(out / CHECKPOINT_NAME)["best"]["step"]
    other = 4 if held == 2 else 2
    # the log's figures decide among the kept states: make the one not held the best by swap accuracy
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    for r in log:
        if r["step"] == other:
            r["val"]["swap_mean"] = 2.0
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    code, err = _train(common + ["--resume", "--steps", "6"], capsys, tmp_path)
    assert code == 0, err
    assert f"best now step {other} (from its model_step{other:07d}.fader)" in err
    assert (out / "model.fader").read_bytes() == (out / f"model_step{other:07d}.fader").read_bytes()
    assert (out / "model.discriminators.safetensors").read_bytes() == \
        (out / f"model_step{other:07d}.discriminators.safetensors").read_bytes()
    assert load_checkpoint(out / CHECKPOINT_NAME)["best"]["step"] == other
