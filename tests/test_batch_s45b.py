"""The CLI's progress bar on a resume counts only the photos to edit (session 45): the files passed
over at the start (outputs already there, a note beside the photos) made it start at 9/11 with a
rate, and so an ETA, several times too optimistic."""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_on_a_terminal(args: list) -> tuple:
    """(exit status, what stderr showed) of `fader-desktop ARGS` with stderr on a terminal (a
    pseudo-terminal 100 columns wide): the bar is drawn only there."""
    pty = pytest.importorskip("pty")
    fcntl, termios = pytest.importorskip("fcntl"), pytest.importorskip("termios")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", *map(str, args)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=slave, env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the command ended and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return proc.wait(timeout=120), shown.decode(errors="replace")


def test_a_resume_bar_counts_only_the_photos_to_edit(tmp_path, portrait_path, tiny_model_path):
    """8 of 10 outputs already there and a note beside the photos: the bar runs 0/2 .. 2/2 (it
    ran 0/11 .. 11/11, jumping to 9/11 before the first photo was edited, its img/s counting the
    nine files passed over), after a line saying what is passed over; the summary is unchanged."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for k in range(10):
        shutil.copy(portrait_path, src / f"{k:02d}.jpg")
        if k < 8:
            shutil.copy(portrait_path, out / f"{k:02d}.jpg")   # an earlier run's outputs
    (src / "notes.txt").write_text("shot on the 3rd\n")
    rc, shown = run_on_a_terminal(["batch", src, "-o", out, "--aligned", "--set", "Smiling=2", "--skip-existing",
                                   "--model", tiny_model_path, "--device", "cpu"])
    assert rc == 0, shown
    frames = [f.strip() for f in re.split(r"[\r\n]+", shown) if "img/s" in f]
    counts = [re.search(r"\| *(\d+)/(\d+) \[", f) for f in frames]
    assert frames and all(counts), shown
    assert {m.group(2) for m in counts} == {"2"}, frames          # the bar's total: the photos to edit
    assert counts[0].group(1) == "0" and counts[-1].group(1) == "2", frames
    said = "fader-desktop: passing over 9 files (8 outputs already there, 1 not an image); 2 photos to edit"
    assert said in shown, shown
    assert shown.index(said) < min(shown.index(f.group(0)) for f in counts if f.group(1) != "0"), shown
    assert "fader-desktop: 2 written, 8 already there, 1 skipped (1 not an image), 0 failed in " in shown, shown
