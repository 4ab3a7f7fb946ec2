"""A QA walk of the packaged app: starting the window on a display it cannot use, the program's
name in the frozen app's messages, and a failure in the window logged once."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None,
                                reason="the xcb platform and ldd are Linux things")


def _clean_env(tmp_path: Path, **extra) -> dict:
    """The environment of a user's shell: no Qt or display settings but those given, a fresh home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("QT_", "WAYLAND", "DISPLAY", "XAUTHORITY"))}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               OMP_NUM_THREADS="1", **extra)
    return env


def _free_display() -> int:
    """A display number no X server here listens on (no socket file, no abstract socket, no lock)."""
    try:
        sockets = Path("/proc/net/unix").read_text()
    except OSError:
        sockets = ""
    start = 147 + os.getpid() % 500   # parallel test runs (xdist workers) start apart
    for n in [*range(start, 800), *range(147, start)]:
        if not (Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists()
                or f"/tmp/.X11-unix/X{n}\n" in sockets):
            return n
    pytest.skip("no free X display number")


def _xcb_usable() -> None:
    from fader_desktop.platform_check import missing_libraries, xcb_plugin
    plugin = xcb_plugin({})
    if plugin is None or missing_libraries(plugin):
        pytest.skip("needs an xcb plugin whose libraries are all installed")


# ---- 1. a display that is set but cannot be used ------------------------------------------------
@linux_only
def test_an_unreachable_display_is_one_line_and_exit_2_not_a_core_dump(tmp_path):
    """`DISPLAY=:5 fader-desktop` with no X server on :5: Qt said it could not connect, then
    blamed a missing xcb-cursor0 (installed) and aborted with a core dump (exit 134)."""
    _xcb_usable()
    n = _free_display()
    r = subprocess.run([sys.executable, "-m", "fader_desktop"], cwd=tmp_path, capture_output=True, text=True,
                       env=_clean_env(tmp_path, DISPLAY=f":{n}"), timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert lines == [
        f"fader-desktop: error: the window cannot start: the X11 display :{n} (from DISPLAY) cannot be "
        "reached: no X server answers there; run it in a desktop session, or run it with "
        "QT_QPA_PLATFORM=wayland in a Wayland session (QT_QPA_PLATFORM=offscreen starts it without a "
        "window, e.g. for tests)"], lines
    assert "xcb-cursor0" not in r.stderr and "Aborted" not in r.stderr


@contextlib.contextmanager
def xvfb(n: int, *options):
    """An Xvfb on display :n (`options`: more of its arguments) until the block ends; skips the
    test where it does not start."""
    server = subprocess.Popen(["Xvfb", f":{n}", *options, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"Xvfb :{n} did not start")
            time.sleep(0.05)
        yield f":{n}"
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture
def xvfb_with_cookie(tmp_path):
    """(display, the cookie file letting a user in) of an Xvfb that lets in only holders of it."""
    if shutil.which("Xvfb") is None or shutil.which("xauth") is None:
        pytest.skip("needs Xvfb and xauth")
    n = _free_display()
    cookie = tmp_path / "Xauthority"
    subprocess.run(["xauth", "-q", "-f", str(cookie), "add", f":{n}", ".", os.urandom(16).hex()],
                   check=True, capture_output=True, timeout=30)
    with xvfb(n, "-auth", str(cookie)) as display:
        yield display, cookie


@linux_only
def test_an_x_server_that_refuses_this_user_is_one_line_and_one_that_lets_it_in_starts_the_window(
        tmp_path, xvfb_with_cookie, tiny_model_path):
    """A display whose server wants a cookie this user lacks (another user's session, a lost
    XAUTHORITY) aborted with a core dump too, under the server's own 'Authorization required'; with
    the cookie the window comes up on it as before (xcb, painted, model loaded)."""
    _xcb_usable()
    display, cookie = xvfb_with_cookie
    r = subprocess.run([sys.executable, "-m", "fader_desktop"], cwd=tmp_path, capture_output=True, text=True,
                       env=_clean_env(tmp_path, DISPLAY=display, XAUTHORITY=str(tmp_path / "none")), timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith(
        f"fader-desktop: error: the window cannot start: the X server of display {display} (from DISPLAY) "
        "does not let this user in (Authorization required"), lines
    assert "`xauth list`" in lines[0] and "Aborted" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "fader_desktop.frozen_entry", "--smoke-test", "--model", str(tiny_model_path)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=_clean_env(tmp_path, DISPLAY=display, XAUTHORITY=str(cookie), QT_QPA_PLATFORM="xcb"))
    assert r.returncode == 0 and '"smoke": "ok"' in r.stdout, r.stdout + r.stderr[-2000:]


# ---- 2. one name for the program in the packaged app --------------------------------------------
# The packaged app as PyInstaller runs it: sys.frozen set, argv[0] as the user typed it.
_FROZEN = """
import sys
sys.frozen = True
sys.argv[0] = sys.argv.pop(1)
from fader_desktop import frozen_entry
for argv in (["--help"], ["edit", "--help"], ["edit", "photo.jpg"], ["eidt"], ["train", "--no-such-option"]):
    print("=== " + " ".join(argv), flush=True)
    print("=== " + " ".join(argv), file=sys.stderr, flush=True)
    try:
        frozen_entry.main(argv)
    except SystemExit:
        pass
    sys.stdout.flush(); sys.stderr.flush()
"""


def _frozen(exe: str, tmp_path: Path) -> tuple:
    r = subprocess.run([sys.executable, "-c", _FROZEN, exe], cwd=tmp_path, capture_output=True, text=True,
                       env=_clean_env(tmp_path, QT_QPA_PLATFORM="offscreen"), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout, r.stderr


@pytest.mark.parametrize("exe, name", [("/opt/Fader Desktop/FaderDesktop", "FaderDesktop"),
                                       (str(Path.home() / ".local/bin/fader-desktop"), "fader-desktop")],
                         ids=["the-executable", "install.sh-link"])
def test_the_packaged_app_names_itself_one_way_as_the_user_started_it(tmp_path, exe, name):
    """`FaderDesktop --help` said 'as fader-train (run `FaderDesktop train --help`)', then
    'usage: fader-desktop …' and 'run `fader-desktop COMMAND --help`'; its commands' errors said
    'fader-desktop: error:' beside the trainer's 'FaderDesktop train:'. Now every line names the
    program as it was started: the executable, or install.sh's `fader-desktop` link."""
    out, err = _frozen(exe, tmp_path)
    other = {"FaderDesktop": "fader-desktop", "fader-desktop": "FaderDesktop"}[name]
    assert other not in out + err and "fader-train" not in out + err, out + err
    help_text = out.split("=== --help\n")[1].split("===")[0]
    assert help_text.startswith(f"train: train or fine-tune a model (run `{name} train --help`)\n"), help_text
    assert f"\nusage: {name} [-h]" in help_text and f"(run `{name} COMMAND" in help_text
    edit_help = out.split("=== edit --help\n")[1].split("===")[0]
    assert edit_help.startswith(f"usage: {name} edit ") and f"\n  {name} edit photo.jpg -o smiling.jpg" in edit_help
    errors = err.split("=== edit photo.jpg\n")[1]
    assert f"{name} edit: error: the following arguments are required" in errors
    assert f"{name}: error: unknown command 'eidt' (did you mean 'edit'?)" in errors
    assert f"{name} train: error: unrecognized arguments: --no-such-option" in errors


# the packaged app's window given a photo it cannot open; the user reads the message box, clicks OK
# and closes the window
_FROZEN_WINDOW = """
import sys
sys.frozen = True
sys.argv[0] = sys.argv.pop(1)
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
app = QApplication(sys.argv[:1])

def answer():
    box = QApplication.activeModalWidget()
    if isinstance(box, QMessageBox):
        print("BOX", box.windowTitle(), "|", box.text(), flush=True)
        box.accept()
        QTimer.singleShot(100, QApplication.closeAllWindows)

timer = QTimer()
timer.timeout.connect(answer)
timer.start(50)
from fader_desktop import frozen_entry
sys.exit(frozen_entry.main(sys.argv[1:]))
"""


def test_the_packaged_windows_failure_is_one_line_on_stderr_under_its_name(tmp_path, tiny_model_path):
    """`FaderDesktop notes.jpg` (a text file named .jpg) printed 'fader-desktop: WARNING: Opening
    notes.jpg… failed: …' and 'fader-desktop: WARNING: Cannot open photo: …' for one failure, under
    another name than its usage's."""
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping: milk, eggs\n")
    r = subprocess.run([sys.executable, "-c", _FROZEN_WINDOW, "/opt/Fader Desktop/FaderDesktop",
                        "--model", str(tiny_model_path), "--device", "cpu", str(notes)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env=_clean_env(tmp_path, QT_QPA_PLATFORM="offscreen"))
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    box = [line for line in r.stdout.splitlines() if line.startswith("BOX ")]
    assert box == [f"BOX Cannot open photo | {notes}: cannot read image: not a recognised image format"], r.stdout
    said = [line for line in r.stderr.splitlines() if "WARNING" in line or "notes.jpg" in line]
    assert said == [f"FaderDesktop: WARNING: Cannot open photo: {notes}: cannot read image: "
                    "not a recognised image format"], r.stderr[-3000:]


# ---- 3. a failure in the window is one log line ------------------------------------------------
def open_a_text_file_named_jpg(qtbot, tmp_path):
    """A real window opening a text file named notes.jpg, the user answering every message box
    with OK (a second box is answered too, where waiting for one hung the suite); returns
    (window, the boxes' (title, text))."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox
    from fader_desktop.main_window import MainWindow
    from fader_desktop.settings import Settings

    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping: milk, eggs\n")
    w = MainWindow(Settings(QSettings(str(tmp_path / "fader-desktop.ini"), QSettings.Format.IniFormat)), device="cpu")
    qtbot.addWidget(w)
    w.show()
    boxes, answering = [], [True]

    def answer_boxes() -> None:   # the user reads each message and clicks OK
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            boxes.append((box.windowTitle(), box.text()))
            box.accept()
        if answering[0]:
            QTimer.singleShot(20, answer_boxes)

    QTimer.singleShot(20, answer_boxes)
    try:
        with qtbot.waitSignal(w.errorShown, timeout=60_000):
            w.open_photo(notes)
        assert w.jobs.wait_idle(60)
        qtbot.wait(100)   # a second box, if any, is shown and answered
    finally:
        answering[0] = False
    return w, boxes


def test_a_photo_that_fails_to_open_is_one_warning_naming_the_file_and_the_reason(qtbot, tmp_path, caplog):
    """Opening a text file named .jpg printed 'WARNING: Opening notes.jpg… failed: …' and then
    'WARNING: Cannot open photo: …' for the one failure; the window's message box is the real one."""
    pytest.importorskip("pytestqt")
    caplog.set_level(logging.INFO)
    w, boxes = open_a_text_file_named_jpg(qtbot, tmp_path)
    assert len(boxes) == 1 and boxes[0][0] == "Cannot open photo" and "notes.jpg" in boxes[0][1], boxes
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0] == f"Cannot open photo: {boxes[0][1]}", warnings
    w.close()
