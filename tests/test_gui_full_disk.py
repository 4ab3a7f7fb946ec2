"""QA on a full disk: a log file that cannot be written is said once on stderr (not a "Logging error"
traceback per message), and settings that cannot be saved are said at start with the cause.

A full disk is simulated without root or mounts: the log file is a link to /dev/full (every write
fails with ENOSPC, Linux), and the settings are written under RLIMIT_FSIZE 0 (every write fails with
EFBIG), each in a child process so that nothing else in the test run is held to it."""
from __future__ import annotations

import errno
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from fader_desktop.app import LogFile  # noqa: E402
from fader_desktop.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _child(script: str, *args, env_extra=None, timeout=180) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


# -- the log file -----------------------------------------------------------------------------

LOG_SCRIPT = r"""
import logging, sys
from PySide6.QtCore import QCoreApplication
from fader_desktop.app import log_path, setup_logging
from fader_desktop.settings import APPLICATION, ORGANIZATION
QCoreApplication.setOrganizationName(ORGANIZATION)
QCoreApplication.setApplicationName(APPLICATION)
path = log_path()
path.parent.mkdir(parents=True)
path.symlink_to("/dev/full")
print("log file", setup_logging())
log = logging.getLogger("fader_desktop")
for i in range(5):
    log.info("message %d", i)
log.warning("a warning still said on stderr")
log.error("an error still said on stderr")
print("still running")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.exists("/dev/full"),
                    reason="needs /dev/full and XDG_DATA_HOME (Linux)")
def test_a_log_file_on_a_full_disk_is_said_once_not_a_traceback_per_message(tmp_path):
    """HOME on a full disk: every log call printed a "--- Logging error ---" traceback on stderr."""
    r = _child(LOG_SCRIPT, env_extra={"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "still running" in r.stdout, r.stdout
    log_file = tmp_path / "data" / "FaderDesktop" / "Fader Desktop" / "fader-desktop.log"
    note = (f"fader-desktop: note: cannot write the log file {log_file} ({os.strerror(errno.ENOSPC)}); "
            "logging to it stops")
    assert r.stderr.count(note) == 1, r.stderr
    assert "cannot write the log file" not in r.stderr.replace(note, ""), r.stderr
    assert "Logging error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    # the app goes on: warnings and errors still reach stderr
    assert "fader-desktop: WARNING: a warning still said on stderr" in r.stderr, r.stderr
    assert "fader-desktop: ERROR: an error still said on stderr" in r.stderr, r.stderr


class _FullDisk(io.StringIO):
    """A stream on a full disk: what is written cannot be flushed."""

    def flush(self):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_log_file_that_fails_stops_and_says_so_once(tmp_path, capsys):
    """The same without /dev/full (any platform): the handler's stream fails with ENOSPC."""
    h = LogFile(tmp_path / "fader-desktop.log", maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    h.stream.close()
    h.stream = _FullDisk()
    logger = logging.getLogger("fader_desktop.test_full_disk")
    logger.propagate = False
    logger.addHandler(h)
    try:
        for i in range(5):
            logger.warning("message %d", i)
    finally:
        logger.removeHandler(h)
        h.close()
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1, err
    assert f"({os.strerror(errno.ENOSPC)}); logging to it stops" in err, err
    assert "Logging error" not in err and "Traceback" not in err, err


def test_a_log_message_that_cannot_be_formatted_still_shows_the_bug(tmp_path, capsys):
    """Only a failing disk silences the log file: a bad message is a bug, and its traceback stays."""
    h = LogFile(tmp_path / "fader-desktop.log", encoding="utf-8")
    logger = logging.getLogger("fader_desktop.test_bad_format")
    logger.propagate = False
    logger.addHandler(h)
    try:
        logger.warning("two %s %s", "but one argument")
        logger.warning("a good one")
    finally:
        logger.removeHandler(h)
        h.close()
    err = capsys.readouterr().err
    assert "Logging error" in err and "cannot write the log file" not in err, err
    assert "a good one" in (tmp_path / "fader-desktop.log").read_text(encoding="utf-8")


# -- the settings -----------------------------------------------------------------------------

SETTINGS_SCRIPT = r"""
import resource, signal, sys
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from fader_desktop.main_window import MainWindow
from fader_desktop.settings import Settings
ini, model = sys.argv[1], sys.argv[2]
# every file write from here on fails (EFBIG) as on a full disk, instead of killing the process
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
settings = Settings(QSettings(ini, QSettings.Format.IniFormat))
print("reason:", settings.unsaved_reason())
w = MainWindow(settings, device="cpu")
w.modelChanged.connect(lambda *a: QTimer.singleShot(0, app.quit))
QTimer.singleShot(120_000, lambda: app.exit(3))
w.start(model=model)
status = app.exec()
print("status bar:", w.statusBar().currentMessage())
sys.exit(status)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_settings_that_a_full_disk_keeps_from_being_saved_are_said_at_start(tmp_path, tiny_model_path):
    """The settings folder is writable but writing the file fails: sync() failed with AccessError,
    the old file stayed, and the user was never told that nothing would be remembered."""
    ini = tmp_path / "config" / "s.ini"
    ini.parent.mkdir()
    ini.write_text("[General]\ndevice=cpu\n")
    before = ini.read_bytes()
    r = _child(SETTINGS_SCRIPT, ini, tiny_model_path)
    assert r.returncode == 0, r.stdout + r.stderr
    cause = os.strerror(errno.EFBIG)
    said = (f"settings cannot be saved (writing {ini} failed: {cause}): recent files, the window's size "
            "and the last model will not be remembered")
    assert f"reason: {said}" in r.stdout, r.stdout
    status_bar = next(line for line in r.stdout.splitlines() if line.startswith("status bar:"))
    assert said in status_bar, status_bar
    assert said in r.stderr, r.stderr   # logged as a warning too
    assert ini.read_bytes() == before   # the old settings are kept whole


def test_settings_that_are_saved_say_nothing_and_are_left_as_they_were(tmp_path):
    """Finding out writes the file: it keeps what it held and gains nothing."""
    ini = tmp_path / "s.ini"
    ini.write_text("[General]\ndevice=cpu\n")
    settings = Settings(QSettings(str(ini), QSettings.Format.IniFormat))
    assert settings.unsaved_reason() is None
    assert QSettings(str(ini), QSettings.Format.IniFormat).allKeys() == ["device"]
    assert settings.device == "cpu"
