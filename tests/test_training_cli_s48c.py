"""fader-train, QA round 48c: CSV labels 1/2 fine-tuned with --init were flipped against the
loader's own warning; a continuation without --seed validated on the model's training images;
Ctrl-C with stderr to a closed pipe exited 1 and lost the resume command; the recorded per-value
counts and pseudo_labels.txt counted unreadable images."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_tiny_model, noise_images, TINY_TRAIN, value_folders
from training import cli

TINY = [*TINY_TRAIN, "--batch-size", "8"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_csv_labels_1_and_2_are_fine_tuned_as_the_loader_warns(tmp_path, capsys):
    """Item 1: Smiling labelled 1 (not smiling) and 2 (smiling), fine-tuned with --init: the loader
    warned "'1' is taken as 0 and '2' as 1" while the value matching read '1' as "yes" and trained
    every label flipped ('validation: Smiling no 1, yes 3' of one '1' and three '2')."""
    model = make_tiny_model(tmp_path / "tiny.fader")
    names = [f"IMG_{i:03d}.png" for i in range(16)]
    noise_images(tmp_path / "d", names)
    smiling = {n: ("2" if i % 4 else "1") for i, n in enumerate(names)}   # 4 × '1', 12 × '2'
    table = tmp_path / "d" / "labels.csv"
    table.write_text("file,Smiling\n" + "".join(f"{n},{v}\n" for n, v in smiling.items()))
    run = tmp_path / "run"
    code = cli.main(["--data", str(table), "--init", str(model), "--out", str(run), "--steps", "2",
                     "--val-size", "4", "--cache-dir", str(tmp_path / "cache"), *TINY])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "'1' is taken as 0" in err, err   # the loader's warning: the premise
    assert "the data's Smiling '1' is the model's 'no', '2' is the model's 'yes'" in err, err
    val = [Path(p).name for p in (run / "val_files.txt").read_text().split()]
    n_yes = sum(smiling[n] == "2" for n in val)
    assert 0 < n_yes < len(val), val   # the premise: both values among them, unequally
    assert f"validation: Smiling no {len(val) - n_yes}, yes {n_yes}" in err, err


def test_a_continuation_keeps_the_models_validation_images_out_of_training(tmp_path, capsys):
    """Item 2: `--steps 2 --seed 3`, then `--continue model.fader` without --seed: the continuation
    drew its split with seed 0 and validated on images the first run had trained on. It keeps the
    model's split; another --seed is said, with how many validation images the model trained on."""
    data = value_folders(tmp_path / "Smiling", {"no": 20, "yes": 20})
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first, more, other = tmp_path / "first", tmp_path / "more", tmp_path / "other"
    assert cli.main(["--data", str(data), "--out", str(first), "--steps", "2", "--eval-every", "2",
                     "--seed", "3", *cache, *TINY]) == 0, capsys.readouterr().err
    trained = set((first / "train_files.txt").read_text().split())
    capsys.readouterr()
    assert cli.main(["--data", str(data), "--continue", str(first / "model.fader"), "--out", str(more),
                     "--steps", "4", "--eval-every", "2", *cache, *TINY]) == 0, capsys.readouterr().err
    assert "the model trained on" not in capsys.readouterr().err
    val = (more / "val_files.txt").read_text().split()
    assert val and not set(val) & trained, sorted(set(val) & trained)
    assert sorted(val) == sorted((first / "val_files.txt").read_text().split())
    assert cli.main(["--data", str(data), "--continue", str(first / "model.fader"), "--out", str(other),
                     "--steps", "4", "--eval-every", "2", "--seed", "5", *cache, *TINY]) == 0
    err = capsys.readouterr().err
    n = len(set((other / "val_files.txt").read_text().split()) & trained)
    assert n, "the premise: seed 5 draws validation images the model trained on"
    assert f"warning: {n} of the 4 validation images are images the model trained on" in err, err
    assert "with --seed 5 the split differs from the model's" in err, err


def test_ctrl_c_with_stderr_to_a_closed_pipe_still_stops_cleanly(tmp_path):
    """Item 3: `fader-train … 2>&1 | tee log` and Ctrl-C, which stops tee too: the run wrote its
    checkpoint, then its summary line met the closed pipe (BrokenPipeError), the error handler's
    own line raised a second one, and the exit status was 1 where a stop is 130."""
    import os
    import signal
    import subprocess
    import sys
    import time
    data = value_folders(tmp_path / "Smiling", {"no": 12, "yes": 12})
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.cli", "--data", str(data), "--out", str(run), "--steps", "100000",
           "--ckpt-every", "1", "--eval-every", "100000", "--val-size", "4", "--cache-dir", str(tmp_path / "cache"),
           *[a for a in TINY if a != "--quiet"]]
    read, write = os.pipe()
    # Ctrl-C as a terminal's: a runner that started the suite in the background passes it on
    # ignored, and the trainer keeps an ignored Ctrl-C ignored (it never stopped then)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=write, cwd=str(Path(__file__).resolve().parents[1]),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(write)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint_last.pt").is_file() and proc.poll() is None and time.monotonic() < deadline:
            os.read(read, 65536) if _readable(read) else time.sleep(0.05)
        assert (run / "checkpoint_last.pt").is_file(), "no checkpoint was written"
        os.close(read)   # the reader is gone, as tee stopped by the same Ctrl-C
        read = None
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=120)
    finally:
        if read is not None:
            os.close(read)
        if proc.poll() is None:
            proc.kill()
    assert rc == 130
    assert (run / "checkpoint_last.pt").is_file()


def _readable(fd) -> bool:
    import select
    return bool(select.select([fd], [], [], 0.05)[0])
