"""GUI latency: how quickly the real window's preview follows a fader, and whether the GUI ever freezes.

Runs the real MainWindow (offscreen unless a display is set), opens a real photo, and drives the
first fader through 100 positions the way a mouse drag does (slider held down, one move every
1/--rate-hz seconds). A QTimer ticking every 5 ms on the GUI thread measures the event loop.
Prints one JSON line:

- median_latency_ms / p90 / max: from a value change to the first repaint of the canvas that shows
  that value or a newer one (moves that were coalesced wait for the next render: that wait counts);
- renders: how many renders the worker ran for the 100 moves (the rest were coalesced);
- render_ms_median: the worker's time per render (decode + paste back + QImage);
- longest_stall_ms: the longest gap between two 5 ms ticks during the drag (the event loop was
  blocked or starved that long; 5 ms means never);
- stalls_over_50ms: how many tick gaps exceeded 50 ms during the drag;
- idle_longest_stall_ms: the longest gap over one second with nothing happening (what the machine
  alone costs: on a shared, loaded machine the OS deschedules the process now and then);
- sequential_median_latency_ms: the same latency when each move waits for its repaint (no
  coalescing; the cost of one change on its own);
- model, photo, photo_size, threads, loadavg_1min: the conditions.

    python bench/gui_latency.py [--model M] [--photo P] [--megapixels X] [--rate-hz 60] [--device cpu]

`--sizes 48,2` measures one slider change at each photo size instead (the photo upscaled with
cv2's INTER_CUBIC to about that many megapixels, saved as a JPEG as a camera would), opened
in a 1280x820 window fitted to it; one JSON line with, per size:

- open_s: from File ▸ Open to the first paint that shows the photo with its faces found;
- draft_ms: a move of the held slider to the paint that shows it (the draft decode), median
  over --changes moves, each waiting for its paint and for the view to settle;
- release_ms: letting go of the handle to the paint of the full render (the export's decode);
- draft_render_ms / full_render_ms: the worker's time per render (decode + paste back + QImage);
- longest_stall_ms: the longest gap between 5 ms ticks of the GUI thread over those changes,
  including the 400 ms after each (the canvas's refined downscale runs then).

`--exports jpg,png` (with --sizes) also exports the edited photo in each format, through the
window's File ▸ Export path (a job off the GUI thread), and reports under "exports", per format:

- export_s: from the request to the window's "exported" signal;
- longest_stall_ms: the longest gap between 5 ms ticks of the GUI thread meanwhile (an encoder
  that holds Python's lock freezes the window that long).

A format listed more than once (`--exports tif,png,tif,png`: interleaved) is exported each time;
both keys are then medians, and stalls_ms lists each export's longest stall.

`--zooms fit,100` also times them at 100 %: the view zoomed to the face (View ▸ Zoom to face)
and then to 100 % around its centre; per size, under "at_100", the same keys over the same
number of changes, plus:

- view: [x, y, w, h] the photo pixels in view;
- pan_ms: a mouse drag of the view by 300 screen pixels (alternately left and right, after a
  change) from the button's release to the paint that shows the part now in view at the latest
  values (the window waits for the view to settle first), median over --changes drags.

Without --model the embedded model is used if present, else a randomly initialised model with the
default model's architecture (64 px, 4 layers, 32..256 feature maps; --size etc. change it), built
on the fly and named "random …" in the output: speed does not depend on the weights' values.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PHOTOS = REPO.parent / "shared" / "data" / "celeba" / "img_celeba"
TICK_MS = 5
TIMEOUT_S = 120


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def random_model_file(folder: Path, args) -> tuple[Path, str]:
    import torch

    from core.attributes import Attribute
    from core.model_file import new_model, save_model
    from core.networks import ArchConfig
    torch.manual_seed(0)
    attrs = [Attribute(n) for n in ("Smiling", "Male", "Young", "Eyeglasses", "Mouth_Slightly_Open")]
    cfg = ArchConfig(img_size=args.size, n_layers=args.n_layers, init_fm=args.init_fm, max_fm=args.max_fm)
    clf = ArchConfig(img_size=args.size, n_layers=args.n_layers, init_fm=16, max_fm=128, hid_dim=128)
    model = new_model(cfg, attrs, clf, meta={"name": "random benchmark model"})
    for m in model.autoencoder.modules():  # trained-model-like batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = folder / "random.fader"
    save_model(model, path)
    return path, (f"random (no embedded model; built on the fly: {args.size} px, n_layers {args.n_layers}, "
                  f"init_fm {args.init_fm}, max_fm {args.max_fm})")


def prepare_photo(args, folder: Path) -> Path:
    photo = Path(args.photo) if args.photo else sorted(PHOTOS.glob("*.jpg"))[0]
    if not args.megapixels:
        return photo
    import numpy as np
    from PIL import Image
    from core.image_io import load_image, save_image
    rgb = load_image(photo)
    s = (args.megapixels * 1e6 / (rgb.shape[0] * rgb.shape[1])) ** 0.5
    big = Image.fromarray(rgb).resize((round(rgb.shape[1] * s), round(rgb.shape[0] * s)), Image.LANCZOS)
    out = folder / f"{photo.stem}_{args.megapixels:g}mp.png"
    save_image(out, np.asarray(big))
    return out


def prepare_sized_photo(args, folder: Path, megapixels: float) -> Path:
    """A camera-sized JPEG: the photo upscaled (INTER_CUBIC) to about `megapixels`."""
    import cv2
    photo = Path(args.photo) if args.photo else sorted(PHOTOS.glob("*.jpg"))[0]
    bgr = cv2.imread(str(photo))
    s = (megapixels * 1e6 / (bgr.shape[0] * bgr.shape[1])) ** 0.5
    big = cv2.resize(bgr, (round(bgr.shape[1] * s), round(bgr.shape[0] * s)), interpolation=cv2.INTER_CUBIC)
    out = folder / f"{photo.stem}_{megapixels:g}mp.jpg"
    cv2.imwrite(str(out), big, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model")
    p.add_argument("--photo")
    p.add_argument("--megapixels", type=float, default=0.0, help="upscale the photo to this size first (0: as is)")
    p.add_argument("--sizes", default="", help="comma-separated megapixels: time one slider change and the "
                   "photo's opening at each size instead of the drag (e.g. 48,2)")
    p.add_argument("--changes", type=int, default=7, help="--sizes: slider changes per size (medians)")
    p.add_argument("--zooms", default="fit", help="--sizes: comma-separated views to time the changes in: "
                   "fit (the photo fitted to the window), 100 (100 %% around the face)")
    p.add_argument("--exports", default="", help="--sizes: comma-separated formats (jpg, png, tif, webp) to "
                   "export the edited photo in, timing the export and the GUI's longest stall meanwhile")
    p.add_argument("--positions", type=int, default=100)
    p.add_argument("--rate-hz", type=float, default=60.0, help="slider moves per second during the drag")
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n-layers", type=int, default=4)
    p.add_argument("--init-fm", type=int, default=32)
    p.add_argument("--max-fm", type=int, default=256)
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QSettings

    from core.model_file import default_model_path
    from fader_desktop.app import make_application
    from fader_desktop.main_window import MainWindow
    from fader_desktop.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix="gui_latency_"))
    app = make_application(["gui_latency"])
    if args.model:
        model_path, model_desc = Path(args.model), str(args.model)
    elif default_model_path().is_file():
        model_path, model_desc = default_model_path(), f"embedded ({default_model_path().name})"
    else:
        model_path, model_desc = random_model_file(tmp, args)
    log(f"model: {model_desc}")
    photo = None if args.sizes else prepare_photo(args, tmp)

    w = MainWindow(Settings(QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)), device=args.device)
    try:
        if args.sizes:
            return measure_sizes(args, app, w, model_path, model_desc, tmp)
        return measure(args, app, w, model_path, model_desc, photo)
    finally:
        w.undo_stack.setClean()
        w.close()          # stops the inference thread
        shutil.rmtree(tmp, ignore_errors=True)


def show_window(app, w, poll_ms: int):
    """Show the window at the bench's size, with errors collected instead of shown in a dialog;
    the wait_for(cond, what) that runs the event loop (polling every poll_ms) until cond() holds,
    and exits on an error or after TIMEOUT_S."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    errors = []
    w.show_error = lambda title, msg: errors.append(f"{title}: {msg}")
    w.resize(1280, 820)
    w.show()
    # processEvents(flags, maxtime) returns at once when nothing is pending, so a loop on it spun
    # the GUI thread at 100 % of a core (and held Python's lock) while the window waited, which
    # an app's event loop never does; processEvents(WaitForMoreEvents) sleeps until an event,
    # and this timer brings one at least every poll_ms.
    beat = QTimer()
    beat.setInterval(poll_ms)

    def wait_for(cond, what: str) -> None:
        timer = QElapsedTimer()
        timer.start()
        beat.start()
        try:
            while not cond():
                if errors:
                    raise SystemExit(f"gui_latency: error: {errors[0]}")
                if timer.elapsed() > TIMEOUT_S * 1000:
                    raise SystemExit(f"gui_latency: error: timed out waiting for {what}")
                app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        finally:
            beat.stop()
    return wait_for


def measure(args, app, w, model_path, model_desc, photo) -> int:
    from PySide6.QtCore import Qt, QTimer

    from fader_desktop.workers import inference_threads
    wait_for = show_window(app, w, poll_ms=20)

    w.load_model(model_path)
    wait_for(lambda: w._model is not None, "the model")
    w.open_photo(photo)
    wait_for(lambda: w._photo is not None and not w._busy, "the photo")
    if not w._photo.faces:
        raise SystemExit(f"gui_latency: error: {photo}: no face found")
    log(f"photo: {photo.name} {w._photo.width}x{w._photo.height}, {len(w._photo.faces)} face(s)")
    name = w.panel.attribute_names()[0]
    slider = w.panel.row(name).slider

    # the canvas's paint log: (time, generation on screen)
    paints = []
    w.canvas.painted.connect(lambda: paints.append((time.perf_counter(), w._shown_gen)))
    renders = []
    w.renderFinished.connect(lambda gen, ms: renders.append(ms))

    lo, hi = slider.minimum(), slider.maximum()
    positions = [round(lo + (hi - lo) * (0.5 + 0.45 * ((-1) ** k) * (k % 50) / 50)) for k in range(args.positions)]

    def latencies(changes):
        out = []
        for t, gen in changes:
            hit = next((pt for pt, pg in paints if pt >= t and pg >= gen), None)
            if hit is not None:
                out.append((hit - t) * 1000.0)
        return out

    # warm-up (first decode allocates; first paint scales)
    for v in positions[:5]:
        slider.setValue(v)
        wait_for(w.preview_current, "warm-up renders")
    app.processEvents()

    # 0) baseline: the same ticker with nothing happening (on a busy machine the OS alone stalls us)
    ticks = []
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(TICK_MS)
    ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))
    ticker.start()
    t_end = time.perf_counter() + 1.0
    wait_for(lambda: time.perf_counter() > t_end, "the idle baseline")
    ticker.stop()
    idle_gaps = sorted((b - a) * 1000.0 for a, b in zip(ticks, ticks[1:]))
    ticks.clear()

    # 1) the drag: one move every 1/rate s, slider held down; the 5 ms ticker watches the event loop
    changes = []
    paints.clear()
    renders.clear()
    it = iter(positions)

    def move():
        v = next(it, None)
        if v is None:
            mover.stop()
            slider.setSliderDown(False)
            return
        t = time.perf_counter()
        slider.setValue(v if v != slider.value() else v + 1)
        changes.append((t, w._gen))

    mover = QTimer()
    mover.setTimerType(Qt.TimerType.PreciseTimer)
    mover.setInterval(max(1, round(1000 / args.rate_hz)))
    mover.timeout.connect(move)
    slider.setSliderDown(True)
    ticker.start()
    mover.start()
    wait_for(lambda: not mover.isActive() and w.preview_current() and paints and paints[-1][1] >= w._gen,
             "the drag")
    t_end = time.perf_counter() + 0.05
    wait_for(lambda: time.perf_counter() > t_end, "settling")
    ticker.stop()
    gaps = [(b - a) * 1000.0 for a, b in zip(ticks, ticks[1:])]
    drag = latencies(changes)
    n_renders = len(renders)
    render_ms = statistics.median(renders) if renders else None

    # 2) sequential: each move waits for its repaint
    paints.clear()
    seq_changes = []
    for v in positions:
        t = time.perf_counter()
        slider.setValue(v if v != slider.value() else v + 1)
        gen = w._gen
        seq_changes.append((t, gen))
        wait_for(lambda: paints and paints[-1][1] >= gen, "a repaint")
    seq = latencies(seq_changes)

    def q(xs, f):
        xs = sorted(xs)
        return round(xs[min(len(xs) - 1, int(f * len(xs)))], 2)

    result = {
        "median_latency_ms": round(statistics.median(drag), 2),
        "p90_latency_ms": q(drag, 0.9),
        "max_latency_ms": round(max(drag), 2),
        "longest_stall_ms": round(max(gaps), 2) if gaps else None,
        "stalls_over_50ms": sum(g > 50 for g in gaps),
        "idle_longest_stall_ms": round(idle_gaps[-1], 2) if idle_gaps else None,
        "tick_ms": TICK_MS,
        "positions": len(positions),
        "rate_hz": args.rate_hz,
        "renders": n_renders,
        "render_ms_median": round(render_ms, 2) if render_ms is not None else None,
        "sequential_median_latency_ms": round(statistics.median(seq), 2),
        "sequential_p90_latency_ms": q(seq, 0.9),
        "model": model_desc,
        "attribute": name,
        "photo": photo.name,
        "photo_size": [w._photo.width, w._photo.height],
        "faces": len(w._photo.faces),
        "device": w._model.device,
        "threads": inference_threads(),
        "platform": app.platformName(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "targets": {"median_latency_ms": 50, "longest_stall_ms": 100},
    }
    print(json.dumps(result), flush=True)
    return 0


def measure_sizes(args, app, w, model_path, model_desc, tmp: Path) -> int:
    from PySide6.QtCore import QPointF, Qt, QTimer

    from fader_desktop.workers import inference_threads
    wait_for = show_window(app, w, poll_ms=5)

    def pause(seconds: float) -> None:
        end = time.perf_counter() + seconds
        wait_for(lambda: time.perf_counter() > end, "a pause")

    w.load_model(model_path)
    wait_for(lambda: w._model is not None and not w._busy, "the model")
    paints = []   # (time, generation shown, photo serial shown)
    w.canvas.painted.connect(lambda: paints.append((time.perf_counter(), w._shown_gen, w._serial)))
    renders = []
    w.renderFinished.connect(lambda gen, ms: renders.append(ms))
    ticks = []
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.setInterval(TICK_MS)
    ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))

    def painted_after(t: float, gen: int):
        wait_for(lambda: any(pt >= t and pg >= gen for pt, pg, _s in paints), "a repaint")
        return next(pt for pt, pg, _s in paints if pt >= t and pg >= gen)

    def time_changes(slider, pans: bool = False) -> dict:
        """Held move, let go (and with pans, a pan after each): medians over args.changes."""
        from PySide6.QtCore import QPoint
        from PySide6.QtTest import QTest
        lo, hi = slider.minimum(), slider.maximum()
        # neither is a face's own value: every change renders; the first goes to the end the
        # slider is not at (an even --changes left it at lo for the next view's first move)
        ends = (hi, lo) if slider.value() == lo else (lo, hi)
        draft, release, draft_render, full_render, pan = [], [], [], [], []
        pause(0.5)
        ticks.clear()
        ticker.start()
        for k in range(args.changes + 1):   # the first change warms up
            slider.setSliderDown(True)
            renders.clear()
            t = time.perf_counter()
            slider.setValue(ends[k % 2])
            gen = w._gen
            if not w._draft_requested:
                raise SystemExit("gui_latency: error: the slider change requested no draft render")
            t_draft = painted_after(t, gen) - t
            wait_for(w.preview_current, "the draft render")
            r_draft = renders[-1]
            pause(0.4)
            renders.clear()
            t = time.perf_counter()
            slider.setSliderDown(False)
            gen = w._gen
            t_release = painted_after(t, gen) - t
            wait_for(w.preview_current, "the full render")
            r_full = renders[-1] if renders else None
            pause(0.4)
            if pans:   # drag the view sideways; time until what comes into view is rendered
                c = w.canvas.rect().center()
                d = 300 if k % 2 else -300
                QTest.mousePress(w.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
                for f in (0.25, 0.5, 0.75, 1.0):
                    QTest.mouseMove(w.canvas, QPoint(c.x() + round(d * f), c.y()))
                t = time.perf_counter()
                QTest.mouseRelease(w.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                                   QPoint(c.x() + d, c.y()))
                wait_for(w.preview_current, "the render after a pan")
                t_pan = painted_after(t, w._gen) - t
                pause(0.4)
                if k:
                    pan.append(t_pan * 1000.0)
            if k:
                draft.append(t_draft * 1000.0)
                release.append(t_release * 1000.0)
                draft_render.append(r_draft)
                if r_full is not None:
                    full_render.append(r_full)
        ticker.stop()
        gaps = [(b - a) * 1000.0 for a, b in zip(ticks, ticks[1:])]

        def med(xs):
            return round(statistics.median(xs), 1) if xs else None
        out = {
            "draft_ms": med(draft),
            "release_ms": med(release),
            "draft_render_ms": med(draft_render),
            "full_render_ms": med(full_render),
            "longest_stall_ms": round(max(gaps), 1) if gaps else None,
        }
        if pans:
            out["pan_ms"] = med(pan)
        return out

    def time_exports(slider, photo: Path) -> dict:
        """Each of --exports: the edited photo exported as the window does; export_s and the GUI
        thread's longest stall meanwhile (medians over a format listed more than once, with
        each export's stall in stalls_ms)."""
        if slider.value() == slider.minimum():
            slider.setValue(slider.maximum())
        else:
            slider.setValue(slider.minimum())
        wait_for(w.preview_current, "the render before export")
        done = []
        w.exportFinished.connect(done.append)
        runs: dict = {}
        for fmt in [x.strip().lower() for x in args.exports.split(",") if x.strip()]:
            target = tmp / f"{photo.stem}_export.{fmt}"
            pause(0.5)
            done.clear()
            ticks.clear()
            ticker.start()
            t = time.perf_counter()
            if not w.export_to(target):
                raise SystemExit(f"gui_latency: error: the export to {target} was not started")
            wait_for(lambda: done, f"the {fmt} export")
            export_s = time.perf_counter() - t
            ticker.stop()
            gaps = [(b - a) * 1000.0 for a, b in zip(ticks, ticks[1:])]
            runs.setdefault(fmt, []).append((export_s, max(gaps) if gaps else None))
            target.unlink()
        w.exportFinished.disconnect(done.append)
        out = {}
        for fmt, rs in runs.items():
            stalls = [s for _, s in rs if s is not None]
            out[fmt] = {"export_s": round(statistics.median(e for e, _ in rs), 2),
                        "longest_stall_ms": round(statistics.median(stalls), 1) if stalls else None}
            if len(rs) > 1:
                out[fmt]["stalls_ms"] = [round(s, 1) for s in stalls]
        return out

    sizes = {}
    for mp in [float(x) for x in args.sizes.split(",") if x.strip()]:
        photo = prepare_sized_photo(args, tmp, mp)
        serial = w._serial
        w.undo_stack.setClean()   # the last size's edit: no 'discard edits?' question
        paints.clear()
        t0 = time.perf_counter()
        w.open_photo(photo)
        wait_for(lambda: w._serial != serial and not w._busy and paints and paints[-1][2] == w._serial, "the photo")
        open_s = paints[-1][0] - t0
        if not w._photo.faces:
            raise SystemExit(f"gui_latency: error: {photo}: no face found")
        log(f"photo: {photo.name} {w._photo.width}x{w._photo.height}, {len(w._photo.faces)} face(s), "
            f"opened in {open_s:.2f} s")
        slider = w.panel.row(w.panel.attribute_names()[0]).slider
        zooms = [z.strip() for z in args.zooms.split(",") if z.strip()]
        entry = {
            "photo_size": [w._photo.width, w._photo.height],
            "edit_rect": list(w._photo.edit_rect) if w._photo.edit_rect else None,
            "open_s": round(open_s, 2),
        }
        if "fit" in zooms:
            entry.update(time_changes(slider))
        if "100" in zooms:
            w.act_zoom_face.trigger()
            w.act_actual.trigger()
            wait_for(w.preview_current, "the render at 100 %")
            pause(0.5)
            a, b = w.canvas.to_photo(QPointF(0, 0)), w.canvas.to_photo(QPointF(w.canvas.width(), w.canvas.height()))
            at = {"view": [round(a.x()), round(a.y()), round(b.x() - a.x()), round(b.y() - a.y())]}
            at.update(time_changes(slider, pans=True))
            entry["at_100"] = at
            w.act_fit.trigger()
            wait_for(w.preview_current, "the render fitted")
        if args.exports:
            entry["exports"] = time_exports(slider, photo)
        sizes[f"{mp:g}"] = entry
        log(f"  {sizes[f'{mp:g}']}")
    result = {
        "sizes": sizes,
        "changes": args.changes,
        "model": model_desc,
        "photo": Path(args.photo).name if args.photo else sorted(PHOTOS.glob("*.jpg"))[0].name,
        "window": [w.width(), w.height()],
        "canvas": [w.canvas.width(), w.canvas.height()],
        "device": w._model.device,
        "threads": inference_threads(),
        "platform": app.platformName(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
