"""The inference worker: owns the Engine and the PhotoEdit on its own QThread.

The GUI thread never runs the model. It posts jobs (load a model, open a photo, render, export)
through thread-safe methods; the worker runs them in order on its thread and answers with signals
(delivered to the GUI thread as queued calls). Render requests are coalesced: while a render is
queued and not yet started, a newer request replaces it, so dragging a slider never builds a backlog
(latest wins). Every photo the worker opens gets a serial number; requests and results carry it, so a
stale render for a photo that has since been replaced is dropped on both sides.
"""
from __future__ import annotations

import copy
import logging
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot
from PySide6.QtGui import QImage

log = logging.getLogger("fader_desktop.worker")

# An image whose aspect ratio is within this of the model's alignment frame (CelebA: 178x218) and
# in which no face is detected is treated as an already-aligned crop: detectors often miss faces
# that fill the whole frame, and such crops are exactly what the models were trained on.
ALIGNED_ASPECT_TOLERANCE = 0.03


def inference_threads() -> int:
    """Intra-op threads for the engine: all cores but one.

    The GUI thread needs a core to repaint while the model runs; with every core given to torch,
    its OpenMP workers stall each other whenever the GUI (or anything else) takes one, which on
    a 2-core machine turned 2 ms decodes into 100+ ms ones.
    """
    from core.engine import default_threads
    return default_threads()


def numpy_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3) RGB -> a QImage (Format_RGB32) that owns its pixels.

    RGB32 because that is what the raster paint engine blits and scales fastest (RGB888 goes
    through a conversion on every paint). The pixels are written straight into the QImage's own
    buffer, so the numpy array can be freed or reused while the GUI still paints the image.
    """
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image, got {arr.dtype} {arr.shape}")
    h, w = arr.shape[:2]
    img = QImage(w, h, QImage.Format.Format_RGB32)
    if h and w:
        # RGB32 is 0xffRRGGBB per pixel, i.e. bytes B, G, R, 255 on little-endian machines
        buf = np.frombuffer(img.bits(), dtype=np.uint8, count=h * img.bytesPerLine()).reshape(h, img.bytesPerLine())
        px = buf[:, : 4 * w].reshape(h, w, 4)
        if sys.byteorder == "little":
            px[..., 0], px[..., 1], px[..., 2] = arr[..., 2], arr[..., 1], arr[..., 0]
            px[..., 3] = 255
        else:
            px[..., 0] = 255
            px[..., 1:] = arr
    return img


def qimage_to_numpy(img: QImage) -> np.ndarray:
    """QImage -> uint8 (H, W, 3) RGB copy (used by tests and the benchmark)."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


@dataclass(frozen=True)
class FaceInfo:
    """What the GUI needs to know about one editable face."""

    index: int
    box: Optional[tuple]  # (x0, y0, x1, y1) in photo pixels; None for an aligned crop
    own_values: dict


@dataclass
class PhotoInfo:
    """A photo the worker has opened (with or without a model)."""

    serial: int
    path: Path
    width: int
    height: int
    original: QImage
    faces: list = field(default_factory=list)      # FaceInfo
    skipped: list = field(default_factory=list)    # (box, reason)
    aligned: bool = False
    has_model: bool = True
    reencoded: bool = False  # same photo opened again (model or device changed)
    edit_rect: Optional[tuple] = None  # (x, y, w, h): the only pixels an edit can change
    seconds: float = 0.0


@dataclass
class ModelInfo:
    """A model the worker has loaded."""

    path: Path
    name: str
    attributes: list
    summary: dict
    device: str


def edit_region(doc, size: int) -> tuple:
    """(x, y, w, h) bounding every pixel an edit of any face of `doc` can change.

    Paste-back only writes inside the photo footprint of each face's aligned crop square, so the
    union of those footprints (plus a pixel of interpolation margin) bounds the edit.
    """
    h, w = doc.image.shape[:2]
    if not doc.faces:
        return (0, 0, 0, 0)
    corners = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [-0.5, size - 0.5], [size - 0.5, size - 0.5]])
    pts = []
    for f in doc.faces:
        m = np.asarray(f.aligned.matrix, np.float64).reshape(2, 3)
        a, t = m[:, :2], m[:, 2]
        inv = np.linalg.inv(a)
        pts.append((corners - t) @ inv.T)
    pts = np.concatenate(pts)
    x0 = max(0, int(np.floor(pts[:, 0].min())) - 2)
    y0 = max(0, int(np.floor(pts[:, 1].min())) - 2)
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + 3)
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + 3)
    return (x0, y0, max(0, x1 - x0), max(0, y1 - y0))


class _RememberingDetector:
    """Detects faces once per photo: a model or device switch re-aligns and re-encodes the same
    photo, and the faces in it have not moved (detection costs more than encoding on CPU)."""

    def __init__(self):
        self._image = None
        self._faces = None

    def detect(self, rgb: np.ndarray):
        if self._image is not rgb:
            from core.faces import detect_faces
            self._faces = detect_faces(rgb)
            self._image = rgb
        return list(self._faces)


class InferenceWorker(QObject):
    """Runs every model call. Create it, then `start()`; call `shutdown()` before exit."""

    modelLoaded = Signal(object)       # ModelInfo
    photoLoaded = Signal(object)       # PhotoInfo
    # photo serial, generation, the edit region's new pixels and where they go (x, y), milliseconds
    rendered = Signal(int, int, QImage, int, int, float)
    failed = Signal(str, str)          # what failed ("photo", "model", "export", …), one-line message
    busyChanged = Signal(bool, str)    # busy?, what it is doing
    exported = Signal(str)             # written path
    recipeSaved = Signal(str)          # written path
    sweepExported = Signal(str)        # written path
    modelImported = Signal(str)        # written .fader path
    notice = Signal(str)               # something the user should know, for the status bar
    _wake = Signal()

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._jobs: deque = deque()
        self._engine = None
        self._model_path: Optional[Path] = None
        self._device = "auto"
        self._doc = None
        self._image: Optional[np.ndarray] = None
        self._path: Optional[Path] = None
        self._aligned = False
        self._serial = 0
        self._running = False
        self._detector = _RememberingDetector()
        self._thread = QThread()
        self._thread.setObjectName("fader-inference")
        self.moveToThread(self._thread)
        self._wake.connect(self._process)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def shutdown(self, timeout_ms: int = 15000) -> None:
        """Drop queued work and stop the thread (waits for a running job to finish)."""
        with self._lock:
            self._jobs.clear()
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            log.warning("inference thread did not stop within %d ms", timeout_ms)

    def is_idle(self) -> bool:
        with self._lock:
            return not self._jobs and not self._running

    # -- posting jobs (any thread) -------------------------------------------------------------
    def _post(self, kind: str, fn: Callable, *args) -> None:
        with self._lock:
            if kind == "render":
                # latest wins: replace a queued, not yet started render in place
                for i, (k, _fn, _args) in enumerate(self._jobs):
                    if k == "render":
                        self._jobs[i] = (kind, fn, args)
                        return
            self._jobs.append((kind, fn, args))
        self._wake.emit()

    def load_model(self, path, device: str = "auto") -> None:
        self._post("model", self._do_load_model, Path(path), device)

    def set_device(self, device: str) -> None:
        self._post("model", self._do_set_device, device)

    def open_photo(self, path) -> None:
        self._post("photo", self._do_open_photo, Path(path))

    def render(self, serial: int, generation: int, values: list) -> None:
        """Render the photo with per-face core values (list of dicts, one per face)."""
        self._post("render", self._do_render, serial, generation, copy.deepcopy(values))

    def export(self, path, values: list, quality: int = 95, keep_exif: bool = True) -> None:
        self._post("export", self._do_export, Path(path), copy.deepcopy(values), int(quality), bool(keep_exif))

    def export_sweep(self, face: int, spec: dict) -> None:
        """spec: path, attr (NAME or NAME=TARGET), lo, hi, steps, labels (see core.sweep)."""
        self._post("sweep", self._do_export_sweep, int(face), dict(spec))

    def save_recipe(self, path, values: list, face: int = 0) -> None:
        self._post("recipe", self._do_save_recipe, Path(path), copy.deepcopy(values), int(face))

    def import_reference(self, checkpoint, output, attributes=None) -> None:
        self._post("import", self._do_import, Path(checkpoint), Path(output), attributes)

    # -- running jobs (worker thread) ----------------------------------------------------------
    @Slot()
    def _process(self) -> None:
        # One job per wake-up; every post emits one wake, so no job is ever left behind, and
        # surplus wake-ups (after coalescing) find the queue empty.
        if threading.current_thread().name.startswith("Dummy"):
            threading.current_thread().name = "inference"   # readable thread name in the log file
        with self._lock:
            if not self._jobs:
                return
            kind, fn, args = self._jobs.popleft()
            self._running = True
        try:
            fn(*args)
        except Exception as e:  # a job must never kill the thread
            from core.errors import FaderError
            if isinstance(e, FaderError):
                log.warning("%s failed: %s", kind, e)
                self.failed.emit(kind, str(e))
            else:
                log.error("%s failed unexpectedly:\n%s", kind, traceback.format_exc())
                self.failed.emit(kind, f"unexpected error while running {kind}: {type(e).__name__}: {e}")
            if kind in ("model", "photo", "import"):
                self.busyChanged.emit(False, "")
        finally:
            with self._lock:
                self._running = False

    def _do_load_model(self, path: Path, device: str) -> None:
        from core.engine import Engine
        from core.model_file import load_model, model_summary
        self.busyChanged.emit(True, f"Loading model {path.name}…")
        model = load_model(path)
        if device.startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                # a saved choice from another machine must not leave the editor without a model
                self.notice.emit("No CUDA device here: running the model on the CPU")
                device = "auto"
        engine = Engine(model, device=device, threads=inference_threads())
        # only replace the running engine once the new one works
        self._engine, self._model_path, self._device = engine, path, device
        self.modelLoaded.emit(ModelInfo(path, model.name, list(model.attributes), model_summary(model),
                                        str(engine.device)))
        if self._image is not None:
            try:
                self._reopen()
            except Exception:
                # the old document belongs to the old model: never keep rendering it
                self._doc = None
                self._serial += 1
                raise
        self.busyChanged.emit(False, "")

    def _do_set_device(self, device: str) -> None:
        if self._model_path is None:
            self._device = device
            return
        self._do_load_model(self._model_path, device)

    def _reopen(self) -> None:
        """Detect and encode the current photo again (the model or device changed)."""
        self._open_array(self._image, self._path, reencoded=True)

    def _do_open_photo(self, path: Path) -> None:
        from core.image_io import load_image
        self.busyChanged.emit(True, f"Opening {path.name}…")
        image = load_image(path)
        self._open_array(image, path, reencoded=False)
        self.busyChanged.emit(False, "")

    def _open_array(self, image: np.ndarray, path: Path, reencoded: bool) -> None:
        from core.photo_edit import PhotoEdit
        t0 = time.perf_counter()
        doc, aligned = None, False
        if self._engine is not None:
            self.busyChanged.emit(True, f"Finding faces in {path.name}…")
            doc = PhotoEdit.open(image, self._engine, require_face=False, detector=self._detector)
            if not doc.faces and self._looks_aligned(image):
                doc = PhotoEdit.open(image, self._engine, aligned=True)
                aligned = True
            doc.path = path
        # replace the current photo only once the new one opened
        self._serial += 1
        self._doc, self._image, self._path, self._aligned = doc, image, path, aligned
        self._edit_rect = (0, 0, 0, 0)
        h, w = image.shape[:2]
        info = PhotoInfo(self._serial, path, w, h, numpy_to_qimage(image), has_model=doc is not None,
                         reencoded=reencoded, aligned=aligned)
        if doc is not None:
            info.faces = [FaceInfo(f.index, f.box, dict(f.own_values)) for f in doc.faces]
            info.skipped = [(s.box, s.reason) for s in doc.skipped]
            info.edit_rect = self._edit_rect = edit_region(doc, self._engine.image_size)
        info.seconds = time.perf_counter() - t0
        self.photoLoaded.emit(info)

    def _looks_aligned(self, image: np.ndarray) -> bool:
        try:
            fw, fh = self._engine.model.alignment().frame
        except Exception:
            return False
        h, w = image.shape[:2]
        return abs((w / h) / (fw / fh) - 1.0) <= ALIGNED_ASPECT_TOLERANCE

    def _apply_values(self, values: list) -> None:
        doc = self._doc
        for i, face_values in enumerate(values[: len(doc.faces)]):
            doc.faces[i].values = dict(face_values)

    def _do_render(self, serial: int, generation: int, values: list) -> None:
        if self._doc is None or serial != self._serial:
            return  # a request for a photo that has been replaced
        t0 = time.perf_counter()
        self._apply_values(values)
        x, y, w, h = self._edit_rect
        # only the faces' region can differ from the original: ship that, not the whole photo
        patch = numpy_to_qimage(self._doc.render()[y:y + h, x:x + w])
        ms = (time.perf_counter() - t0) * 1000.0
        self.rendered.emit(serial, generation, patch, x, y, ms)

    def _do_export(self, path: Path, values: list, quality: int, keep_exif: bool) -> None:
        from core.errors import FaderError
        from core.image_io import read_exif, save_image, save_unchanged
        if self._image is None:
            raise FaderError(f"{path}: nothing to export; open a photo first")
        unchanged = True
        if self._doc is not None:
            self._apply_values(values)
            unchanged = not any(f.is_modified for f in self._doc.faces)
            rgb = self._doc.image if unchanged else self._doc.render()
        else:
            rgb = self._image
        exif = None
        if keep_exif and self._path is not None:
            try:
                exif = read_exif(self._path)
            except FaderError:
                exif = None  # the original may have been moved since; the pixels still export
        if unchanged and keep_exif and self._path is not None and Path(self._path).is_file():
            # nothing edited: the original file itself where the format allows (no recompression)
            save_unchanged(self._path, path, rgb, quality=quality, exif=exif)
        else:
            save_image(path, rgb, quality=quality, exif=exif)
        log.info("exported %s", path)
        self.exported.emit(str(path))

    def _do_export_sweep(self, face: int, spec: dict) -> None:
        from core.errors import FaderError
        from core.image_io import save_image
        from core.sweep import SweepFace, save_animation, sweep_frames, sweep_strip
        path = Path(spec["path"])
        if self._doc is None or not 0 <= face < len(self._doc.faces):
            raise FaderError(f"{path}: no face to sweep")
        f = self._doc.faces[face]
        name = self._path.name if self._path else "photo"
        # the face as opened (own values), not as edited: a sweep shows the attribute on its own
        sf = SweepFace(name, f.aligned.crop, f.latent, dict(f.own_values), f.reconstruction)
        args = dict(lo=spec["lo"], hi=spec["hi"], steps=spec["steps"], labels=spec["labels"])
        if path.suffix.lower() in (".gif", ".mp4"):
            save_animation(path, sweep_frames([sf], self._engine, spec["attr"], **args))
        else:
            save_image(path, sweep_strip([sf], self._engine, spec["attr"], **args))
        self.sweepExported.emit(str(path))

    def _do_save_recipe(self, path: Path, values: list, face: int) -> None:
        import json
        from core.atomic_write import write_bytes_atomic
        from core.errors import FaderError
        if self._doc is None or not self._doc.faces:
            raise FaderError(f"{path}: no face to save a recipe for")
        self._apply_values(values)
        recipe = self._doc.recipe(face)
        try:
            write_bytes_atomic(path, (json.dumps(recipe, indent=2) + "\n").encode("utf-8"))
        except OSError as e:
            raise FaderError(f"{path}: cannot write recipe: {e.strerror or e}") from None
        self.recipeSaved.emit(str(path))

    def _do_import(self, checkpoint: Path, output: Path, attributes) -> None:
        import importlib
        from core.errors import FaderError
        from core.model_file import save_model
        try:
            legacy = importlib.import_module("core.legacy_import")
        except ImportError:
            raise FaderError(f"{checkpoint}: importing reference checkpoints is not available in this build") from None
        self.busyChanged.emit(True, f"Importing {checkpoint.name}…")
        model = legacy.import_reference_checkpoint(str(checkpoint), attributes=attributes)
        save_model(model, output)
        self.modelImported.emit(str(output))
        self._do_load_model(output, self._device)
