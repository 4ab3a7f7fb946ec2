"""The training CLI as a QA walkthrough met it: a misspelt --attr on a CSV table or a labeled
folder, --resume without --data (and the run's cache folder), --help's defaults, progress written
into a log, and the reasons of skipped images (tiny 32 px runs through fader-train's main())."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training import cli

REPO = Path(__file__).resolve().parents[1]
TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-steps", "2", "--threads", "1", "--val-size", "4"]


# one intra-op thread (conftest): tiny tensors, a shared 2-core machine
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(folder: Path, n: int, seed: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        p = folder / f"{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        out.append(p)
    return out


def _folder(root: Path, name: str = "Bangs", n: int = 10) -> Path:
    """root/<name>/{no,yes} of n random 40x40 images each."""
    for k, v in enumerate(("no", "yes")):
        _images(root / name / v, n, k)
    return root / name


def _main(args, capsys) -> tuple:
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.err, out.out


# ---------------------------------------------------------------------------------------------
# 1. a misspelt --attr gets the closest name on every label layout

def test_a_misspelt_csv_attribute_suggests_the_right_one(tmp_path, capsys):
    paths = _images(tmp_path / "table" / "faces", 6, 0)
    rows = [f"faces/{p.name},{i % 2},{(i // 2) % 2}" for i, p in enumerate(paths)]
    (tmp_path / "table" / "labels.csv").write_text("file,Smiling,Male\n" + "\n".join(rows) + "\n")
    code, err, _ = _main(["--data", tmp_path / "table", "--attr", "smiling", *TINY, "--steps", "2", "--quiet",
                          "--out", tmp_path / "run", "--cache-dir", tmp_path / "cache"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "unknown attribute 'smiling' (did you mean 'Smiling'?) in --attr; the table has 'Smiling' and 'Male'" in err
    assert "did you mean 'Smiling'?" in err


def test_a_misspelt_attribute_of_a_labeled_folder_suggests_its_name(tmp_path, capsys):
    data = _folder(tmp_path, "Smiling")
    code, err, _ = _main(["--data", data, "--attr", "smiling", *TINY, "--steps", "2", "--quiet",
                          "--out", tmp_path / "run", "--cache-dir", tmp_path / "cache"], capsys)
    assert code == 2 and "named after the folder ('Smiling')" in err and "did you mean 'Smiling'?" in err


# ---------------------------------------------------------------------------------------------
# 2. --resume / --continue without --data; the run's cache folder on resume

@pytest.fixture
def finished_run(tmp_path, capsys):
    """A 2-step run on a folder whose path holds a space, with its own --cache-dir: (data, run, cache)."""
    data = _folder(tmp_path / "my data")
    run, cache = tmp_path / "run", tmp_path / "own cache"
    code, err, _ = _main(["--data", data, *TINY, "--steps", "2", "--quiet", "--out", run, "--cache-dir", cache], capsys)
    assert code == 0, err
    return data, run, cache


def test_resume_without_data_says_to_give_the_whole_command_and_names_the_runs_data(finished_run, capsys):
    data, run, _ = finished_run
    code, err, _ = _main(["--resume", "--out", run, "--steps", "4"], capsys)
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("fader-train: error: --data is required")
    assert "whole original command line" in last and "--resume" in last
    assert f"--data {shlex.quote(str(data))}" in last   # pasteable, the space quoted


def test_resume_without_data_of_a_run_that_recorded_only_its_command_line(finished_run, capsys, tmp_path):
    data, run, _ = finished_run
    # a run folder of an earlier version: a marker without the record, the command line in command.txt
    (run / cli.RUN_MARKER).write_text(json.dumps({"format": "fader-train-run", "version": 1}) + "\n")
    (run / "command.txt").write_text(f"fader-train --data {shlex.quote(str(data))} --out {run} --steps 2\n")
    code, err, _ = _main(["--resume", "--out", run, "--steps", "4"], capsys)
    assert code == 2 and f"--data {shlex.quote(str(data))}" in err and "whole original command line" in err
    # an unquoted line of an earlier version, whose path had a space: no made-up path is named
    (run / "command.txt").write_text(f"fader-train --data {tmp_path / 'my data'} --out {run} --steps 2\n")
    code, err, _ = _main(["--resume", "--out", run, "--steps", "4"], capsys)
    assert code == 2 and "whole original command line" in err and "trained with" not in err, err
    assert str(run / "command.txt") in err


def test_resume_reuses_the_runs_cache_folder(finished_run, capsys, tmp_path, monkeypatch):
    data, run, cache = finished_run
    monkeypatch.setenv("FADER_CACHE_DIR", str(tmp_path / "default cache"))   # where a resume would look by default
    code, err, _ = _main(["--data", data, *TINY, "--resume", "--steps", "3", "--quiet", "--out", run], capsys)
    assert code == 0, err
    assert not (tmp_path / "default cache").exists()
    assert re.search(rf"preprocessing cache {re.escape(str(cache))}/\w+ \(reused\)", err)
    assert f"the run's cache folder {cache}" in err and "--cache-dir" in err


def test_continue_without_data_names_the_data_the_model_was_trained_on(finished_run, capsys, tmp_path):
    data, run, _ = finished_run
    code, err, _ = _main(["--continue", run / "model.fader", "--steps", "4", "--out", tmp_path / "more"], capsys)
    assert code == 2 and "Traceback" not in err
    assert "--data is required" in err and "--continue" in err and str(data) in err


# ---------------------------------------------------------------------------------------------
# 3. --help shows each default once

def _help_entries(text: str) -> dict:
    """{option: its help text, whitespace-normalised} from argparse's --help output."""
    entries, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^  (-{1,2}[\w-]+)", line)
        if m and m.group(1) not in entries:   # not a group description's line that starts with an option
            current = m.group(1)
            entries[current] = line
        elif current and line.startswith("    "):
            entries[current] += " " + line
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in entries.items()}


def test_help_shows_each_default_once(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    entries = _help_entries(capsys.readouterr().out)
    assert len(entries) > 60 and "--attr" in entries
    for opt, text in entries.items():
        assert "(default: None)" not in text, opt
        added = re.findall(r"\(default: [^)]*\)", text)
        own = re.sub(r"\(default: [^)]*\)", "", text)
        assert not (added and re.search(r"\bdefaults?\b", own, re.IGNORECASE)), (opt, text)
        assert len(added) <= 1, (opt, text)
    assert "default: all" in entries["--attr"]
    assert "(default: 32)" in entries["--batch-size"] and "(default: 1000)" in entries["--eval-every"]
    assert "(default: False)" not in entries["--quiet"]


# ---------------------------------------------------------------------------------------------
# 4. progress written into a log (stderr not a terminal) is plain lines

def test_progress_into_a_log_is_plain_lines(tmp_path, capsys):
    data = _folder(tmp_path)
    code, err, out = _main(["--data", data, *TINY, "--steps", "4", "--log-every", "2", "--out", tmp_path / "run",
                            "--cache-dir", tmp_path / "cache"], capsys)   # no --quiet; capsys's stderr is no terminal
    assert code == 0, err
    assert "\r" not in err and "\r" not in out
    lines = err.splitlines()
    pre = [x for x in lines if x.startswith("preprocessing 32px:")]
    clf = [x for x in lines if x.startswith("classifier:")]
    train = [x for x in lines if x.startswith("training:")]
    assert pre and clf and train
    # the last line of each phase says where it ended, as the bar did (the window's training dialog reads it)
    assert re.match(r"preprocessing 32px: 100%\|.*\| 20/20 \[", pre[-1])
    assert re.match(r"classifier: 100%\|.*\| 2/2 \[", clf[-1])
    assert re.match(r"training: 100%\|.*\| 4/4 \[[\d:]+<[\d:]+, *[\d.]+(step/s|s/step), \d+ img/s rec [\d.]+ lat [\d.]+", train[-1])
    assert all(len(x) < 200 for x in pre + clf + train)


def test_progress_on_a_terminal_is_still_a_bar(tmp_path):
    """On a terminal the bars redraw in place (carriage returns), as before."""
    data = _folder(tmp_path)
    text = _on_a_terminal(["--data", str(data), *TINY, "--steps", "2", "--out", str(tmp_path / "run"),
                           "--cache-dir", str(tmp_path / "cache")], 120, REPO)   # a bar needs a width
    assert "\rtraining:" in text and "2/2" in text


def _on_a_terminal(args, columns: int, cwd) -> str:
    """What fader-train writes on stderr to a terminal `columns` wide."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        p = subprocess.Popen([sys.executable, "-m", "training.cli", *args], cwd=cwd, stderr=slave,
                             stdout=subprocess.DEVNULL, env=dict(os.environ, OMP_NUM_THREADS="1"))
        os.close(slave)
        slave = None
        written = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:   # the child closed the terminal
                break
            if not chunk:
                break
            written += chunk
        assert p.wait(timeout=120) == 0, written.decode(errors="replace")
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    return written.decode("utf-8", errors="replace")


def test_the_training_bar_keeps_its_width_beside_the_losses_on_a_100_column_terminal(tmp_path):
    """At 100 columns the training bar, beside tqdm's step/s and the losses, was 1-2 characters
    wide: the losses say the rate (img/s), and the bar line leaves tqdm's out."""
    data = _folder(tmp_path)
    text = _on_a_terminal(["--data", str(data), *TINY, "--steps", "6", "--log-every", "2", "--out",
                           str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")], 100, REPO)
    lines = [seg for seg in re.split(r"[\r\n]", text) if seg.startswith("training:") and "img/s" in seg]
    assert lines, text
    last = lines[-1].rstrip()
    bar = last.split("|")[1]
    assert len(last) <= 100 and len(bar) >= 10, last
    assert "step/s" not in last and "rec " in last and "6/6" in last, last


# ---------------------------------------------------------------------------------------------
# 5. skipped images carry the loader's reason

def test_skipped_images_carry_the_loaders_reason(tmp_path, capsys):
    data = _folder(tmp_path)
    (data / "yes" / "empty.png").write_bytes(b"")
    good = (data / "yes" / "0.png").read_bytes()
    (data / "yes" / "cut.png").write_bytes(good[:len(good) // 3])
    (data / "no" / "notes.jpg").write_bytes(b"not an image at all")
    code, err, _ = _main(["--data", data, *TINY, "--steps", "2", "--quiet", "--out", tmp_path / "run",
                          "--cache-dir", tmp_path / "cache"], capsys)
    assert code == 0, err
    listed = dict(x.split("\t") for x in (tmp_path / "run" / "skipped.txt").read_text().splitlines())
    assert listed == {str(data / "yes" / "empty.png"): "cannot read image: the file is empty",
                      str(data / "yes" / "cut.png"): "cannot read image: the file is truncated or corrupt",
                      str(data / "no" / "notes.jpg"): "cannot read image: not a recognised image format"}
    summary = next(x for x in err.splitlines() if "skipped 3 images" in x)
    assert "the file is empty" in summary and "truncated" in summary and "unreadable" not in summary


def test_a_run_stopped_by_its_skipped_images_names_their_reasons(tmp_path, capsys):
    data = _folder(tmp_path, n=6)
    for p in (data / "yes").iterdir():
        p.write_bytes(b"")
    code, err, _ = _main(["--data", data, *TINY, "--steps", "2", "--quiet", "--out", tmp_path / "run",
                          "--cache-dir", tmp_path / "cache"], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert "Bangs = 'yes' has no usable training image" in last
    assert f"{data / 'yes' / '0.png'} (cannot read image: the file is empty)" in last


def test_a_cache_of_an_earlier_version_lists_the_reasons_too(tmp_path, capsys):
    """A cache built before the reasons were kept counted every unreadable image 'unreadable'."""
    data = _folder(tmp_path)
    (data / "yes" / "empty.png").write_bytes(b"")
    common = ["--data", data, *TINY, "--steps", "2", "--quiet", "--cache-dir", tmp_path / "cache"]
    assert _main(common + ["--out", tmp_path / "run1"], capsys)[0] == 0
    manifest = next((tmp_path / "cache").glob("*/manifest.json"))
    info = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**info, "skipped": {"unreadable": 1}}))
    code, err, _ = _main(common + ["--out", tmp_path / "run2"], capsys)
    assert code == 0 and "(reused)" in err
    listed = (tmp_path / "run2" / "skipped.txt").read_text()
    assert listed == f"{data / 'yes' / 'empty.png'}\tcannot read image: the file is empty\n"
    assert "skipped 1 image: 1 × cannot read image: the file is empty" in err


def test_new_losses_in_a_log_are_a_line_of_their_own_at_most_every_few_seconds(monkeypatch):
    """The window's training dialog reads the step counter from these lines: the losses the trainer
    posts every --log-every steps are written at once, unless a line went out moments ago."""
    import io

    from training import progress
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress.LogProgress(100, "training", "step")
    bar.update(3)
    bar.set_postfix_str("9 img/s rec 0.0300 lat 1.000")
    assert "3/100" not in err.getvalue()   # the start line went out just now
    monkeypatch.setattr(progress, "REFRESH_SECONDS", 0.0)
    bar.update(2)
    bar.set_postfix_str("9 img/s rec 0.0290 lat 1.000")
    assert re.search(r"5/100 .*rec 0\.0290", err.getvalue().splitlines()[-1])
    bar.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_among_training_images_is_skipped_not_waited_on(tmp_path):
    """np.fromfile on a FIFO named *.jpg blocked preprocessing for ever."""
    from training.datasets import read_rgb
    fifo = tmp_path / "0.jpg"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-c", f"from training.datasets import read_rgb; print(read_rgb({str(fifo)!r})[1])"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "not a regular file" in out.stdout, out
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((4, 6, 3), np.uint8))
    assert read_rgb(str(tiny)) == (None, "too small (under 8 pixels across)")


def test_training_runs_without_any_console_streams(tmp_path):
    """pythonw and a windowed build start with sys.stdout and sys.stderr set to None: the progress
    lines must not stop the run, and the model is written all the same."""
    data = _folder(tmp_path)
    out = tmp_path / "run"
    args = [str(a) for a in ["--data", data, *TINY, "--steps", "3", "--out", out, "--cache-dir", tmp_path / "cache"]]
    code = ("import sys; sys.stdout = sys.stderr = None\n"
            "from training import cli\n"
            f"raise SystemExit(cli.main({args!r}))\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run
    assert (out / "model.fader").stat().st_size > 0


# -- --continue: the recipe a model file records is checked as its options are ----------------

@pytest.mark.parametrize("recorded, named", [
    ({"critic_width": 6000}, "--critic-width must be at most 512, got 6000"),
    ({"n_lat_dis": -5}, "--n-lat-dis must be >= 0, got -5"),
    ({"lr": "0.0002"}, "lr = '0.0002' is not a number"),
    ({"seed": "x"}, "seed = 'x' is not a number"),
    ({"edit_residual": "yes"}, "edit_residual = 'yes' is not true or false"),
])
def test_continue_refuses_a_recorded_recipe_its_options_would_refuse(finished_run, capsys, tmp_path, recorded, named):
    """A model file made elsewhere records any recipe: a critic 6,000 maps wide ran at 5 GB and 42 s a
    step, n_lat_dis -5 was taken silently, and lr "0.0002" or seed "x" ended in a traceback from
    torch, each after the run folder was made."""
    import copy

    from core.model_file import load_model, save_model
    data, run, _ = finished_run
    model = load_model(run / "model.fader")
    hostile = copy.deepcopy(model)
    hostile.meta["training"] = {**model.meta["training"],
                                "hyper_parameters": {**model.meta["training"]["hyper_parameters"], **recorded}}
    path = tmp_path / "shared.fader"
    save_model(hostile, path)
    out = tmp_path / "more"
    code, err, _ = _main(["--continue", path, "--data", data, "--steps", "4", "--quiet", "--out", out], capsys)
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"fader-train: error: --continue {path}: the training recipe recorded") and named in last
    assert not out.exists()
    # the option given on the command line replaces the recorded value
    if "critic_width" in recorded:
        code, err, _ = _main(["--continue", path, "--data", data, "--steps", "3", "--quiet", "--critic-width", "8",
                              "--out", out], capsys)
        assert code == 0, err
