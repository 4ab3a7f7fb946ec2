"""`fader-desktop batch` used as a user would: stopping it (Ctrl-C, SIGTERM), the summary it prints,
what it leaves alone with --skip-existing, re-running it with the same --report, clashing names."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]


def cli(capsys, *args):
    from fader_desktop.cli import main
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err


def copies(folder: Path, photo: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        shutil.copy(photo, folder / f"{k:02d}.jpg")
    return folder


def stop_mid_batch(args: list, out: Path, sig: int) -> tuple:
    """Start `fader-desktop batch ARGS` in its own process, send `sig` once its first output is
    there, and return (exit status, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", "batch", *map(str, args)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob("*.jpg"))) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the batch ended before it could be stopped: " + proc.communicate()[1]
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def test_sigterm_stops_the_batch_like_ctrl_c_with_a_report_and_no_temp_files(tmp_path, capsys, portrait_path,
                                                                            tiny_model_path):
    # `kill PID`, `timeout`, a service manager or a closing session send SIGTERM, not SIGINT: the run
    # used to die on the spot, leaving a hidden .part file beside the outputs and no report at all
    n = 60
    src = copies(tmp_path / "in", portrait_path, n)
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = [src, "-o", out, "--aligned", "--set", "Smiling=2", "--model", tiny_model_path, "--device", "cpu",
            "--report", report]
    rc, err = stop_mid_batch(args, out, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "stopping" in err
    assert report.is_file(), "no report after SIGTERM"
    rep = json.loads(report.read_text())
    written = sorted(p.name for p in out.iterdir())
    assert rep["cancelled"] is True and rep["counts"]["cancelled"] > 0, rep["counts"]
    assert written == sorted(Path(it["output"]).name for it in rep["items"] if it["status"] == "ok")
    assert not [name for name in written if name.startswith(".")]      # no temporary files left
    # and the usual resume finishes the rest
    rc, err = cli(capsys, "batch", *args, "--skip-existing")
    assert rc == 0, err
    assert len(list(out.glob("*.jpg"))) == n


def test_the_summary_counts_only_the_problems_it_could_list(tmp_path, portrait_path, tiny_model_path):
    # Stopped early, the photos not processed ("cancelled") are counted in the summary line and were
    # left out of the problem list, yet still counted in its "… N more": one skipped file listed,
    # then "… 18 more" that were nowhere to be seen
    src = copies(tmp_path / "in", portrait_path, 60)
    (src / "notes.txt").write_text("not a photo\n")
    out, report = tmp_path / "out", tmp_path / "report.json"
    rc, err = stop_mid_batch([src, "-o", out, "--aligned", "--set", "Smiling=2", "--model", tiny_model_path,
                              "--device", "cpu", "--report", report], out, signal.SIGINT)
    assert rc == 130, err
    rep = json.loads(report.read_text())
    assert rep["counts"]["cancelled"] > 20, rep["counts"]      # more than the list could show
    assert f"{rep['counts']['cancelled']} not processed" in err
    assert "skipped: notes.txt: not an image" in err
    assert "more" not in err, err                             # one problem, and it was listed


def test_skip_existing_leaves_a_dangling_link_at_an_output_name_alone(tmp_path, capsys, portrait_path,
                                                                      tiny_model_path):
    # Without a flag the run refuses because of the link ("--skip-existing keeps them"), but
    # --skip-existing then replaced the user's link with a photo
    src = copies(tmp_path / "in", portrait_path, 2)
    out = tmp_path / "out"
    out.mkdir()
    link = out / "00.jpg"
    link.symlink_to(tmp_path / "elsewhere" / "moved.jpg")
    args = ["batch", src, "-o", out, "--aligned", "--set", "Smiling=2", "--model", tiny_model_path,
            "--device", "cpu"]
    rc, err = cli(capsys, *args)
    assert rc == 2 and "00.jpg" in err and "--skip-existing keeps them" in err
    rc, err = cli(capsys, *args, "--skip-existing", "--report", tmp_path / "r.json")
    assert link.is_symlink() and os.readlink(link) == str(tmp_path / "elsewhere" / "moved.jpg")
    assert (out / "01.jpg").is_file()
    rep = json.loads((tmp_path / "r.json").read_text())
    assert {it["relative"]: it["status"] for it in rep["items"]} == {"00.jpg": "exists", "01.jpg": "ok"}
    assert rc == 0, err


def test_the_same_command_with_a_report_in_the_input_folder_runs_again(tmp_path, capsys, portrait_path,
                                                                       tiny_model_path):
    # the first run wrote its report among the photos; running the same command again (to redo the
    # photos) was refused: "the report would overwrite an input file"
    src = copies(tmp_path / "in", portrait_path, 2)
    report = src / "report.json"
    args = ["batch", src, "-o", tmp_path / "out", "--aligned", "--set", "Smiling=2", "--model", tiny_model_path,
            "--device", "cpu", "--report", report]
    rc, err = cli(capsys, *args)
    assert rc == 0, err
    first = json.loads(report.read_text())
    rc, err = cli(capsys, *args, "--overwrite")
    assert rc == 0, err
    rep = json.loads(report.read_text())
    assert rep["started"] and rep["counts"] == first["counts"] == {"ok": 2, "exists": 0, "skipped": 0, "failed": 0,
                                                                    "cancelled": 0}
    assert [it["relative"] for it in rep["items"]] == ["00.jpg", "01.jpg"]   # not the report itself
    # a file of the user's at that name stays refused
    (src / "mine.json").write_text('{"format": "something else"}')
    rc, err = cli(capsys, *args[:-1], src / "mine.json", "--overwrite")
    assert rc == 2 and "input file" in err
    assert json.loads((src / "mine.json").read_text()) == {"format": "something else"}


def test_clashing_names_are_not_told_to_choose_format(tmp_path, capsys, portrait_path, tiny_model_path):
    # a.jpg and a.png with --format jpg both become a.jpg: the note said "choose --format to keep
    # both", though --format is what made them clash (and no format can part them)
    from core.image_io import load_image, save_image
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(portrait_path, src / "a.jpg")
    save_image(src / "a.png", load_image(portrait_path))
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--aligned", "--set", "Smiling=2", "--format", "jpg",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 1
    line = next(x for x in err.splitlines() if "a.png" in x)
    assert "same output file as a.jpg" in line and "rename" in line and "--format" not in line, line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg"]
