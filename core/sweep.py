"""Interpolation figures (the paper's Fig. 4/5 layout) and animations. Qt-free.

- :func:`sweep_strip`: per image a row — aligned original, reconstruction, then one attribute at N
  values between LO and HI; several images stack as rows.
- :func:`sweep_grid`: per image a row — original, reconstruction, then each attribute flipped (or
  at both ends of its slider range): the "original and edited per attribute" figure.
- :func:`sweep_frames` + :func:`save_animation`: the same sweep as GIF/MP4 frames.

Cells are the model's aligned crops, not the full photos: the model works at 64–256 px, and at figure
size a face pasted back into a whole photo would be too small to see the change. Every cell is
`cell` px square; `margin` px of background lie between and around cells, so a figure of R rows and
C columns is ``C*cell + (C+1)*margin`` wide and ``R*cell + (R+1)*margin`` high (plus a label strip
of `label_height(cell)` px on top when labels are drawn).
"""
from __future__ import annotations

import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from .atomic_write import atomic_file, atomic_path
from .attributes import (Attribute, check_value, did_you_mean, quoted, split_setting, towards, unknown_attribute,
                         value_to_code)
from .edit_session import no_such_face
from .errors import FaderError, ImageError, os_reason

BACKGROUND = 255


@dataclass
class SweepFace:
    """One face to sweep: its aligned crop, latent and own (classifier) values."""

    name: str
    crop: np.ndarray            # uint8 (S, S, 3)
    latent: object              # core.engine.Latent of this face
    own: dict                   # the face's own attribute values
    reconstruction: np.ndarray  # float32 (S, S, 3), decoded at `own`

    @classmethod
    def of(cls, doc, face: int, name: str) -> "SweepFace":
        """Face `face` of an open PhotoEdit as opened (its own values, not as edited)."""
        f = doc.faces[face]
        return cls(name, f.aligned.crop, f.latent, dict(f.own), f.reconstruction)


def open_faces(images: Sequence, engine, aligned: bool = False, face: Optional[int] = None, detector=None,
               note: Optional[Callable[[str], None]] = None) -> list:
    """Open each image (path or RGB array) and take face `face` (0 = the first in reading order; None: each photo's
    main face, as the window selects it first) -> [SweepFace]. `note(text)` hears what the figure will not
    show without a word (`edit` says the same): which of several faces a photo gives, an --aligned image
    of another shape."""
    from .photo_edit import PhotoEdit, aligned_shape_note, main_face
    out = []
    for k, src in enumerate(images):
        name = str(src) if isinstance(src, (str, os.PathLike)) else f"image {k}"
        doc = PhotoEdit.open(src, engine, aligned=aligned, detector=detector)
        i = main_face(doc.faces) if face is None else face
        if not 0 <= i < len(doc.faces):
            raise FaderError(f"{name}: {no_such_face(i, len(doc.faces))}")
        if note is not None:
            if aligned and (said := aligned_shape_note(doc.image, engine.model.alignment())):
                note(f"{name}: {said}")
            if face is None and len(doc.faces) > 1:
                note(f"{name} has {len(doc.faces)} faces; the figure shows face {i} (its main face); "
                     f"--face N shows another")
        out.append(SweepFace.of(doc, i, name))
    return out


def find_attribute(engine, spec: str) -> tuple:
    """`NAME` or `NAME=TARGET` (case-insensitive) -> (Attribute, target index or None)."""
    by_name = {a.name.lower(): a for a in engine.attributes}
    if spec.strip().lower() in by_name:   # a name that holds "=" itself, without a target
        name, target = spec, None
    else:
        name, target = split_setting(spec, engine.attributes)
    a = by_name.get(name.strip().lower())
    if a is None:
        raise FaderError(unknown_attribute(name, engine.attributes))
    if not target:
        return a, None
    if a.is_binary:   # "=no" was ignored without a word: the sweep went the same way
        raise FaderError(f"{a.name!r} has two values: a sweep goes across its slider range, from --range LO to HI "
                         f"(0 = {a.values[0]}, 1 = {a.values[1]}); give --attr {a.name} without '={target.strip()}'")
    labels = [v.lower() for v in a.values]
    if target.strip().lower() not in labels:
        raise FaderError(f"{a.name!r} has no value {target.strip()!r}{did_you_mean(target, a.values)}; its values are "
                         f"{quoted(a.values)}")
    return a, labels.index(target.strip().lower())


def sweep_values(attr: Attribute, lo: float, hi: float, steps: int, own=None, target: Optional[int] = None) -> list:
    """The N slider values of a sweep from LO to HI.

    Binary attribute: alpha itself goes from LO to HI. Attribute with n > 2 values: the code moves
    from the face's own code (t = 0) towards the one-hot code of `target` (t = 1), t from LO to HI.
    """
    if steps < 2:
        raise FaderError(f"--steps must be at least 2, got {steps}")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise FaderError(f"--range must be finite numbers, got {lo} {hi}")
    # a multi-valued attribute's t too: within these limits its code's weights stay within theirs,
    # and beyond them the error must name --range, which the user typed, not a "weight"
    for v in (lo, hi):
        check_value(attr, v, "--range value")
    ts = np.linspace(float(lo), float(hi), int(steps))
    if attr.is_binary:
        return [float(t) for t in ts]
    if target is None:
        raise FaderError(f"{attr.name!r} has {attr.n} values; name the one to sweep towards, "
                         f"e.g. --attr {attr.name}={attr.values[-1]}")
    start = value_to_code(attr, own if own is not None else 0)
    return [towards(start, target, t) for t in ts]


def _value_labels(attr: Attribute, lo: float, hi: float, steps: int, target: Optional[int]) -> list:
    name = attr.name if attr.is_binary else f"{attr.name}={attr.values[target]}"
    return [f"{name} {t:.2f}" for t in np.linspace(float(lo), float(hi), int(steps))]


def _cell(img: np.ndarray, cell: int) -> np.ndarray:
    import cv2
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8) if img.dtype != np.uint8 else img
    if img.shape[0] == cell:
        return img
    interp = cv2.INTER_AREA if cell < img.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(img, (cell, cell), interpolation=interp)


def label_height(cell: int) -> int:
    return max(12, cell // 8)


#: The largest figure made (pixels): 100 MP, under what the app itself opens (core.image_io.DEFAULT_MAX_PIXELS);
#: an animation's frames may hold four times that together. Beyond, the figure is refused before
#: any work: it was built whole in memory and a big one took the machine down.
MAX_FIGURE_PIXELS = 100_000_000
MAX_ANIMATION_PIXELS = 4 * MAX_FIGURE_PIXELS
# The longest side each format's header can store (JPEG and GIF: 16 bits; WebP: 14).
_MAX_SIDE = {".jpg": 65535, ".jpeg": 65535, ".webp": 16383, ".gif": 65535}
#: GIF frame delays are whole hundredths of a second and viewers play one under 0.02 s at 0.1 s.
MAX_GIF_FPS = 50.0


def figure_size(rows: int, cols: int, cell: int, margin: int, labels: bool = False) -> tuple:
    """(width, height) of a figure of `rows` x `cols` cells, as :func:`compose` lays it out."""
    return (cols * cell + (cols + 1) * margin,
            (label_height(cell) if labels else 0) + rows * cell + (rows + 1) * margin)


def strip_columns(steps: int) -> int:
    """Cells in a row of :func:`sweep_strip`: original, reconstruction, one per value."""
    return 2 + int(steps)


def grid_columns(n_attrs: int, mode: str = "flip") -> int:
    """Cells in a row of :func:`sweep_grid`: original, reconstruction, one per attribute (two in "ends" mode)."""
    return 2 + n_attrs * (1 if mode == "flip" else 2)


def check_figure_size(path, rows: int, cols: int, cell: int, margin: int, labels: bool = False,
                      frames: int = 1) -> None:
    """FaderError (naming `path` where given) for a figure too big to make or for its format to store."""
    w, h = figure_size(rows, cols, cell, margin, labels)
    where = f"{path}: " if path is not None else ""
    advice = "use fewer photos, fewer --steps or a smaller --cell-size"
    side = _MAX_SIDE.get(Path(path).suffix.lower()) if path is not None else None
    if side is not None and max(w, h) > side:
        raise FaderError(f"{where}the figure would be {w:,} x {h:,} pixels; {Path(path).suffix.lower()} "
                         f"stores at most {side:,} on a side ({advice}, or write .png)")
    limit = MAX_FIGURE_PIXELS if frames <= 1 else MAX_ANIMATION_PIXELS
    if w * h * max(1, frames) > limit:
        what = f"{frames} frames of {w:,} x {h:,} pixels" if frames > 1 else f"{w:,} x {h:,} pixels"
        raise FaderError(f"{where}the {'animation' if frames > 1 else 'figure'} would be {what}, "
                         f"more than the {limit:,} pixels allowed ({advice})")


def check_fps(path, fps: float) -> None:
    """FaderError unless `fps` is a frame rate the animation format at `path` plays as asked."""
    if not 0.1 <= fps <= 60:
        raise FaderError(f"--fps must be between 0.1 and 60, got {fps:g}")
    if Path(path).suffix.lower() == ".gif" and fps > MAX_GIF_FPS:
        raise FaderError(f"{path}: a GIF cannot play {fps:g} frames per second (its frame delays are "
                         f"hundredths of a second and viewers slow shorter ones down to 0.1 s); "
                         f"use --fps {MAX_GIF_FPS:g} or less, or write .mp4")
    if Path(path).suffix.lower() == ".gif":
        played = 100.0 / gif_delay_cs(fps)
        if abs(played / fps - 1) > 0.05:
            lower, higher = 100.0 / (gif_delay_cs(fps) + 1), 100.0 / max(2, gif_delay_cs(fps) - 1)
            near = sorted({round(v, 2) for v in (lower, played, higher)})
            raise FaderError(f"{path}: a GIF's frame delays are whole hundredths of a second, so {fps:g} frames "
                             f"per second would play at {played:.3g}; use --fps " + " or ".join(f"{v:g}" for v in near)
                             + ", or write .mp4")


def gif_delay_cs(fps: float) -> int:
    """The frame delay a GIF stores for ``fps``, in hundredths of a second (at least 2, which
    viewers play as asked). Computed in milliseconds, Pillow cut the last digit off: 35 fps was
    stored as 2 cs and played at 50."""
    return max(2, int(round(100.0 / fps)))


def compose(rows: Sequence[Sequence[np.ndarray]], cell: int, margin: int,
            labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """Lay out rows of square cells on a white background (optional column labels on top)."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    check_figure_size(None, n_rows, n_cols, cell, margin, bool(labels))
    top = label_height(cell) if labels else 0
    w, h = figure_size(n_rows, n_cols, cell, margin, bool(labels))
    canvas = np.full((h, w, 3), BACKGROUND, np.uint8)
    for r, row in enumerate(rows):
        y = top + margin + r * (cell + margin)
        for c, img in enumerate(row):
            x = margin + c * (cell + margin)
            canvas[y:y + cell, x:x + cell] = _cell(img, cell)
    if labels:
        _draw_labels(canvas, labels, cell, margin, top)
    return canvas


def _draw_labels(canvas: np.ndarray, labels: Sequence[str], cell: int, margin: int, top: int) -> None:
    from PIL import Image, ImageDraw, ImageFont
    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    try:
        font = ImageFont.load_default(size=max(8, top - 4))
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        font = ImageFont.load_default()
    for c, text in enumerate(labels):
        x0 = margin + c * (cell + margin)
        # shorten until it fits the cell, marking the cut
        t = text
        while len(t) > 1 and draw.textlength(t, font=font) > cell:
            t = t.rstrip("…")[:-1] + "…"
        tw = draw.textlength(t, font=font)
        draw.text((x0 + (cell - tw) / 2, margin / 2 + 1), t, fill=(40, 40, 40), font=font)
    canvas[:] = np.asarray(im)


def cell_and_margin(engine, cell: Optional[int], margin: Optional[int]) -> tuple:
    """(cell, margin) in pixels: the given ones checked, or the defaults for `engine`."""
    cell = int(engine.image_size if cell is None else cell)   # 0 is refused, not the default
    if not 8 <= cell <= 1024:
        raise FaderError(f"--cell-size must be between 8 and 1024 pixels, got {cell}")
    margin = max(2, cell // 32) if margin is None else int(margin)
    if not 0 <= margin <= 256:
        raise FaderError(f"--margin must be between 0 and 256 pixels, got {margin}")
    return cell, margin


def _decode(engine, face: SweepFace, values: list) -> np.ndarray:
    from .engine import Latent
    lat = Latent.cat([face.latent] * len(values))
    return engine.decode_float(lat, [{**face.own, **v} for v in values])


def sweep_strip(faces: Sequence[SweepFace], engine, attr: str, lo: Optional[float] = None,
                hi: Optional[float] = None, steps: int = 8, cell: Optional[int] = None,
                margin: Optional[int] = None, labels: bool = False) -> np.ndarray:
    """Per face a row: original crop, reconstruction, then `attr` at `steps` values from lo to hi.

    `attr` is `NAME` or, for an attribute with more than two values, `NAME=TARGET`. The range
    defaults to the attribute's recommended slider range.
    """
    a, target = find_attribute(engine, attr)
    lo = a.range[0] if lo is None else lo
    hi = a.range[1] if hi is None else hi
    cell, margin = cell_and_margin(engine, cell, margin)
    check_figure_size(None, len(faces), strip_columns(steps), cell, margin, labels)
    rows, header = [], None
    for f in faces:
        vals = sweep_values(a, lo, hi, steps, f.own.get(a.name), target)
        out = _decode(engine, f, [{a.name: v} for v in vals])
        rows.append([f.crop, f.reconstruction, *out])
        if header is None:
            header = ["original", "reconstruction"] + _value_labels(a, lo, hi, steps, target)
    return compose(rows, cell, margin, header if labels else None)


def _flipped(a: Attribute, own) -> object:
    """The other value of a binary attribute; the next value (cyclically) of a multi-valued one."""
    code = value_to_code(a, own)
    k = (int(np.argmax(code)) + 1) % a.n
    if a.is_binary:
        return float(k)
    one = [0.0] * a.n
    one[k] = 1.0
    return one


def sweep_grid(images: Sequence, engine, attrs: Optional[Sequence[str]] = None, mode: str = "flip",
               aligned: bool = False, face: int = 0, cell: Optional[int] = None,
               margin: Optional[int] = None, labels: bool = False, detector=None) -> np.ndarray:
    """Per image a row: original crop, reconstruction, then each attribute edited.

    `images`: paths, RGB arrays or SweepFace objects. `mode="flip"`: one column per attribute with
    the attribute switched to its other value (the face's own value comes from the model's
    classifier); `mode="ends"`: two columns per attribute, at the low and high end of its slider
    range. Returns a uint8 RGB figure (see the module docstring for its size).
    """
    if mode not in ("flip", "ends"):
        raise FaderError(f"mode must be 'flip' or 'ends', got {mode!r}")
    chosen = [find_attribute(engine, s)[0] for s in attrs] if attrs else list(engine.attributes)
    faces = [x for x in images if isinstance(x, SweepFace)]
    if len(faces) != len(images):
        faces = open_faces(images, engine, aligned=aligned, face=face, detector=detector)
    cell, margin = cell_and_margin(engine, cell, margin)
    check_figure_size(None, len(faces), grid_columns(len(chosen), mode), cell, margin, labels)
    rows = []
    header = ["original", "reconstruction"]
    for a in chosen:
        if mode == "flip":
            header.append(f"{a.name} flipped")
        elif a.is_binary:
            header += [f"{a.name} {a.range[0]:g}", f"{a.name} {a.range[1]:g}"]
        else:
            header += [f"{a.name} {a.values[0]}", f"{a.name} {a.values[-1]}"]
    for f in faces:
        vals = []
        for a in chosen:
            if mode == "flip":
                vals.append({a.name: _flipped(a, f.own[a.name])})
            elif a.is_binary:
                vals += [{a.name: a.range[0]}, {a.name: a.range[1]}]
            else:
                vals += [{a.name: 0}, {a.name: a.n - 1}]
        rows.append([f.crop, f.reconstruction, *_decode(engine, f, vals)])
    return compose(rows, cell, margin, header if labels else None)


# --------------------------------------------------------------------------------------------
# animation
# --------------------------------------------------------------------------------------------

def sweep_frames(faces: Sequence[SweepFace], engine, attr: str, lo: Optional[float] = None,
                 hi: Optional[float] = None, steps: int = 8, cell: Optional[int] = None,
                 margin: Optional[int] = None, labels: bool = False) -> list:
    """Animation frames: per face a row [original crop, crop edited at the frame's value].

    The values run LO -> HI -> LO (ping-pong, ends once) so the loop has no jump: 2*steps - 2
    frames. Each frame has the same size.
    """
    a, target = find_attribute(engine, attr)
    lo = a.range[0] if lo is None else lo
    hi = a.range[1] if hi is None else hi
    cell, margin = cell_and_margin(engine, cell, margin)
    check_figure_size(None, len(faces), 2, cell, margin, labels, frames=animation_frames(steps))
    per_face = []
    for f in faces:
        vals = sweep_values(a, lo, hi, steps, f.own.get(a.name), target)
        per_face.append((f, vals, _decode(engine, f, [{a.name: v} for v in vals])))
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    names = _value_labels(a, lo, hi, steps, target)
    frames = []
    for k in order:
        rows = [[f.crop, out[k]] for f, vals, out in per_face]
        head = ["original", names[k]] if labels else None
        frames.append(compose(rows, cell, margin, head))
    return frames


def animation_frames(steps: int) -> int:
    """How many frames :func:`sweep_frames` makes of `steps` values (LO -> HI -> LO, ends once)."""
    return max(2 * int(steps) - 2, 1)


def save_animation(path, frames: Sequence[np.ndarray], fps: float = 8.0, replace: bool = True,
                   check: Callable[[], None] = lambda: None) -> None:
    """Write frames as a looping GIF (Pillow) or an MP4 (H.264 via imageio-ffmpeg), atomically
    (``replace=False``: never over a file that appeared at ``path`` meanwhile).

    ``check()`` is called before each frame is encoded and once more before the file is published
    (the window's JobRunner.check_cancelled: it raises to stop there); whatever it raises comes
    out as it is, and neither the file nor a temporary one is left."""
    p = Path(path)
    suffix = p.suffix.lower()
    if not frames:
        raise FaderError(f"{p}: no frames to write")
    check_fps(p, fps)
    from .image_io import check_output_folder
    check_output_folder(p, "cannot save")
    if suffix not in (".gif", ".mp4"):
        raise FaderError(f"{p}: an animation must be .gif or .mp4")
    try:
        if suffix == ".gif":
            from PIL import Image
            check()
            first = Image.fromarray(frames[0])
            with atomic_file(p, replace) as f:  # checked writes: a full disk is an error, not a short GIF
                # Pillow takes the appended frames from the iterator one at a time and quantizes
                # each as it comes (nearly all of the encoding's time): a cancel stops between two
                first.save(f, format="GIF", save_all=True, append_images=_checked_frames(frames, check),
                           duration=10 * gif_delay_cs(fps), loop=0, optimize=False, disposal=1)
                check()
        else:
            # the temp name keeps the suffix: ffmpeg chooses the container from it
            with atomic_path(p, keep_suffix=True, replace=replace) as tmp:
                _write_mp4(p, tmp, frames, fps, check)
                check()
    except OSError as e:
        raise ImageError(f"{p}: cannot save animation: {os_reason(e)}") from None


def _checked_frames(frames: Sequence[np.ndarray], check: Callable[[], None]) -> Iterator:
    """The frames after the first as PIL images, made one at a time, ``check()`` before each."""
    from PIL import Image
    for frame in itertools.islice(frames, 1, None):
        check()
        yield Image.fromarray(frame)


def require_mp4(path) -> None:
    """Raise a clear FaderError when MP4 cannot be written (checked before any work is done)."""
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        how = ("this packaged build leaves it out" if getattr(sys, "frozen", False)
               else "pip install 'fader-desktop[video]'")
        raise FaderError(f"{path}: writing MP4 needs the optional package imageio-ffmpeg ({how}); "
                         "or write a .gif") from None


def _write_mp4(final: Path, path: Path, frames: Sequence[np.ndarray], fps: float,
               check: Callable[[], None] = lambda: None) -> None:
    """Encode with imageio-ffmpeg's ffmpeg, run here so that its exit status is checked (a full
    disk makes it fail at the end, and an unchecked run published an unplayable file) and its
    messages, which name the temporary file, stay out of the terminal and the error. ``check()``
    runs before each frame and while ffmpeg finishes; when it raises, ffmpeg is killed."""
    require_mp4(final)
    import errno
    import subprocess
    import tempfile
    from fractions import Fraction

    import imageio_ffmpeg
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        raise ImageError(f"{final}: cannot write MP4: imageio-ffmpeg found no ffmpeg program") from None
    h, w = frames[0].shape[:2]
    # H.264 in yuv420p needs even sides: pad with background instead of letting ffmpeg rescale
    H, W = h + h % 2, w + w % 2
    cmd = [exe, "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
           "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an",
           "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", "10", str(path)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            try:
                for f in frames:
                    check()
                    if (H, W) != (h, w):
                        g = np.full((H, W, 3), BACKGROUND, np.uint8)
                        g[:h, :w] = f
                        f = g
                    proc.stdin.write(np.ascontiguousarray(f, np.uint8).tobytes())
                proc.stdin.close()
            except BrokenPipeError:
                pass   # ffmpeg stopped early; its exit status and log say why
            while True:   # ffmpeg still encodes the frames it holds (x264's lookahead)
                try:
                    code = proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    check()
        except BaseException:
            proc.kill()
            try:
                proc.stdin.close()
            except OSError:   # the pipe of a killed ffmpeg
                pass
            proc.wait()
            raise
        if code != 0:
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
            # the OS reason when ffmpeg names one, never its lines (they name the temporary file)
            reason = next((os.strerror(e)[0].lower() + os.strerror(e)[1:]
                           for e in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EIO)
                           if os.strerror(e) in text), None)
            if code < 0:   # killed by a signal: it wrote no message, the signal says what happened
                reason = _signal_reason(-code)
            raise ImageError(f"{final}: cannot write MP4: "
                             f"{reason or f'the video encoder failed (ffmpeg exit status {code})'}")


def _signal_reason(signum: int) -> str:
    """Why ffmpeg stopped, in words, when signal ``signum`` killed it. SIGXFSZ is the process's
    file-size limit (``ulimit -f``; ffmpeg inherits it), worded as the other writers word EFBIG."""
    import signal
    if signum == getattr(signal, "SIGXFSZ", None):
        limit = None
        try:
            import resource
            soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            limit = None if soft == resource.RLIM_INFINITY else soft
        except (ImportError, OSError, ValueError):
            pass
        over = f"the file-size limit of {limit:,} bytes" if limit is not None else "the file-size limit"
        return f"file too large (over {over} set for this process, ulimit -f)"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return f"the video encoder (ffmpeg) was stopped by signal {signum}"
    what = {"SIGKILL": " (killed, e.g. by the system when memory ran out)",
            "SIGSEGV": " (it crashed)", "SIGBUS": " (it crashed)", "SIGABRT": " (it aborted)",
            "SIGILL": " (it crashed)", "SIGFPE": " (it crashed)",
            "SIGTERM": " (terminated)", "SIGINT": " (interrupted)", "SIGHUP": " (its terminal closed)",
            "SIGPIPE": " (its output closed)", "SIGXCPU": " (over the CPU-time limit set for this process, ulimit -t)"}
    return f"the video encoder (ffmpeg) was stopped by signal {name}{what.get(name, '')}"
