"""Background work for the window: one job API, and the editor's model-side state.

`JobRunner.submit(fn, on_done=…, on_error=…, busy_text=…, coalesce=…)` runs a Qt-free call on
one serial worker thread and delivers its result or its error to the GUI thread (Anki's QueryOp
and TaskManager are the model: each GUI operation is a few lines around a core call, with one
default error handler). Jobs run in the order they were submitted; a coalescing job takes the
place of a queued, not yet started job of the same key (dragging a slider never builds a backlog: latest
wins, as napari's slicer cancels a pending slice on a new submit). The window's renders, model
and photo loading and exports, the batch export and the training dialog's progress all run
through it. `cancel()` stops what is queued and running, but for jobs submitted with
`cancellable=False` (the window's exports): queued jobs are dropped, the running one stops at its
next `check_cancelled()` (a model load and a sweep check between their steps), and none of them
calls back; closing the window cancels and returns at once, and the process waits for the worker
thread (`join`) before it ends.

`EditorBackend` holds what only the worker thread touches: the Engine, the open PhotoEdit and
the serial number of the photo. The GUI thread never runs the model: it builds an immutable
request (the session's Snapshot plus the photo's serial and a generation number) and the job
renders it; a request for a photo that has since been replaced is dropped on the worker, and a
result older than the one shown is dropped on the GUI thread.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Signal
from PySide6.QtGui import QColorSpace, QImage

log = logging.getLogger("fader_desktop.worker")

# how EditorBackend.mark_face's refusal of a box with no face in it begins: the window leaves
# marking on after it (MainWindow._on_face_marked), and only after it
MARK_NO_FACE = "No face was found in the marked area"


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


def display_colour_space(path: Optional[Path]) -> Optional[QColorSpace]:
    """The colour space of the photo's own profile when it is not sRGB (a phone's Display P3),
    for the window to show its colours as other viewers do; None to show the numbers as they are."""
    if path is None:
        return None
    from core.errors import FaderError
    from core.image_io import read_icc_profile
    try:
        icc = read_icc_profile(path)
    except FaderError:
        return None
    if not icc:
        return None
    cs = QColorSpace.fromIccProfile(icc)
    srgb = QColorSpace(QColorSpace.NamedColorSpace.SRgb)
    if not cs.isValid() or cs == srgb:
        return None
    return cs


def to_display(rgb: np.ndarray, colour_space: Optional[QColorSpace]) -> QImage:
    """numpy_to_qimage, converted from the photo's colour space to sRGB (the screen's) where it
    has one; the photo's numbers themselves, which exports write with their profile, stay."""
    img = numpy_to_qimage(rgb)
    if colour_space is not None and not img.isNull():
        img.setColorSpace(colour_space)
        img.convertToColorSpace(QColorSpace(QColorSpace.NamedColorSpace.SRgb))
    return img


def qimage_to_numpy(img: QImage) -> np.ndarray:
    """QImage -> uint8 (H, W, 3) RGB copy (used by tests and the benchmark)."""
    img = img.convertToFormat(QImage.Format.Format_RGB888)
    h, w, bpl = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=h * bpl).reshape(h, bpl)
    return buf[:, : 3 * w].reshape(h, w, 3).copy()


def file_stamp(path) -> Optional[tuple]:
    """(device, inode, size, mtime) of a file, None when it cannot be read: whether the file on
    disk is still the one that was opened."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def error_message(e: BaseException) -> str:
    """The one-line message a failed job shows: a FaderError's own, else its type and text."""
    from core.errors import FaderError
    if isinstance(e, FaderError):
        return str(e)
    return f"unexpected error: {type(e).__name__}: {e}"


# ------------------------------------------------------------------------------------------------
# the job API
# ------------------------------------------------------------------------------------------------

def _job_name(job) -> str:
    return job.busy_text or getattr(job.fn, "__name__", "job")


@dataclass(eq=False)
class _Told:
    """A failed job's message being handed to its on_error (GUI thread)."""

    where: str             # "fader-inference: Opening notes.jpg…": the worker thread and the job
    logged: bool = False   # log_told wrote its line


# the failures being told now, innermost last (a message box's event loop can deliver another)
_telling: list = []


def _log_as(failure: "_Told", logger: logging.Logger, level: int, msg: str, *args) -> None:
    if not logger.isEnabledFor(level):
        return
    record = logger.makeRecord(logger.name, level, "(told)", 0, msg, args, None)
    # the log file's line names the thread the job failed on and the job, in its [thread] field;
    # stderr's line (message only) stays as it was
    record.threadName = failure.where
    logger.handle(record)
    failure.logged = True


def log_told(logger: logging.Logger, level: int, msg: str, *args) -> None:
    """Log what the user is told of a failure (the window's show_error): inside a failed job's
    on_error this is that failure's one line, which names the job in the log file (the worker
    wrote "X failed: …" besides, two lines for one failure); elsewhere a plain log call."""
    if _telling and not _telling[-1].logged:
        _log_as(_telling[-1], logger, level, msg, *args)
    else:
        logger.log(level, msg, *args)


class JobCancelled(Exception):
    """Raised inside a job by JobRunner.check_cancelled() once the job has been cancelled (the window
    closed): the job stops there, and nothing of it is reported."""


@dataclass(eq=False)
class Job:
    """One submitted call and what happens with its result on the GUI thread."""

    fn: Callable
    on_done: Optional[Callable] = None
    on_error: Optional[Callable] = None
    busy_text: str = ""
    coalesce: object = None
    cancellable: bool = True   # False: cancel() leaves it to run and call back (an export being written)
    cancelled: bool = False    # set by cancel() under the runner's lock; its callbacks never run


class _Relay(QObject):
    """Carries a worker thread's news to the GUI thread (queued signal delivery)."""

    def __init__(self, parent: QObject):
        super().__init__(parent)

    def send(self, signal: str, *args) -> None:
        """Emit from the worker thread; the window may be gone already (then nothing is told)."""
        try:
            getattr(self, signal).emit(*args)
        except RuntimeError:   # the C++ object was deleted with its window
            pass

    started = Signal(object)                    # Job
    finished = Signal(object, object, object)   # Job, result, error (BaseException or None)
    busyText = Signal(str)
    call = Signal(object)                       # a function to call on the GUI thread


class JobRunner(QObject):
    """Runs Qt-free jobs one after another on one worker thread; callbacks run on the GUI thread.

    Create it on the GUI thread. The thread starts with the first job and stops on shutdown()
    (a later submit starts it again).
    """

    # a job with a busy text was submitted or started (True; its text), or the last such ended
    # (False): busy from submission, so that what the job replaces (the photo, the model) is not
    # exported or edited while it waits behind a render
    busyChanged = Signal(bool, str)
    jobFailed = Signal(str)           # one-line message of a failed job without its own on_error

    def __init__(self, name: str = "fader-jobs", parent: Optional[QObject] = None):
        super().__init__(parent)
        self.name = name
        self._cond = threading.Condition()
        self._queue: deque = deque()
        self._running: Optional[Job] = None
        self._undelivered = 0      # jobs submitted whose callbacks have not run yet
        self._pending: list = []   # those jobs (GUI thread): queued, running, or their callback to come
        self._thread: Optional[threading.Thread] = None
        self._last_thread: Optional[threading.Thread] = None   # the latest worker thread (join)
        self._stop = False
        self._busy_job: Optional[Job] = None
        self._busy_pending: list = []   # jobs with a busy text submitted (GUI thread) and not yet delivered
        self._busy_said: tuple = (False, "")   # the last busyChanged: the same is not said twice
        self.default_error: Optional[Callable[[str], None]] = None
        self._relay = _Relay(self)
        self._relay.started.connect(self._on_started)
        self._relay.finished.connect(self._on_finished)
        self._relay.busyText.connect(self._on_busy_text)
        self._relay.call.connect(lambda fn: fn())

    # -- submitting (GUI thread) ---------------------------------------------------------------
    def submit(self, fn: Callable, *, on_done: Optional[Callable] = None, on_error: Optional[Callable] = None,
               busy_text: str = "", coalesce=False, cancellable: bool = True) -> Job:
        """Run `fn()` on the worker thread, then `on_done(result)` or `on_error(message)` here.

        `busy_text`: the job counts as busy from now until its on_done has run, or until its
        on_error is called (busyChanged). `coalesce`: True or a key;
        this job takes the place of a queued, not yet started job submitted with the same key
        (which then never runs). `cancellable=False`: cancel() leaves the job to run and call back.
        Without `on_error` a failure goes to `default_error` (and jobFailed).
        """
        key = ("coalesce",) if coalesce is True else (coalesce if coalesce not in (False, None) else None)
        job = Job(fn, on_done, on_error, busy_text, key, cancellable)
        replaced = None
        with self._cond:
            for i, queued in enumerate(self._queue if key is not None else ()):
                if queued.coalesce == key:
                    self._queue[i] = job   # in its place: latest wins, the order of kinds is kept
                    replaced = queued
                    break
            else:
                self._queue.append(job)
                self._undelivered += 1
            self._stop = False
            if self._thread is None:   # none yet, or the last one stopped (it clears this itself)
                self._thread = self._last_thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify()
        self._pending.append(job)
        if replaced is not None:
            self._pending.remove(replaced)
        if replaced in self._busy_pending:   # it never runs
            self._busy_pending.remove(replaced)
        if busy_text:
            self._busy_pending.append(job)
            if self._busy_job is None:
                self._say_busy(True, busy_text)
        elif replaced is not None and replaced.busy_text and not self._busy_pending:
            self._say_busy(False, "")
        return job

    def is_busy(self) -> bool:
        """Whether a job with a busy text is queued, running, or has its callback to run."""
        return bool(self._busy_pending)

    def set_busy_text(self, text: str) -> None:
        """From inside a running job: say what it is doing now (any thread)."""
        self._send_unless_cancelled("busyText", text)

    def run_on_gui(self, fn: Callable[[], None]) -> None:
        """From inside a running job: call `fn()` on the GUI thread soon (progress reports)."""
        self._send_unless_cancelled("call", fn)

    def _send_unless_cancelled(self, signal: str, *args) -> None:
        # under the lock: once cancel() has returned, a cancelled job sends nothing more (the window
        # it would go to may be deleted right after closing)
        with self._cond:
            if self._running is not None and self._running.cancelled:
                return
            self._relay.send(signal, *args)

    # -- cancelling ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop every job but those submitted with cancellable=False (GUI thread): queued ones are
        dropped, the running one is told (its next check_cancelled() raises JobCancelled; what it
        still does is not reported), and no callback of any of them runs, a finished one's either."""
        with self._cond:
            dropped = [j for j in self._queue if j.cancellable]
            if dropped:
                self._queue = deque(j for j in self._queue if not j.cancellable)
                self._undelivered -= len(dropped)
            running = self._running
            for job in self._pending:
                if job.cancellable:
                    job.cancelled = True
        # dropped, or running (the worker counts it delivered itself): nothing comes back of them;
        # a finished one's delivery is still to come, and _on_finished drops its callbacks
        gone = set(dropped) | ({running} if running is not None and running.cancelled else set())
        self._pending = [j for j in self._pending if j not in gone]
        self._forget_busy([j for j in self._busy_pending if j.cancelled])

    def pending(self) -> list:
        """The jobs submitted whose callbacks have not run yet, cancelled ones aside (GUI thread)."""
        return [j for j in self._pending if not j.cancelled]

    def check_cancelled(self) -> None:
        """From inside a running job (the worker thread): raise JobCancelled when it was cancelled."""
        with self._cond:
            job = self._running
        if job is not None and job.cancelled and threading.current_thread() is self._last_thread:
            raise JobCancelled(job.busy_text or getattr(job.fn, "__name__", "job"))

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait for the worker thread to end after shutdown(wait=False); True when none runs."""
        thread = self._last_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _forget_busy(self, jobs: list) -> None:
        """Jobs that will not be delivered no longer make the runner busy."""
        if not jobs:
            return
        for job in jobs:
            self._busy_pending.remove(job)
        if self._busy_job in jobs:
            self._busy_job = None
        if self._busy_pending:   # the next one waits or runs: its text
            self._say_busy(True, self._busy_pending[0].busy_text)
        else:
            self._say_busy(False, "")

    # -- state ---------------------------------------------------------------------------------
    def is_idle(self) -> bool:
        """Nothing queued, nothing running, and every finished job's callback has run."""
        with self._cond:
            return self._undelivered == 0

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Process GUI events until the runner is idle (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while not self.is_idle():
            if time.monotonic() > deadline:
                return False
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)
        return True

    @contextmanager
    def hold(self, timeout: float = 60.0):
        """Keep the worker thread busy for the duration of the block (jobs submitted meanwhile
        queue up, and coalesce): tests use it to make the worker's pace deterministic."""
        started, release = threading.Event(), threading.Event()

        def block() -> None:
            started.set()
            release.wait()
        self.submit(block)
        if not started.wait(timeout):
            release.set()
            raise TimeoutError(f"{self.name}: the worker did not pick up the hold within {timeout} s")
        try:
            yield
        finally:
            release.set()

    def shutdown(self, timeout: float = 15.0, wait: bool = True) -> None:
        """Drop queued jobs and stop the thread once the running job has finished: waits up to
        `timeout` s for that, or (`wait=False`) returns at once (join() waits later)."""
        with self._cond:
            self._undelivered -= len(self._queue)
            dropped = list(self._queue)
            self._queue.clear()
        self._pending = [j for j in self._pending if j not in dropped]
        dropped_busy = [j for j in dropped if j in self._busy_pending]
        for job in dropped_busy:
            self._busy_pending.remove(job)
        if dropped_busy and not self._busy_pending:
            self._say_busy(False, "")
        with self._cond:
            self._stop = True
            self._cond.notify()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s: the worker thread did not stop within %.0f s", self.name, timeout)

    # -- worker thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    self._thread = None   # decided under the lock: a later submit starts a new thread
                    return
                job = self._running = self._queue.popleft()
                self._relay.send("started", job)
            result, error = None, None
            try:
                result = job.fn()
            except JobCancelled:
                log.info("%s: cancelled", job.busy_text or getattr(job.fn, "__name__", "job"))
            except Exception as e:  # a job must never kill the thread
                error = e
                from core.errors import FaderError
                if job.cancelled:
                    log.info("cancelled job ended with: %s", e)
                elif isinstance(e, FaderError):
                    # a failure with somebody to tell is logged once it is told (_on_finished): the
                    # window's show_error logged it as a warning after this line had, two lines
                    # for one failure in the log file (and on stderr before that)
                    if job.on_error is None and self.default_error is None:
                        log.warning("%s failed: %s", _job_name(job), e)
                else:
                    log.error("job failed unexpectedly:\n%s", traceback.format_exc())
            with self._cond:
                self._running = None
                if job.cancelled:   # cancel() took it off the books: nothing is sent of it
                    self._undelivered -= 1
                else:
                    self._relay.send("finished", job, result, error)

    # -- GUI thread ----------------------------------------------------------------------------
    def _say_busy(self, busy: bool, text: str) -> None:
        if (busy, text) != self._busy_said:
            self._busy_said = (busy, text)
            self.busyChanged.emit(busy, text)

    def _on_started(self, job: Job) -> None:
        if job.busy_text and not job.cancelled:
            self._busy_job = job
            self._say_busy(True, job.busy_text)

    def _on_busy_text(self, text: str) -> None:
        if self._busy_job is not None:
            self._say_busy(True, text)

    def _on_finished(self, job: Job, result, error) -> None:
        if job in self._pending:
            self._pending.remove(job)
        try:
            if job.cancelled:
                pass   # cancelled after it finished: its result goes to nobody
            elif error is None:
                if job.on_done is not None:
                    job.on_done(result)
            else:
                message = error_message(error)
                # no longer busy before the error is said: its box is modal, and "Looking for the
                # face…" with its progress bar stayed on show behind "Cannot mark a face"
                self._release(job)
                told = job.on_error is not None or self.default_error is not None
                failure = _Told(f"{self.name}: {_job_name(job)}")
                _telling.append(failure)
                try:
                    if job.on_error is not None:
                        job.on_error(message)
                    else:
                        self.jobFailed.emit(message)
                        if self.default_error is not None:
                            self.default_error(message)
                finally:
                    _telling.remove(failure)
                from core.errors import FaderError
                if told and not failure.logged and isinstance(error, FaderError) and not job.cancelled:
                    # told without a word in the log (a dialog's own message, a status-bar note)
                    _log_as(failure, log, logging.INFO, "%s failed: %s", _job_name(job), message)
        finally:
            self._release(job)
            with self._cond:
                self._undelivered -= 1

    def _release(self, job: Job) -> None:
        """The job counts as busy no more (once: a second call does nothing)."""
        if job is self._busy_job:
            self._busy_job = None
        if job in self._busy_pending:
            self._busy_pending.remove(job)
            if self._busy_pending:   # the next one waits or runs: its text
                self._say_busy(True, self._busy_pending[0].busy_text)
            else:
                self._say_busy(False, "")


# ------------------------------------------------------------------------------------------------
# the editor's model side (runs only inside jobs, i.e. on the worker thread)
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceInfo:
    """What the GUI needs to know about one editable face."""

    index: int
    box: Optional[tuple]  # (x0, y0, x1, y1) in photo pixels; None for an aligned crop
    own_values: dict
    matrix: Optional[tuple] = None   # 2x3 alignment, photo pixels -> crop pixels (the edit brush)
    crop_size: int = 0               # the model's crop side S
    own_certainty: Optional[dict] = None   # the classifier's probability of each reading


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
    search_scale: float = 1.0   # the scale faces were last searched at (< 1: small ones can be missed)
    has_model: bool = True
    reencoded: bool = False  # same photo opened again (model or device changed)
    edit_rect: Optional[tuple] = None  # (x, y, w, h): the only pixels an edit can change
    seconds: float = 0.0
    source: object = None   # core.image_io.Source as read when opened: what an export keeps besides pixels
    # file_stamp of the photo's file when it was opened: an export copies the file as is only
    # while it is still that file (EditorBackend.export)
    stamp: Optional[tuple] = None
    # the photo rendered at the scale the view will show it at, when that is below 1 (it has
    # faces and is shown zoomed out): made before it is shown, so that its first frame is the
    # area-averaged render later frames show, not Qt's own downscale (1-3 levels off) for 0.3 s
    first: Optional[Rendered] = None
    # the values `first` was rendered at: the edit carried over from the previous model (the
    # Snapshot load_model's `keep` gave), or None for the faces' own values
    first_values: object = None
    # searched by Find more faces (EditorBackend.find_more_faces), as well as the first time
    thorough: bool = False
    # Find more faces found more: per face, the index it had before the search (None: a new face)
    carried: Optional[list] = None
    removed: int = 0   # faces the user took off (Not a face)
    # why the model loaded could not open the photo's faces (its re-encoding failed): it is shown
    # with no face to edit, as a photo opened without a model (EditorBackend.reopen_photo)
    faces_error: str = ""


@dataclass
class ModelInfo:
    """A model the worker has loaded (and the photo opened again with it, if one was open)."""

    path: Path
    name: str
    attributes: list
    summary: dict
    device: str
    notice: str = ""                    # something the user should know (no CUDA here, …)
    photo: Optional[PhotoInfo] = None   # the open photo, re-encoded with this model (faces_error: it could not be)


@dataclass(frozen=True)
class RenderRequest:
    """What the worker renders: built on the GUI thread, never changed afterwards."""

    serial: int          # the photo it is for
    generation: int      # increases with every request: older results are not shown
    values: object       # core.edit_session.Snapshot of every face's values
    draft: bool = False  # a slider is being dragged: the faster decode (PhotoEdit.render)
    scale: float = 1.0   # the preview's pixels per photo pixel: below 1, the view is zoomed out
    # (x, y, w, h) in photo pixels: only the edit region's part inside it is needed (what a view
    # zoomed in on a large photo shows); None: the whole region
    within: Optional[tuple] = None


@dataclass
class Rendered:
    """A render's result: the edit region's new pixels and where they go.

    With ``scale`` < 1 the patch is in the pixels of ``base`` (the unedited photo at that scale),
    and (x, y) too; at 1 they are the photo's own. A request ``within`` a rectangle gets that
    part of the region (a null patch when the rectangle misses it)."""

    serial: int
    generation: int
    patch: QImage
    x: int
    y: int
    ms: float
    scale: float = 1.0
    base: Optional[QImage] = None


def _same_box(a, b) -> bool:
    """Whether two face boxes (x0, y0, x1, y1; numpy or Python numbers) are the same face's: a face
    is known by its box between the detector, the photo's document and the window's steps."""
    return tuple(map(float, a)) == tuple(map(float, b))


class _RememberingDetector:
    """Detects faces once per photo: a model or device switch re-aligns and re-encodes the same
    photo, and the faces in it have not moved (detection costs more than encoding on CPU)."""

    def __init__(self):
        self._image = None
        self._faces = None
        self.removed: list = []   # faces the user took off (Not a face): a search does not bring them back
        self.thorough = False   # the faces remembered include those of a thorough search

    def detect(self, rgb: np.ndarray):
        if self._image is not rgb:
            from core.faces import detect_faces
            self._faces = detect_faces(rgb)
            self._image = rgb
            self.removed = []
            self.thorough = False
        return list(self._faces)

    def find_more(self, rgb: np.ndarray, check: Callable[[], None]) -> list:
        """The faces a thorough search (core.faces: every search, whatever the others found)
        finds in `rgb` that are not on one found before; remembered with those, which stay as
        they were found (their edits carry over exactly)."""
        from core.faces import detect_faces, overlaps, reading_order
        found = self.detect(rgb)
        more = [f for f in detect_faces(rgb, thorough=True, check=check)
                if not overlaps(f, found) and not overlaps(f, self.removed)]
        self._faces, self.thorough = reading_order(found + more), True
        return more

    def add(self, rgb: np.ndarray, face) -> None:
        """Remember `face` (one the user marked) with the faces found in `rgb`."""
        from core.faces import overlaps, reading_order
        self._faces = reading_order(self.detect(rgb) + [face])
        self.removed = [f for f in self.removed if not overlaps(f, [face])]

    def remove(self, rgb: np.ndarray, box: tuple) -> None:
        """Forget the face of `rgb` found at `box` (one the user says is no face)."""
        faces = self.detect(rgb)
        self._faces = [f for f in faces if not _same_box(f.box, box)]
        self.removed += [f for f in faces if _same_box(f.box, box)]

    def put_back(self, rgb: np.ndarray, box: tuple) -> bool:
        """The face of `rgb` taken off at `box` (remove) remembered again (an undone Not a face);
        False where it is not one taken off."""
        face = next((f for f in self.removed if _same_box(f.box, box)), None)
        if face is None or self._image is not rgb:
            return False
        self.add(rgb, face)
        return True

    def search_scale(self, h: int, w: int) -> float:
        from core.faces import shared_detector
        return shared_detector().search_scale(h, w)


def _write_then_publish(path: Path, write: Callable[[Path], None], check: Callable[[], None], replace: bool,
                        what: str) -> None:
    """`write(tmp)` a file under a temporary name beside `path` (core's `.NAME.<pid>-<hex>.part.EXT`,
    which a later run cleans up), then `check()`, then move it to `path`: a job cancelled while it
    wrote (a GIF sweep's encoding takes seconds) leaves nothing behind. `replace=False`: never over
    a file that appeared at `path` meanwhile. Errors name `path`, not the temporary file."""
    from core.atomic_write import atomic_path
    from core.errors import FaderError, ImageError, os_reason
    tmp = None
    try:
        with atomic_path(path, keep_suffix=True, replace=replace) as tmp:
            write(tmp)
            check()
    except FaderError as e:
        message = str(e).replace(str(tmp), str(path)) if tmp is not None else str(e)
        try:
            named = type(e)(message)
        except TypeError:   # an error class with other arguments
            named = FaderError(message)
        raise named from None
    except OSError as e:   # the move: a file appeared there, a full disk on fsync
        raise ImageError(f"{path}: cannot save {what}: {os_reason(e)}") from None


class EditorBackend:
    """The Engine, the open photo and its PhotoEdit. Touched only by jobs (the worker thread)."""

    def __init__(self):
        self.engine = None
        self.model_path: Optional[Path] = None
        self.device = "auto"
        self.doc = None
        self.image: Optional[np.ndarray] = None
        self.path: Optional[Path] = None
        self.colour_space: Optional[QColorSpace] = None  # the open photo's, when not sRGB
        self.gray = False   # the open photo has no colour: its edits are shown (and exported) grey
        self.source = None   # the open photo's EXIF, profile and greyness (core Source), read when opened
        self.stamp: Optional[tuple] = None   # file_stamp of the photo when it was opened
        self.serial = 0
        self._detector = _RememberingDetector()
        self._base: Optional[tuple] = None   # (serial, size, QImage): the photo at the preview's scale
        # (source, its alpha plane or None, {size: plane at that scale}): the open photo's
        # transparency as previews need it (_transparency)
        self._alpha: Optional[tuple] = None

    def load_model(self, path: Path, device: str, status: Callable[[str], None] = lambda text: None,
                   check: Callable[[], None] = lambda: None, view: Optional[Callable] = None,
                   keep=None, reopen: bool = True) -> ModelInfo:
        """Load a model (only replacing the running one once the new one works); an open photo is
        detected and encoded again with it (`view`: as for open_photo), but for `reopen=False`
        (photos dropped with the model replace it next: its encoding, seconds for a large photo,
        would be thrown away; reopen_photo does it where they fail to open). `keep`: the open photo's
        edit (the window's Snapshot, None when unedited), which the window carries over to a model
        with the same attribute names where the faces are the same: the photo's first render is
        made at it then (PhotoInfo.first_values). `check()` is called between the steps
        (JobRunner.check_cancelled: it raises to stop there); once the new engine is in place the
        load runs to its end."""
        from core import model_file
        from core.engine import Engine   # the first time: torch's import, seconds
        check()
        model = model_file.load_model(path)
        check()
        notice = ""
        if device.startswith("cuda"):
            import torch
            if not torch.cuda.is_available():
                # a saved choice from another machine must not leave the editor without a model
                notice = "No CUDA device here: running the model on the CPU"
                device = "auto"
        engine = Engine(model, device=device, threads=inference_threads())
        check()
        self.engine, self.model_path, self.device = engine, path, device
        info = ModelInfo(path, model.name, list(model.attributes), model_file.model_summary(model),
                         str(engine.device), notice)
        if self.image is not None and not reopen:
            # the old document belongs to the old model: never keep rendering it
            self.doc = None
            self.serial += 1
        elif self.image is not None:
            info.photo = self.reopen_photo(status, view, keep)
        return info

    def reopen_photo(self, status: Callable[[str], None] = lambda text: None, view: Optional[Callable] = None,
                     keep=None) -> PhotoInfo:
        """The open photo detected and encoded again with the model loaded (`view`, `keep`: as for
        load_model). Where that fails, the photo with no face to edit, `faces_error` saying why:
        the window showed its faces and faders while nothing could render them any more."""
        try:
            info = self._open_array(self.image, self.path, reencoded=True, status=status,
                                    colour_space=self.colour_space, source=self.source, stamp=self.stamp,
                                    view=view, keep=keep)
            if self.doc is not None and self.doc.faces:
                # a decode is what finds a model that cannot decode the faces (NaN), and an unedited
                # photo's first frame, if any, decodes none: its faders stayed on, each move said
                # "Preview failed" and an edit carried over was not set aside. 11 ms a face at 128 px
                from core.photo_edit import decode_faces
                decode_faces([(self.doc, i) for i in range(len(self.doc.faces))], edit=False)
            return info
        except Exception as e:
            log.warning("re-encoding %s with %s failed: %s", self.path, self.model_path, e)
            # the old document belongs to the old model: never keep rendering it
            self.doc = None
            self.serial += 1
            h, w = self.image.shape[:2]
            return PhotoInfo(self.serial, self.path, w, h, to_display(self.image, self.colour_space),
                             has_model=False, reencoded=True, source=self.source, stamp=self.stamp,
                             faces_error=error_message(e))

    def set_device(self, device: str, status: Callable[[str], None] = lambda text: None,
                   check: Callable[[], None] = lambda: None, view: Optional[Callable] = None,
                   keep=None) -> Optional[ModelInfo]:
        if self.model_path is None:
            self.device = device
            return None
        return self.load_model(self.model_path, device, status, check, view, keep)

    def open_photo(self, path: Path, status: Callable[[str], None] = lambda text: None,
                   view: Optional[Callable] = None) -> PhotoInfo:
        """`view(width, height)`: the preview scale the window will show a photo of that size at
        (PhotoCanvas.preview_scale_for); below 1 the photo comes with its first render at it."""
        from core import image_io
        stamp = file_stamp(path)   # before reading: a change while it is read counts as a change
        # with its Source (from the same decode): the header, a transparent photo's alpha plane and
        # straight colours, a 16-bit photo's own values; the export keeps them even where the file
        # is deleted or replaced after it was opened (None where they cannot be read)
        image, source = image_io.open_photo(path, source_required=False)
        return self._open_array(image, path, reencoded=False, status=status, colour_space=display_colour_space(path),
                                source=source, stamp=stamp, view=view)

    def find_more_faces(self, serial: int, status: Callable[[str], None] = lambda text: None,
                        check: Callable[[], None] = lambda: None) -> tuple:
        """Search the open photo again for faces, thoroughly (View ▸ Find more faces): (PhotoInfo,
        seconds) with the faces found before and the new ones, `carried` saying which was which
        (the window carries the edit over), or (None, seconds) where no new face was found."""
        t0 = time.perf_counter()
        doc = self._current(serial, "search for more faces", self.path)
        status(f"Looking for more faces in {self.path.name}…")
        if not self._detector.find_more(self.image, check):
            return None, time.perf_counter() - t0
        return self._with_more_faces(doc, status), time.perf_counter() - t0

    def mark_face(self, serial: int, box: tuple, status: Callable[[str], None] = lambda text: None,
                  check: Callable[[], None] = lambda: None) -> tuple:
        """The face in `box` (photo pixels), drawn by the user around one the searches missed
        (View ▸ Mark a missed face; core FaceDetector.face_in_box), added to the open photo's: (PhotoInfo,
        seconds) as find_more_faces gives. FaderError where no face is found there, or where it
        is one found already."""
        from core.errors import FaderError
        from core.faces import overlaps, shared_detector
        t0 = time.perf_counter()
        doc = self._current(serial, "face search", self.path)
        status("Looking for the face in the marked area…")
        face = shared_detector().face_in_box(self.image, box, check)
        if face is None:
            raise FaderError(f"{MARK_NO_FACE}. Draw the box around the whole face, from the hairline to the chin; "
                             "a face seen from the side or mostly hidden cannot be edited.")
        on = [i for i, f in enumerate(doc.faces) if f.box is not None and overlaps(face, [f])]
        if on:
            raise FaderError(f"The marked face was found already: it is face {on[0] + 1}; select it to edit it.")
        if overlaps(face, self._detector.detect(self.image)):
            raise FaderError("The marked face was found already, too small for the model to edit.")
        self._detector.add(self.image, face)
        return self._with_more_faces(doc, status), time.perf_counter() - t0

    def remove_face(self, serial: int, index: int, status: Callable[[str], None] = lambda text: None,
                    box: Optional[tuple] = None) -> tuple:
        """The open photo without its face `index`, which the user says is no face (a print, a pair
        of hands; View ▸ Not a face): (PhotoInfo, seconds) as find_more_faces gives, the other
        faces and their edits as they were. `box`: the face's box, where it must be that face (a redo)."""
        from core.errors import FaderError
        t0 = time.perf_counter()
        doc = self._current(serial, "face removal", self.path)
        if (doc.aligned or not 0 <= index < len(doc.faces)
                or box is not None and not _same_box(doc.faces[index].box, box)):
            raise FaderError("There is no such face to remove.")
        self._detector.remove(self.image, doc.faces[index].box)
        return self._with_more_faces(doc, status), time.perf_counter() - t0

    def put_face_back(self, serial: int, box: tuple, status: Callable[[str], None] = lambda text: None) -> tuple:
        """The face at `box` that remove_face took off, back on the open photo (Not a face undone):
        (PhotoInfo, seconds) as remove_face gives; the window puts its edit back."""
        from core.errors import FaderError
        t0 = time.perf_counter()
        doc = self._current(serial, "undo", self.path)
        if not self._detector.put_back(self.image, box):
            raise FaderError("The face taken off is no longer known; View ▸ Mark a missed face adds it back.")
        return self._with_more_faces(doc, status), time.perf_counter() - t0

    def _with_more_faces(self, doc, status) -> PhotoInfo:
        """The open photo opened again with the faces the detector now remembers, `carried` saying
        which of `doc`'s faces each one is (None: a new one)."""
        before = [f.box for f in doc.faces]
        info = self._open_array(self.image, self.path, reencoded=True, status=status,
                                colour_space=self.colour_space, source=self.source, stamp=self.stamp)
        info.carried = [before.index(f.box) if f.box in before else None for f in self.doc.faces]
        return info

    def _open_array(self, image: np.ndarray, path: Path, reencoded: bool, status,
                    colour_space: Optional[QColorSpace] = None, source=None, stamp=None,
                    view: Optional[Callable] = None, keep=None) -> PhotoInfo:
        """The photo `image` opened with the model, if one is loaded: its faces found and read.
        `source`: what its file holds besides the pixels (core Source; None where unread);
        `stamp`: its file's file_stamp when it was read; `view`: as for open_photo; `keep`: as
        for load_model."""
        from core.photo_edit import PhotoEdit
        t0 = time.perf_counter()
        doc = None
        if self.engine is not None:
            status(f"Finding faces in {path.name}…")
            doc = PhotoEdit.open(image, self.engine, require_face=False, detector=self._detector)
            doc.path = path
        # replace the current photo only once the new one opened
        self.serial += 1
        self.doc, self.image, self.path, self.colour_space, self.source = doc, image, path, colour_space, source
        self.stamp = stamp
        self.gray = bool(source and source.gray)
        h, w = image.shape[:2]
        info = PhotoInfo(self.serial, path, w, h, to_display(image, colour_space), has_model=doc is not None,
                         reencoded=reencoded, aligned=bool(doc is not None and doc.aligned), source=source,
                         stamp=stamp, thorough=doc is not None and self._detector.thorough,
                         removed=len(self._detector.removed) if doc is not None else 0)
        if doc is not None:
            s = self.engine.image_size
            info.faces = [FaceInfo(f.index, f.box, dict(f.own_values),
                                   tuple(map(tuple, np.asarray(f.aligned.matrix, float).reshape(2, 3))), s,
                                   dict(f.own_certainty) if f.own_certainty else None)
                          for f in doc.faces]
            info.skipped = [(s.box, s.reason) for s in doc.skipped]
            info.search_scale = doc.search_scale
            info.edit_rect = doc.edit_region()
            scale = min(1.0, float(view(w, h))) if view is not None and doc.faces else 1.0
            if scale < 1.0:
                # as the window's first render request would have it: at the edit it carries over
                # (rendered at the faces' own values, the edit vanished from view until the next
                # render), else at the faces' own values
                info.first_values = self._carry(doc, keep)
                info.first = self._render(self.serial, 0, scale=scale)
        info.seconds = time.perf_counter() - t0
        return info

    @staticmethod
    def _carry(doc, keep):
        """`keep` put on `doc` where the window carries it over (the same number of faces, the same
        attribute names: MainWindow._on_photo_loaded), and returned; else None."""
        from core.errors import FaderError
        names = {a.name for a in doc.session.attributes}
        if keep is None or len(keep.faces) != len(doc.faces) or any({n for n, _ in face} != names
                                                                     for face in keep.faces):
            return None
        try:
            doc.restore(keep)
        except FaderError:   # a snapshot the document refuses: its first render is unedited, as before
            return None
        return keep

    def _current(self, serial: int, what: str, path=None):
        from core.errors import FaderError
        if self.doc is None or serial != self.serial:
            where = f"{path}: " if path is not None else ""
            raise FaderError(f"{where}the photo or the model changed before the {what} ran; nothing was written")
        return self.doc

    def render(self, request: RenderRequest) -> Optional[Rendered]:
        """The edit region at the request's values; None for a photo that has been replaced."""
        if self.doc is None or request.serial != self.serial:
            return None
        t0 = time.perf_counter()
        self.doc.restore(request.values)
        return self._render(request.serial, request.generation, request.draft, request.scale, request.within, t0)

    def _render(self, serial: int, generation: int, draft: bool = False, scale: float = 1.0,
                within: Optional[tuple] = None, t0: Optional[float] = None) -> Rendered:
        """The edit region of the open photo at the document's values (render's, and the first
        render made as a photo opens)."""
        t0 = time.perf_counter() if t0 is None else t0
        # only the faces' region can differ from the original: ship that, not the whole photo;
        # and zoomed out, at the resolution it is shown at; zoomed in, the part in view
        # (PhotoEdit.render_region)
        scale = min(1.0, float(scale))
        pixels, (x, y) = self.doc.render_region(draft, scale, within)
        if pixels.size:
            alpha = self._transparency(scale)
            alpha = None if alpha is None else alpha[y:y + pixels.shape[0], x:x + pixels.shape[1]]
            patch = to_display(self._as_exported(pixels, alpha), self.colour_space)
        else:
            patch = QImage()
        base = self.scaled_original(scale) if scale < 1.0 else None
        return Rendered(serial, generation, patch, x, y, (time.perf_counter() - t0) * 1000.0, scale, base)

    def _transparency(self, scale: float = 1.0) -> Optional[np.ndarray]:
        """The open photo's alpha plane as its export writes it (None when opaque), at ``scale``
        (< 1: area-averaged as PhotoEdit.scaled_image is), from the source read when it opened."""
        if self._alpha is None or self._alpha[0] is not self.source:
            plane = self.source.alpha if self.source is not None else None
            if plane is not None and (self.image is None or plane.shape != self.image.shape[:2]):
                plane = None
            self._alpha = (self.source, plane, {})
        plane, scaled = self._alpha[1], self._alpha[2]
        if plane is None or scale >= 1.0 or self.doc is None:
            return plane
        size = self.doc.scaled_size(scale)
        if size not in scaled:
            import cv2
            scaled.clear()   # the last size only, as scaled_original
            scaled[size] = cv2.resize(plane, size, interpolation=cv2.INTER_AREA)
        return scaled[size]

    def scaled_original(self, scale: float) -> QImage:
        """The unedited photo at ``scale`` (< 1) in display colours, the grid of scaled patches
        (cached for the last size: every render at that scale sends the same image)."""
        size = self.doc.scaled_size(scale)
        if self._base is None or self._base[:2] != (self.serial, size):
            self._base = (self.serial, size, to_display(self.doc.scaled_image(scale), self.colour_space))
        return self._base[2]

    def _photo_at(self, serial: int, values, what: str, path=None, seen: bool = False) -> tuple:
        """(unchanged, pixels): the whole photo at `values` (a Snapshot; None without a model or
        without faces) as an export renders it, the photo's own pixels where nothing is edited.
        ``seen``: a transparent photo's as the exported file looks over white (_as_exported)."""
        from core.errors import FaderError
        if self.image is None:
            where = f"{path}: " if path is not None else ""
            raise FaderError(f"{where}nothing to {what}; open a photo first")
        if serial != self.serial:
            self._current(serial, what, path)
        if self.doc is None or values is None:
            return True, self.image
        self.doc.restore(values)
        if not self.doc.is_modified():
            return True, self.doc.image
        return False, self._as_exported(self.doc.render(), self._transparency() if seen else None)

    def _as_exported(self, pixels: np.ndarray, alpha: Optional[np.ndarray] = None) -> np.ndarray:
        """Rendered pixels as the export writes them: a grey photo's edit as its luminance; with
        ``alpha`` (the transparency of those pixels), as the exported file looks over white: the
        straight colour the export writes (core.image_io's un-compositing) composited again. An
        edit is shown only as far as the alpha lets it through: where the photo is fully
        transparent the export keeps it white, and the preview showed the edit there."""
        from core.image_io import as_exported
        return as_exported(pixels, alpha, self.gray)

    def rendered_image(self, serial: int, values) -> QImage:
        """The whole photo at `values` as an export renders it, in the display's colours (sRGB):
        what Copy image puts on the clipboard."""
        return to_display(self._photo_at(serial, values, "copy", seen=True)[1], self.colour_space)

    def export(self, path: Path, serial: int, values, quality: int, keep_exif: bool, may_replace: bool = True) -> tuple:
        """Write the photo at `values` (a Snapshot; None without a model or faces): the original file itself
        when nothing is edited and its format allows, else the rendered pixels. `may_replace=False`:
        never over a file that appeared at `path` since the user chose it. Returns (path, notes): what
        the file could not keep of the photo, one short phrase each (export_photo's: transparency in a
        JPEG, 16 bits, …)."""
        from core.errors import FaderError
        from core.image_io import Source, export_photo, read_source
        unchanged, rgb = self._photo_at(serial, values, "export", path)
        # the file may have been replaced (another picture, a grey one) or deleted since it opened:
        # what was read of it then goes with the pixels (the colour profile, which says what the
        # pixels' numbers mean, a grey photo's greyness, a PNG's transparency: export_photo, as
        # edit and batch), and never a copy of the new file
        same = self.path is not None and self.stamp is not None and file_stamp(self.path) == self.stamp
        source = self.source
        if source is None and same:
            try:
                source = read_source(self.path)
            except FaderError:
                source = None
        source = source or Source()
        if not keep_exif:   # the metadata that can say who, where and when goes with the EXIF
            source = source.without_metadata()
        # nothing edited: the original file itself where the format allows (no recompression)
        original = self.path if keep_exif and same else None
        _copied, notes = export_photo(original, path, rgb, source, quality=quality, unchanged=unchanged,
                                      replace=may_replace)
        log.info("exported %s%s", path, f" (not all kept: {'; '.join(notes)})" if notes else "")
        return str(path), list(notes)

    def export_sweep(self, serial: int, face: int, spec: dict, values=None,
                     check: Callable[[], None] = lambda: None) -> str:
        """spec: path, attr (NAME or NAME=TARGET), lo, hi, steps, labels (see core.sweep); values:
        the window's Snapshot, for the faces' own values it holds. `check()` is called between the
        steps (JobRunner.check_cancelled: it raises to stop there), the last time once the file
        is written under a temporary name: a sweep stopped then leaves nothing, and a file it was
        to replace stays as it was."""
        from core import sweep
        from core.errors import FaderError
        from core.image_io import save_image
        path = Path(spec["path"])
        doc = self._current(serial, "sweep", path)
        if not 0 <= face < len(doc.faces):
            raise FaderError(f"{path}: no face to sweep")
        if values is not None:
            doc.restore(values)
        # the face at its own values (as read, or as the user corrected them), not as edited: a
        # sweep shows the attribute on its own
        sf = sweep.SweepFace.of(doc, face, self.path.name if self.path else "photo")
        args = dict(lo=spec["lo"], hi=spec["hi"], steps=spec["steps"], labels=spec["labels"])
        check()
        if path.suffix.lower() in (".gif", ".mp4"):
            pixels, what = sweep.sweep_frames([sf], self.engine, spec["attr"], **args), "animation"
            # the encoding (seconds for a long GIF) checks between its frames too: a cancel stops it there
            write = lambda tmp, px, replace: sweep.save_animation(tmp, px, replace=replace, check=check)  # noqa: E731
        else:
            pixels, write, what = sweep.sweep_strip([sf], self.engine, spec["attr"], **args), save_image, "image"
        check()
        _write_then_publish(path, lambda tmp: write(tmp, pixels, replace=True), check, spec.get("replace", True), what)
        return str(path)

    def save_recipe(self, path: Path, serial: int, values, face: int) -> str:
        import json
        from core.atomic_write import write_bytes_atomic
        from core.errors import FaderError
        doc = self._current(serial, "recipe", path)
        if not doc.faces:
            raise FaderError(f"{path}: no face to save a recipe for")
        doc.restore(values)
        try:
            write_bytes_atomic(path, (json.dumps(doc.recipe(face), indent=2) + "\n").encode("utf-8"))
        except OSError as e:
            raise FaderError(f"{path}: cannot write recipe: {e.strerror or e}") from None
        return str(path)

    def import_reference(self, checkpoint: Path, output: Path, attributes, status=lambda text: None,
                         view: Optional[Callable] = None, keep=None) -> ModelInfo:
        """Convert a reference checkpoint to a .fader file, then load it."""
        import importlib
        from core.errors import FaderError
        from core.model_file import save_model
        try:
            legacy = importlib.import_module("core.legacy_import")
        except ImportError:
            raise FaderError(f"{checkpoint}: importing reference checkpoints is not available in this build") from None
        model = legacy.import_reference_checkpoint(str(checkpoint), attributes=attributes)
        save_model(model, output)
        return self.load_model(output, self.device, status, view=view, keep=keep)
