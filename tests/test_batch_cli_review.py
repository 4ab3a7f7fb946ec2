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

import numpy as np
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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # SIGINT as a terminal's Ctrl-C sends it, also where pytest runs as a
                            # background job of a script (which ignores SIGINT for its children)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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
    # a file that is not an image is no problem of the run: named once, in a note
    assert "1 file that is not an image was left alone: notes.txt" in err
    assert "more" not in err and "  skipped:" not in err, err
    assert "--skip-existing goes on where this run stopped" in err


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


# -- a QA round on real folders: sidecars, unreadable folders, a report that cannot be written, --
# -- a second signal ----------------------------------------------------------------------------

def test_camera_sidecars_beside_the_photos_do_not_fail_the_run(tmp_path, capsys, portrait_path, tiny_model_path):
    """A phone's or camera's folder holds .xmp/.AAE sidecars: each was a 'skipped: not an image'
    problem line, hiding the real problems among them, and the run always exited 1."""
    src = copies(tmp_path / "in", portrait_path, 3)
    for k in range(25):
        (src / f"IMG_{k:04d}.xmp").write_text("<x:xmpmeta/>\n")
    (src / "broken.jpg").write_bytes(portrait_path.read_bytes()[:2000])
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out", "--aligned", "--set", "Smiling=2",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 1, err                                   # the truncated photo is a problem
    lines = err.splitlines()
    # the report's count of skipped files, the sidecars named among them (not as problems)
    assert any("3 written, 0 already there, 26 skipped (25 not images), 0 failed" in line for line in lines), err
    assert [line for line in lines if line.startswith("  ")] == [
        next(line for line in lines if line.startswith("  skipped: broken.jpg"))]
    assert "25 files that are not images were left alone, e.g. IMG_0000.xmp" in err
    (src / "broken.jpg").unlink()
    rc, err = cli(capsys, "batch", src, "-o", tmp_path / "out2", "--aligned", "--set", "Smiling=2",
                  "--model", tiny_model_path, "--device", "cpu")
    assert rc == 0, err                                   # only sidecars left alone: success


def _without_root_override() -> list:
    """A command prefix that runs without the file-permission override root has, or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None or subprocess.run([setpriv, "--inh-caps=-all", "--bounding-set=-all", "true"],
                                         capture_output=True).returncode != 0:
        return None
    return [setpriv, "--inh-caps=-all", "--bounding-set=-all"]


def test_a_sub_folder_that_cannot_be_read_is_named_and_fails_the_run(tmp_path, portrait_path, tiny_model_path):
    """A sub-folder without read permission was left out silently: '2 written, 0 skipped', exit 0,
    and its photos in neither the summary nor the report."""
    prefix = _without_root_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions do not bind here")
    src = copies(tmp_path / "in", portrait_path, 2)
    copies(src / "locked", portrait_path, 2)
    (src / "locked").chmod(0)
    try:
        out, report = tmp_path / "out", tmp_path / "report.json"
        run = subprocess.run([*prefix, sys.executable, "-m", "fader_desktop", "batch", str(src), "-o", str(out),
                              "--aligned", "--set", "Smiling=2", "--model", str(tiny_model_path), "--device", "cpu",
                              "--report", str(report)], cwd=REPO, capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, OMP_NUM_THREADS="1"))
    finally:
        (src / "locked").chmod(0o755)
    assert run.returncode == 1, run.stderr
    assert "2 written, 0 already there, 1 skipped" in run.stderr
    assert "skipped: locked/: cannot read the folder (permission denied); its photos were left out" in run.stderr
    items = {it["relative"]: it for it in json.loads(report.read_text())["items"]}
    assert items["locked/"]["status"] == "skipped"


def test_a_report_that_cannot_be_written_keeps_the_summary(tmp_path, portrait_path, tiny_model_path):
    """A disk that filled up during the run: the report's write error replaced the whole summary,
    nothing said which photos were written, and the exit status was 2 (a usage error)."""
    from core.batch import BatchOptions, run_batch
    from core.engine import Engine
    from core.model_file import load_model
    src = copies(tmp_path / "in", portrait_path, 3)
    reports = tmp_path / "reports"
    reports.mkdir()

    def progress(done, total, path):
        if done == 1 and reports.is_dir():       # the report's folder is gone when the run ends
            shutil.rmtree(reports)
            reports.write_text("now a file")
    rep = run_batch(src, tmp_path / "out", Engine(load_model(tiny_model_path), device="cpu"),
                    BatchOptions(values={"Smiling": 2.0}, aligned=True), progress=progress,
                    report_path=reports / "r.json")
    assert rep.counts()["ok"] == 3 and len(list((tmp_path / "out").glob("*.jpg"))) == 3
    assert rep.report_error and "cannot write report" in rep.report_error and str(reports / "r.json") in rep.report_error
    assert rep.exit_status == 1


def batch_under_way(tmp_path, portrait_path, tiny_model_path, **popen) -> tuple:
    """(the process, its output folder, its report) of `fader-desktop batch` over six 2048x2048
    photos, once its first output is written: each photo's paste-back and PNG write take ~1 s here
    (4096x4096 took ~3 s), ~20x the time a test leaves between two signals. `popen`: more
    subprocess.Popen arguments."""
    from core.image_io import load_image, save_image
    src = tmp_path / "in"
    src.mkdir()
    big = np.repeat(np.repeat(load_image(portrait_path), 4, axis=0), 4, axis=1)
    save_image(src / "00.jpg", big, quality=80)
    for k in range(1, 6):   # it stops after the second: more photos only cost their making and reading
        shutil.copy(src / "00.jpg", src / f"{k:02d}.jpg")
    out, report = tmp_path / "out", tmp_path / "report.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "fader_desktop", "batch", str(src), "-o", str(out), "--aligned",
                             "--set", "Smiling=2", "--format", "png", "--model", str(tiny_model_path),
                             "--device", "cpu", "--report", str(report)], cwd=REPO, env=env, stderr=subprocess.PIPE,
                            text=True, **popen)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(out.glob("*.png"))) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, proc.communicate()[1]
    return proc, out, report


def test_a_second_sigterm_aborts_with_143_and_the_report(tmp_path, portrait_path, tiny_model_path):
    """A second SIGTERM ended as a Ctrl-C would, 'interrupted' with 130 (docs: 143 for SIGTERM)."""
    proc, out, report = batch_under_way(tmp_path, portrait_path, tiny_model_path)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "aborted" in err and "Traceback" not in err
    rep = json.loads(report.read_text())
    assert rep["cancelled"] is True
    assert {Path(it["relative"]).stem for it in rep["items"] if it["status"] == "ok"} == {p.stem for p in out.glob("*.png")}
    assert not list(out.glob(".*part"))
