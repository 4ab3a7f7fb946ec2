"""fader-train's words from a QA walk of the command line (real tiny runs): a stopped run ends with
the command that resumes it, a value folder given as --data names its attribute folder, and a new
run's command on a run folder hears that the folder holds a run before any missing --steps."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from training import cli
from training.trainer import CHECKPOINT_NAME, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
TINY = ["--img-size", "32", "--n-layers", "3", "--init-fm", "8", "--max-fm", "32", "--hid-dim", "16",
        "--classifier-steps", "2", "--val-size", "4", "--batch-size", "4", "--threads", "1"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stop_at_an_evaluation(args, sig) -> tuple:
    """fader-train `args` in a subprocess, sent `sig` once its first evaluation line (stdout) is out:
    (exit status, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "training.cli", *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    err = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    reader.start()
    try:
        for line in p.stdout:
            if line.startswith("step "):
                p.send_signal(sig)
                break
        p.stdout.read()
        code = p.wait(120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    reader.join(10)
    return code, "".join(err)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sig, code, fine_tune", [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)])
def test_a_stopped_run_ends_with_the_command_that_resumes_it(tmp_path, labeled_folder, tiny_model_path, capsys,
                                                             sig, code, fine_tune):
    """QA: the stop line named the checkpoint but not how to go on; `--resume --out RUN` is refused
    (the data is not in the run folder). The command printed runs as printed and goes on from the
    step the stop line names; a fine-tuning run's command leaves out --init, which --resume refuses."""
    out = tmp_path / "run"
    init = ["--init", str(tiny_model_path)] if fine_tune else []
    # an evaluation every 8 steps: the stop comes at the first, the resume evaluates 7 times (every 2
    # steps: 19 times, each with its export, 2/3 of the resume's time); 52 steps of margin for the stop
    # on a loaded machine
    args = ["--data", str(labeled_folder), "--out", str(out), *TINY, *init, "--steps", "60", "--eval-every", "8",
            "--cache-dir", str(tmp_path / "cache")]
    got, err = _stop_at_an_evaluation(args, sig)
    lines = err.strip().splitlines()
    assert got == code, err[-2000:]
    stopped = next((x for x in lines if f"resumable checkpoint {out / CHECKPOINT_NAME} (step " in x), None)
    assert stopped is not None and stopped.startswith(f"fader-train: {'interrupted' if code == 130 else 'stopped'}"), \
        err[-2000:]
    step = int(stopped.rsplit("(step ", 1)[1].rstrip(")"))
    assert 0 < step < 60 and load_checkpoint(out / CHECKPOINT_NAME)["step"] == step
    assert lines[-1].startswith("fader-train: to go on: fader-train "), lines[-1]
    words = shlex.split(lines[-1].split("to go on: ", 1)[1])
    assert words[0] == "fader-train" and words[-1] == "--resume" and "--init" not in words
    assert words[1:-1] == ["--data", str(labeled_folder), "--out", str(out), *TINY, "--steps", "60", "--eval-every",
                           "8", "--cache-dir", str(tmp_path / "cache")]
    capsys.readouterr()
    assert cli.main(words[1:]) == 0   # as printed
    said = capsys.readouterr().err
    assert f"resumed {out / CHECKPOINT_NAME} at step {step} " in said, said
    assert "to go on" not in said   # a run that reached its --steps has nothing to go on with
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 60


def test_a_value_folder_given_as_data_names_its_attribute_folder(tmp_path, labeled_folder, capsys):
    """QA: --data Smiling/yes (one level too deep) advised value folders Smiling/yes/yes and
    Smiling/yes/no inside it."""
    code = cli.main(["--data", str(labeled_folder / "yes"), "--out", str(tmp_path / "run"), *TINY, "--steps", "2",
                     "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert (f"{labeled_folder / 'yes'} holds the images of one value (Smiling has the value folders 'no' and 'yes'); "
            f"give its attribute folder: --data {labeled_folder}") in last, last
    assert str(labeled_folder / "yes" / "yes") not in last
    assert not (tmp_path / "run").exists()


def test_a_new_runs_command_on_a_run_folder_without_steps_says_the_folder_holds_a_run(tmp_path, labeled_folder, capsys):
    """QA: without --steps the answer was 'give --steps N or --epochs N'; only with it did the
    user hear that the folder already holds a run."""
    out = tmp_path / "run"
    common = ["--data", str(labeled_folder), "--out", str(out), *TINY, "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert cli.main([*common, "--steps", "1"]) == 0
    capsys.readouterr()
    assert cli.main(common) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (f"fader-train: error: {out}: already holds a run ({CHECKPOINT_NAME}); "
                                            "use --resume or another --out")
