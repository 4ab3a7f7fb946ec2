"""QA of the command line against the file system: pipes where photos, recipes and reports are
expected, names the system refuses, links to missing files, a report that could not be written.
Each waited forever, printed a traceback or replaced something; now each is one clear line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")


def cli(capsys, *args) -> tuple:
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.err


def run_cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """The command in a process of its own: a hang is a failed test, not a stuck suite."""
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "fader_desktop.cli", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def photos(aligned3) -> Path:
    return aligned3


@needs_fifo
def test_a_pipe_among_the_photos_is_skipped_not_waited_on(tmp_path, photos, tiny_model_path):
    """A named pipe called pipe.jpg in the input folder froze batch for good (Image.open waited
    for a writer), and SIGTERM could not stop it."""
    os.mkfifo(photos / "pipe.jpg")
    out = tmp_path / "out"
    run = run_cli("batch", photos, "-o", out, "--set", "Smiling=1", "--aligned", "--model", tiny_model_path,
                  "--report", tmp_path / "r.json")
    assert run.returncode == 1, run.stderr   # a skipped input: not a clean run
    items = {it["relative"]: it for it in json.loads((tmp_path / "r.json").read_text())["items"]}
    assert items["pipe.jpg"]["status"] == "skipped" and "not a regular file" in items["pipe.jpg"]["reason"]
    assert len(list(out.glob("*.jpg"))) == 3


@needs_fifo
@pytest.mark.parametrize("where", ["report", "recipe"])
def test_a_pipe_given_as_report_or_recipe_is_refused_at_once(tmp_path, photos, tiny_model_path, where):
    """--report and --recipe on a named pipe waited for a writer forever (edit and batch)."""
    fifo = tmp_path / f"{where}.json"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    if where == "report":
        runs = [run_cli("batch", photos, "-o", out, "--aligned", "--model", tiny_model_path, "--report", fifo)]
    else:
        runs = [run_cli("batch", photos, "-o", out, "--aligned", "--model", tiny_model_path, "--recipe", fifo),
                run_cli("edit", photos / sorted(os.listdir(photos))[0], "-o", tmp_path / "x.jpg", "--aligned",
                        "--model", tiny_model_path, "--recipe", fifo)]
    for run in runs:
        assert run.returncode == 2, run.stderr
        assert f"{fifo}:" in run.stderr and "not a regular file" in run.stderr, run.stderr
    assert not out.exists() and not (tmp_path / "x.jpg").exists()


@needs_fifo
def test_skip_existing_leaves_a_pipe_with_an_outputs_name(tmp_path, photos, tiny_model_path, capsys):
    """--skip-existing replaced a named pipe that had an output's name with the photo."""
    out = tmp_path / "out"
    out.mkdir()
    name = sorted(os.listdir(photos))[0]
    os.mkfifo(out / name)
    rc, err = cli(capsys, "batch", photos, "-o", out, "--aligned", "--set", "Smiling=1", "--skip-existing",
                  "--model", tiny_model_path)
    assert rc == 0, err
    assert not (out / name).is_file() and Path(out / name).is_fifo()
    assert len([p for p in out.iterdir() if p.is_file()]) == 2


def test_a_link_to_a_missing_file_as_report_is_not_replaced(tmp_path, photos, tiny_model_path, capsys):
    link = tmp_path / "report.json"
    link.symlink_to(tmp_path / "gone.json")
    rc, err = cli(capsys, "batch", photos, "-o", tmp_path / "out", "--aligned", "--model", tiny_model_path,
                  "--report", link)
    assert rc == 2 and "is a link to a missing file" in err, err
    assert link.is_symlink() and not (tmp_path / "out").exists()


def test_a_name_over_the_systems_limit_is_one_line_not_a_traceback(tmp_path, photos, tiny_model_path, capsys):
    """Names over 255 bytes made the "does it exist?" check itself fail with a traceback (exit 1)."""
    long = "z" * 260
    photo = photos / sorted(os.listdir(photos))[0]
    cases = [("edit", photo, "-o", tmp_path / f"{long}.jpg", "--aligned"),
             ("sweep", photo, "-o", tmp_path / f"{long}.gif", "--attr", "Smiling", "--aligned"),
             ("batch", photos, "-o", tmp_path / long, "--aligned"),
             ("batch", tmp_path / long, "-o", tmp_path / "out"),
             ("batch", photos, "-o", tmp_path / "out", "--aligned", "--report", tmp_path / f"{long}.json")]
    for args in cases:
        rc, err = cli(capsys, *args, "--model", tiny_model_path)
        assert rc == 2, (args[0], err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fader-desktop: error: ") and "Traceback" not in err, err
        assert "too long" in err, err
    assert not (tmp_path / "out").exists()


def test_when_the_report_could_not_be_written_nothing_points_to_it(tmp_path, celeba_aligned, tiny_model_path,
                                                                  small_disk, capsys):
    """More than 20 failures on a full disk ended "… 7 more (see full/rep.json)", a report the
    same run had failed to write."""
    d = tmp_path / "in"
    d.mkdir()
    for p in sorted(celeba_aligned.glob("*.jpg"))[:30]:
        shutil.copy(p, d / p.name)
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)   # the disk filled, then a few KB freed: no photo fits
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - 40_000))
    rc, err = cli(capsys, "batch", d, "-o", small_disk / "out", "--aligned", "--set", "Smiling=1",
                  "--model", tiny_model_path, "--report", small_disk / "rep.json")
    assert rc != 0 and not (small_disk / "rep.json").exists()
    assert "more" in err and "see" not in err.split("more", 1)[1].splitlines()[0], err
    assert "cannot write" in err or "no space" in err
