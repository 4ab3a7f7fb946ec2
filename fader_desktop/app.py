"""Starting the window: QApplication, identity for QSettings, log file, theme, crash guard."""
from __future__ import annotations

import logging
import logging.handlers
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from .settings import APPLICATION, ORGANIZATION

log = logging.getLogger("fader_desktop")
LOG_NAME = "fader-desktop.log"


def log_path() -> Path:
    """Where the log file goes (AppDataLocation, e.g. ~/.local/share/FaderDesktop/Fader Desktop)."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(folder) / LOG_NAME


def setup_logging() -> Path | None:
    """Log to a rotating file (errors users report should be in it) and warnings to stderr."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        path = None
    else:
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
        root.addHandler(fh)
    sh = logging.StreamHandler()
    sh.setLevel(logging.WARNING)
    sh.setFormatter(logging.Formatter("fader-desktop: %(levelname)s: %(message)s"))
    root.addHandler(sh)
    return path


def dark_palette() -> QPalette:
    """A neutral dark theme: photos are judged against grey, not against a white window."""
    p = QPalette()
    base, window, text = QColor(30, 30, 32), QColor(45, 45, 48), QColor(225, 225, 225)
    roles = {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: window,
        QPalette.ColorRole.ToolTipBase: QColor(60, 60, 64), QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: QColor(58, 58, 62),
        QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Highlight: QColor(61, 174, 233), QPalette.ColorRole.HighlightedText: QColor(20, 20, 20),
        QPalette.ColorRole.Link: QColor(100, 180, 240), QPalette.ColorRole.PlaceholderText: QColor(150, 150, 155),
        QPalette.ColorRole.Mid: QColor(70, 70, 74), QPalette.ColorRole.Dark: QColor(25, 25, 27),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 124))
    return p


# -- PySide6 6.12.0 on Python < 3.12 -------------------------------------------------------------
# That release drops one reference to None on every call of a void C++ method and one to True on
# every signal emission. From Python 3.12 on those objects are immortal and nothing happens; on 3.11
# the process aborts ("Fatal Python error: none_dealloc / bool_dealloc") after some 10^4 calls, i.e.
# within a minute of dragging a fader. Until the dependency excludes that release, the guard gives
# None, True and False a reserve of 2^40 references once: what 3.12 does by making them immortal
# (at a million lost references a second the reserve lasts twelve days). It writes the reference
# count directly, in one step: topping it up through Py_IncRef in a loop cost 10 ms per 250 ms.
_RESERVE = 1 << 40


def _leaks_references() -> bool:
    from PySide6.QtCore import QObject
    if sys.version_info >= (3, 12):
        return False
    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(64):
        probe.setObjectName("probe")
    return before - sys.getrefcount(None) >= 32


def install_refcount_guard(app=None) -> bool:
    """Compensate PySide6 6.12.0's lost references on Python < 3.12 (no-op elsewhere). Idempotent;
    returns whether the guard is active."""
    if getattr(install_refcount_guard, "active", False):
        return True
    if not _leaks_references():
        return False
    import ctypes
    import PySide6
    for obj in (None, True, False):
        # CPython < 3.12: ob_refcnt is the first field of every object
        ctypes.c_ssize_t.from_address(id(obj)).value += _RESERVE
    install_refcount_guard.active = True
    log.warning("PySide6 %s on Python %d.%d loses references to None/True on every call; compensated "
                "(PySide6-Essentials < 6.12 or Python >= 3.12 avoid this)", PySide6.__version__,
                *sys.version_info[:2])
    return True


def make_application(argv=None) -> QApplication:
    """The QApplication with the identity QSettings and QStandardPaths use, and the theme."""
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setDesktopFileName("fader-desktop")
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    install_refcount_guard(app)
    return app


def _install_excepthook(window) -> None:
    """An unexpected exception in a slot becomes a logged error dialog, not a dead window."""
    def hook(etype, value, tb):
        log.error("unexpected error:\n%s", "".join(traceback.format_exception(etype, value, tb)))
        if issubclass(etype, KeyboardInterrupt):
            QApplication.quit()
            return
        try:
            window.show_error("Unexpected error", f"{etype.__name__}: {value}\n\nDetails are in the log file {log_path()}.")
        except Exception:
            pass
    sys.excepthook = hook


def run_app(images=(), model=None, device: str = "auto") -> int:
    """Start the editor window; returns the exit status."""
    # the identity first: the log file's folder (QStandardPaths) is named after it
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    logfile = setup_logging()
    app = make_application()
    log.info("starting; log file %s", logfile)
    from .main_window import MainWindow
    from .settings import Settings
    settings = Settings()
    # --device on the command line wins over the saved choice (and is saved as the new choice)
    if device and device != "auto":
        settings.device = device
    window = MainWindow(settings, device=device if device and device != "auto" else None)
    _install_excepthook(window)
    window.show()
    window.start(model=model, images=list(images or ()))
    status = app.exec()
    log.info("exit %d", status)
    return int(status)


__all__ = ["run_app", "make_application", "setup_logging", "log_path", "dark_palette"]
