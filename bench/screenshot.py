"""docs/screenshot.png: the real window with a photo open and a few faders moved, before/after split.

Run under a real X server (docs/gui.md, "The screenshot"):

    Xvfb :99 -screen 0 1600x1000x24 &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb python bench/screenshot.py --photo PHOTO -o docs/screenshot.png \
        --set Smiling=1.8 --set Eyeglasses=1.8 --overwrite

The window uses fresh settings (a temporary config folder), the model given by --model (default:
the embedded one), moves each fader through its spin box as a user would, waits for the preview,
turns on View > Before/after split and saves ``window.grab()`` (atomically; an existing file only
with --overwrite, refused before the window opens otherwise).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_cli import add_overwrite, check_output, one_line_errors, parser, written_through  # noqa: E402


@one_line_errors("screenshot")
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--photo", required=True, type=Path)
    ap.add_argument("-o", "--out", required=True, type=Path, help="the screenshot (.png)")
    add_overwrite(ap, "the screenshot")
    ap.add_argument("--model", type=Path, default=ROOT / "resources" / "models" / "default.fader")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="fader value (UI units)")
    ap.add_argument("--size", default="1400x900", help="window size WxH")
    ap.add_argument("--split", type=float, default=0.5, help="before/after line position (0..1 of the photo)")
    ap.add_argument("--zoom-face", action="store_true", help="View > Zoom to face before the shot")
    a = ap.parse_args(argv)
    check_output(a.out, "-o", overwrite=a.overwrite, make_folder=True)
    tmp = tempfile.mkdtemp(prefix="fader-shot-")
    os.environ["XDG_CONFIG_HOME"] = os.path.join(tmp, "config")
    os.environ["XDG_DATA_HOME"] = os.path.join(tmp, "data")

    from PySide6.QtWidgets import QApplication
    from fader_desktop.app import make_application
    from fader_desktop.main_window import MainWindow
    from fader_desktop.settings import Settings

    app = make_application()
    w = MainWindow(Settings())
    width, height = (int(v) for v in a.size.lower().split("x"))
    w.resize(width, height)
    state = {"model": False, "photo": False, "gen": -1, "error": None}
    w.modelChanged.connect(lambda info: state.update(model=True))
    w.photoOpened.connect(lambda info: state.update(photo=True))
    w.previewUpdated.connect(lambda gen: state.update(gen=gen))
    w.errorShown.connect(lambda title, msg: state.update(error=f"{title}: {msg}"))

    def wait(cond, what: str, timeout: float = 120.0) -> None:
        t = time.monotonic()
        while not cond():
            if state["error"]:  # raised here, not inside the Qt slot that reported it
                raise SystemExit(f"error: {state['error']}")
            app.processEvents()
            time.sleep(0.01)
            if time.monotonic() - t > timeout:
                raise SystemExit(f"timed out waiting for {what}")

    w.show()
    w.start(model=str(a.model), images=[str(a.photo)])
    wait(lambda: state["model"] and state["photo"], "the model and the photo")
    for spec in a.set:
        name, _, value = spec.partition("=")
        row = w.panel._rows.get(name)
        if row is None:
            raise SystemExit(f"no fader {name!r} (has {', '.join(w.panel._rows)})")
        if not row.spin.minimum() <= float(value) <= row.spin.maximum():
            raise SystemExit(f"{spec}: the {name} fader goes {row.spin.minimum():g} … {row.spin.maximum():g}")
        if row.spin.value() == float(value):
            continue   # the face is there already: no new preview comes
        before = state["gen"]
        row.spin.setValue(float(value))
        wait(lambda: state["gen"] != before, f"the preview after {spec}")
    if a.zoom_face:
        w.act_zoom_face.trigger()
    w.act_split.setChecked(True)
    w.canvas.set_split_fraction(a.split)
    t = time.monotonic()
    while time.monotonic() - t < 1.0:  # let the last repaint land
        app.processEvents()
        time.sleep(0.02)
    with written_through(a.out, "-o", overwrite=a.overwrite) as part:
        if not w.grab().save(str(part)):
            raise OSError(f"Qt could not write a {a.out.suffix or 'suffix-less'} image")
    print(f"{a.out}: {w.width()}x{w.height()}, model {a.model.name}, photo {a.photo.name}, {' '.join(a.set)}",
          file=sys.stderr)
    w.undo_stack.setClean()   # the shot's edits: closing must not ask to discard them (it waited forever)
    w.close()
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
