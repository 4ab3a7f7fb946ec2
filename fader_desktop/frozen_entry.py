"""Entry point of the packaged app (`installer.spec` freezes this file into `FaderDesktop`).

One executable does everything `pip install` gives as two console scripts:

    FaderDesktop [IMAGE...] [--model M] [--device D]         the window   (fader_desktop.cli:main)
    FaderDesktop edit|info|batch|sweep|import-reference ...   sub-commands (fader_desktop.cli:main)
    FaderDesktop train ...                                    `fader-train` (training.cli:main)

`--smoke-test` (or FADER_SMOKE_TEST=1) before the window's arguments makes the window quit by itself
once it is painted, its model has loaded and the photo given on the command line (if any) is open,
and print one JSON line with timings; `scripts/build_app.sh` runs it with QT_QPA_PLATFORM=offscreen.
It also works from source: `python -m fader_desktop.frozen_entry --smoke-test ...`.
"""
from __future__ import annotations

import json
import os
import sys
import time

TRAIN_COMMAND = "train"
SMOKE_FLAG = "--smoke-test"
SMOKE_ENV = "FADER_SMOKE_TEST"
SMOKE_TIMEOUT_ENV = "FADER_SMOKE_TIMEOUT"  # seconds; default 300

_T0 = time.monotonic()
_SMOKE: dict = {}  # {"code": exit status} once the smoke test has finished


def process_age() -> float:
    """Seconds since this process started (from /proc, so the bootloader's share counts too)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _T0


def dispatch(argv: list[str]):
    """(callable, argv) that handles this command line: the trainer for `train`, else the app's CLI."""
    if argv and argv[0] == TRAIN_COMMAND:
        from training.cli import main as train_main
        return train_main, argv[1:]
    from fader_desktop.cli import main as app_main
    return app_main, argv


def install_smoke_test(has_images: bool) -> None:
    """Make the window quit by itself once it is up (see the module docstring); prints one JSON line."""
    import faulthandler
    faulthandler.enable()  # a crash in the smoke test leaves a Python traceback on stderr
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication
    from fader_desktop import main_window

    timeout = float(os.environ.get(SMOKE_TIMEOUT_ENV, "300"))
    report: dict = {"smoke": "running", "frozen": bool(getattr(sys, "frozen", False)),
                    "python_started_s": round(_T_ENTRY, 3)}
    state: dict = {"painted": False, "model": False, "photo": not has_images, "done": False}

    def finish(status: str, code: int) -> None:
        if state["done"]:
            return
        state["done"] = True
        report["smoke"] = status
        print(json.dumps(report), flush=True)
        _SMOKE["code"] = code
        window = state.get("window")
        if window is not None:
            window.close()  # the normal way out: saves settings, stops the inference thread
        QApplication.exit(code)

    def check() -> None:
        if state["painted"] and state["model"] and state["photo"]:
            finish("ok", 0)

    class PaintWatch(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt name)
            if event.type() == QEvent.Type.Paint and not state["painted"]:
                state["painted"] = True
                report["window_painted_s"] = round(process_age(), 3)
                QTimer.singleShot(0, check)
            return False

    original_start = main_window.MainWindow.start

    def start(window, *args, **kwargs):
        report["window_shown_s"] = round(process_age(), 3)
        state["window"] = window
        report["title"] = window.windowTitle()
        window._smoke_watch = PaintWatch(window)
        window.installEventFilter(window._smoke_watch)

        def on_model(info) -> None:
            state["model"] = True
            report["model_loaded_s"] = round(process_age(), 3)
            report["model"] = getattr(info, "name", None)
            report["device"] = str(getattr(info, "device", ""))
            check()

        def on_photo(info) -> None:
            state["photo"] = True
            report["photo_opened_s"] = round(process_age(), 3)
            report["faces"] = len(getattr(info, "faces", ()) or ())
            check()

        def on_error(title, message) -> None:  # replaces the modal box: a smoke test has nobody to click OK
            report["error"] = f"{title}: {message}"
            finish("error", 1)

        window.modelChanged.connect(on_model)
        window.photoOpened.connect(on_photo)
        window.show_error = on_error
        window.ask_confirm = lambda *a, **k: True
        QTimer.singleShot(int(timeout * 1000), lambda: (report.update(timeout_s=timeout), finish("timeout", 3)))
        model = kwargs.get("model", args[0] if args else None)
        last = getattr(getattr(window, "settings", None), "last_model", None)
        from resources import default_model_path  # torch-free, as the window itself
        if not (model or default_model_path().is_file() or (last and os.path.isfile(last))):
            state["model"] = True  # no model to wait for: the window starts empty
            report["model"] = None
        return original_start(window, *args, **kwargs)

    main_window.MainWindow.start = start


def main(argv=None) -> int:
    import multiprocessing
    multiprocessing.freeze_support()  # a frozen child process started by multiprocessing runs its target and exits here
    argv = list(sys.argv[1:] if argv is None else argv)
    smoke = SMOKE_FLAG in argv or os.environ.get(SMOKE_ENV, "") not in ("", "0")
    if SMOKE_FLAG in argv:
        argv.remove(SMOKE_FLAG)
    if argv[:1] in (["-h"], ["--help"]):
        # the packaged app has no fader-train: its trainer is `PROGRAM train`, named as the usage below names it
        also = "" if getattr(sys, "frozen", False) else ", as fader-train"
        print(f"{TRAIN_COMMAND}: train or fine-tune a model{also} (run `{_program()} {TRAIN_COMMAND} --help`)\n")
    target, args = dispatch(argv)
    is_window = not (argv and (argv[0] == TRAIN_COMMAND or argv[0] in _subcommands()))
    if smoke and is_window:
        install_smoke_test(has_images=bool(_images(args)))
        status = int(target(args) or 0)
        return _SMOKE.get("code", status if status else 4)  # 4: the window closed before the smoke test ended
    return int(target(args) or 0)


def _program() -> str:
    """This program as the user started it: in the packaged app the name every message gives it."""
    if getattr(sys, "frozen", False):
        from fader_desktop.cli import PROG
        return PROG
    return "python -m fader_desktop.frozen_entry"


def _subcommands():
    from fader_desktop.cli import SUBCOMMANDS
    return SUBCOMMANDS


def _images(args: list[str]) -> list[str]:
    """The positional IMAGE arguments of the window's command line."""
    from fader_desktop.cli import _gui_parser
    try:
        return list(_gui_parser().parse_known_args(args)[0].images)
    except SystemExit:
        return []


_T_ENTRY = process_age()

if __name__ == "__main__":
    sys.exit(main())
