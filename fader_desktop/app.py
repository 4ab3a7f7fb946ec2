"""Starting the window: QApplication, identity for QSettings, log file, theme, error dialog for
unexpected exceptions."""
from __future__ import annotations

import logging
import logging.handlers
import sys
import traceback
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QRectF, QStandardPaths
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import QApplication, QPushButton, QProxyStyle, QStyle, QStyleFactory

from .settings import APPLICATION, ORGANIZATION

log = logging.getLogger("fader_desktop")
LOG_NAME = "fader-desktop.log"


def log_path() -> Path:
    """Where the log file goes (AppDataLocation, e.g. ~/.local/share/FaderDesktop/Fader Desktop)."""
    folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(folder) / LOG_NAME


class LogFile(logging.handlers.RotatingFileHandler):
    """The rotating log file; once it cannot be written (a full disk) it says so once on stderr and
    stops, instead of a "Logging error" traceback on stderr for every later message."""

    failed = False
    program = "fader-desktop"   # the name its note on stderr gives the program (setup_logging's)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, OSError):
            super().handleError(record)   # a bad format string is a bug to show, not a disk to give up on
            return
        self.failed = True
        try:
            # what is buffered would fail again at each flush and at exit
            self.close()
        except OSError:
            pass
        reason = error.strerror or str(error)
        if sys.stderr:   # None in a windowed build
            try:
                sys.stderr.write(f"{self.program}: note: cannot write the log file {self.baseFilename} "
                                 f"({reason}); logging to it stops\n")
            except (OSError, ValueError):
                pass


def setup_logging(program: str = "fader-desktop") -> Path | None:
    """Log to a rotating file (errors users report should be in it) and warnings to stderr, each
    line there starting with `program` (the command line's name for it, cli.PROG)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = LogFile(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        path = None
    else:
        fh.program = program
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
        root.addHandler(fh)
    sh = logging.StreamHandler()
    sh.setLevel(logging.WARNING)
    # named as the command line names it: the packaged app's lines said fader-desktop beside its
    # usage's FaderDesktop
    sh.setFormatter(logging.Formatter(program.replace("%", "%%") + ": %(levelname)s: %(message)s"))
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
    # a greyed-out field's hint dimmer than greyed-out text: at the enabled hint's grey the empty
    # fields of a greyed form (the training window's Attributes and Options during a run) looked live
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.PlaceholderText, QColor(95, 95, 99))
    # the filled part of a disabled slider (the Export dialog's Quality for PNG) is grey, not blue
    p.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(80, 80, 84))
    return p


# the outline drawn around check boxes, radio buttons and text fields (OutlinedStyle), at about
# 3:1 against the dark theme's window: Fusion outlines them in the window's colour darkened, which
# on a dark window left an unchecked box or an empty field at about 1.2:1, next to invisible
OUTLINE, OUTLINE_DISABLED = QColor(122, 122, 128), QColor(78, 78, 82)


# the ring a focused push button gets inside its outline (OutlinedStyle), in the palette's highlight
BUTTON_FOCUS_PX = 2


class OutlinedStyle(QProxyStyle):
    """Fusion, with check boxes, radio buttons and text fields outlined so that they show on the
    dark theme (a focused text field keeps Fusion's highlight), and a focused push button ringed.

    Fusion outlines a push button in the same highlight when it is the default button (Enter
    presses it) as when it has the focus: a dialog's Export, its default, looked exactly as before
    once Tab reached it, and with the focus elsewhere it looked focused. The focused button gets
    a ring of BUTTON_FOCUS_PX inside that outline, however the focus came (as the faders' ring),
    so the default's thin outline alone reads as "Enter presses this"."""

    _OUTLINED = (QStyle.PrimitiveElement.PE_IndicatorCheckBox, QStyle.PrimitiveElement.PE_IndicatorRadioButton,
                 QStyle.PrimitiveElement.PE_FrameLineEdit)

    def styleHint(self, hint, option=None, widget=None, returnData=None) -> int:
        # no icons on dialog buttons, whatever the platform theme says: under X11 Qt's generic
        # theme put a black X on Close (model card, shortcuts, batch), hard to see on the dark
        # grey button, while the training window's Close, a plain button, had none
        if hint == QStyle.StyleHint.SH_DialogButtonBox_ButtonsHaveIcons:
            return 0
        return super().styleHint(hint, option, widget, returnData)

    def drawPrimitive(self, element, option, painter, widget=None) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element == QStyle.PrimitiveElement.PE_PanelButtonCommand and isinstance(widget, QPushButton) \
                and option.state & QStyle.StateFlag.State_HasFocus:
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(QPen(option.palette.color(QPalette.ColorRole.Highlight), BUTTON_FOCUS_PX))
            painter.setBrush(QColor(0, 0, 0, 0))
            inset = 1 + BUTTON_FOCUS_PX / 2   # inside Fusion's 1 px outline
            painter.drawRoundedRect(QRectF(option.rect).adjusted(inset, inset, -inset, -inset), 1.5, 1.5)
            painter.restore()
            return
        if element not in self._OUTLINED:
            return
        state = option.state
        if element == QStyle.PrimitiveElement.PE_FrameLineEdit and state & QStyle.StateFlag.State_HasFocus:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        enabled = bool(state & QStyle.StateFlag.State_Enabled)
        painter.setPen(QPen(OUTLINE if enabled else OUTLINE_DISABLED, 1.0))
        painter.setBrush(QColor(0, 0, 0, 0))
        r = QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5)
        if element == QStyle.PrimitiveElement.PE_IndicatorRadioButton:
            painter.drawEllipse(r.adjusted(0.5, 0.5, -0.5, -0.5))
        else:
            painter.drawRoundedRect(r, 2.0, 2.0)
        painter.restore()


def make_application(argv=None) -> QApplication:
    """The QApplication with the identity QSettings and QStandardPaths use, and the theme."""
    app = QApplication.instance() or QApplication(list(argv if argv is not None else sys.argv[:1]))
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setDesktopFileName("fader-desktop")
    app.setStyle(OutlinedStyle(QStyleFactory.create("Fusion")))
    app.setPalette(dark_palette())
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


def run_app(images=(), model=None, device: Optional[str] = None, program: str = "fader-desktop") -> int:
    """Start the editor window; returns the exit status. ``device``: given on the command line,
    it becomes the window's saved choice (``"auto"`` too); None keeps the saved one. ``program``:
    the name its lines on stderr give it (cli.PROG)."""
    # the identity first: the log file's folder (QStandardPaths) is named after it
    QApplication.setOrganizationName(ORGANIZATION)
    QApplication.setApplicationName(APPLICATION)
    logfile = setup_logging(program)
    app = make_application()
    log.info("starting; log file %s", logfile)
    from .main_window import MainWindow
    from .settings import Settings
    settings = Settings()
    # --device on the command line wins over the saved choice (and is saved as the new choice)
    if device:
        settings.device = device
    window = MainWindow(settings, device=device or None)
    _install_excepthook(window)
    window.show()
    window.start(model=model, images=list(images or ()))
    status = app.exec()
    # the window closes without waiting for its worker thread: what still runs there (a model load,
    # a sweep: cancelled, they stop at their next step; an export: written) ends before the process
    # does, never under the interpreter's or Qt's teardown
    window.jobs.cancel()
    window.jobs.shutdown(timeout=60)
    log.info("exit %d", status)
    return int(status)


__all__ = ["run_app", "make_application", "setup_logging", "LogFile", "log_path", "dark_palette"]
