"""The main window: canvas, fader panel, undo stack, and the bridge to the background jobs.

The edit state of the open photo is an EditSession (core/edit_session.py) on the GUI thread: the
fader panel writes it and shows it, and the window listens to it, turning each change into an
undo step (QUndoStack of session snapshots) and a render request. Every model call is a job on
the window's JobRunner (fader_desktop/workers.py) run by the EditorBackend, which owns the
engine and the open PhotoEdit; a render job receives an immutable request (the session's
snapshot, the photo's serial number and a generation number) built here.
"""
from __future__ import annotations

import bisect
import html
import itertools
import json
import logging
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QEvent, QRectF, QSignalBlocker, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QKeySequence,
                           QUndoCommand, QUndoStack)
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QDockWidget, QFileDialog, QLineEdit,
                               QMainWindow, QMessageBox)
from shiboken6 import isValid as shiboken_valid

from core.atomic_write import same_file
from core.alignment import crop_corners
from core.attributes import counted
from core.edit_mask import EditMask, crop_scale, to_crop
from core.edit_session import ALL_FACES, EditSession, Snapshot, Towards, carry_over, snapshot_edited
from core.errors import FaderError
from core.image_io import IMAGE_SUFFIXES
from core.recipe import RECIPE_FORMAT, load_recipe, make_recipe, recipe_values

from .brush_overlay import erased_overlay
from .canvas import PhotoCanvas
from .dialogs import ExportDialog, ImportReferenceDialog, ModelCardDialog, SweepDialog, about_html, fit_on_screen
from .fader_panel import FaderPanel, display_name
from .plain_text import ended, literal_tip, no_mnemonic, plain, with_access_key
from .settings import DEVICES, Settings
from .window_actions import build_window_chrome, icon, make_room_for_message
from .workers import MARK_NO_FACE, EditorBackend, JobRunner, ModelInfo, PhotoInfo, RenderRequest, Rendered, log_told

log = logging.getLogger("fader_desktop")

APP_TITLE = "Fader Desktop"
OPEN_FILTER = f"Images ({' '.join('*' + s for s in IMAGE_SUFFIXES)});;All files (*)"
# how long the view must stay put (zoom, pan) before the preview is rendered again for it: at the
# new scale, or for the part of a large photo now in view
RESCALE_MS = 120
# Zoomed in on a large photo, a render covers only the part of the edit region in view, widened by
# this many screen pixels on each side, when that part is less than PARTIAL_FRACTION of the region:
# at 100 % a 48 MP photo's face region is 17 MP, a 1600x1000 view shows 1.6 MP of it.
PARTIAL_MARGIN_PX = 32
PARTIAL_FRACTION = 0.5
# the window's size at first start, where the screen has room for it (see fit_on_screen)
DEFAULT_SIZE = (1280, 820)


# the title where a model loaded but the open photo could not be opened again with it
REOPEN_FAILED = "Cannot open the photo with the new model"
# ask_confirm's answer where the third button (`other`) was pressed
ASK_OTHER = "other"


class ValuesCommand(QUndoCommand):
    """One undoable change of the faders (session snapshots before and after, all faces).

    Whole snapshots make every kind of change (one fader, All faces, reset) the same command.
    Consecutive commands with the same merge key (same face selection + attribute + slider drag)
    merge, so a drag is one undo step.
    """

    def __init__(self, window: "MainWindow", before, after, label: str, merge_key=None, faces=()):
        self.faces = tuple(faces or ())
        self.label = label
        super().__init__(step_text(label, self.faces, len(after.faces)))
        self.window, self.before, self.after, self.merge_key = window, before, after, merge_key

    def id(self) -> int:
        return 1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self.merge_key is None or getattr(other, "merge_key", None) != self.merge_key:
            return False
        self.after, self.label = other.after, other.label
        self.setText(other.text())   # "Undo Smiling 1.70": the value the drag ended on
        # a drag that ends where it started is no change at all
        self.setObsolete(self.after == self.before)
        return True

    def redo(self) -> None:
        if self.window.replaying_history:
            return
        self._show_face()
        self.window.session.restore(self.after)   # already there when the command is first pushed

    def undo(self) -> None:
        if self.window.replaying_history:
            return
        self._show_face()
        self.window.session.restore(self.before)

    def _show_face(self) -> None:
        """Select the one face this step changes, so that its faders show what undo or redo did."""
        s = self.window.session
        if len(self.faces) == 1 and s.selected not in (self.faces[0], ALL_FACES):
            s.select(self.faces[0])


class FaceCommand(QUndoCommand):
    """View ▸ Not a face as an undo step: undo puts the face back with its edit (its faders, its
    corrected readings, its brush mask), redo takes it off again. The photo's faces change, so each
    runs as a job (MainWindow._run_face_step); the step is pushed once the face is off.

    `before` and `after` are the session's snapshots with and without the face: every step before
    this one in the history is on `before`'s faces, every step after it on `after`'s."""

    def __init__(self, window: "MainWindow", index: int, before, after, boxes_before, boxes_after):
        # "Not a face (face 2)": step_text would say "Not a face 2", as for "Reset face 2"
        super().__init__(f"Not a face (face {index + 1})" if len(before.faces) > 1 else "Not a face")
        self.window, self.index, self.before, self.after = window, index, before, after
        self.boxes_before, self.boxes_after = list(boxes_before), list(boxes_after)
        self.box = self.boxes_before[index]
        # the faces left, each by its index before: how a step made before this one finds them
        self.kept = [j for j in range(len(before.faces)) if j != index]
        # an unedited face's going changes no pixel (has_unsaved_edits)
        self.edited = snapshot_edited(window._attrs, before, index)
        self._pushed = False

    def redo(self) -> None:
        if not self._pushed:   # push() runs redo(): the face is off already
            self._pushed = True
            return
        if not self.window.replaying_history:
            self.window._run_face_step(self, undo=False)

    def undo(self) -> None:
        if not self.window.replaying_history:
            self.window._run_face_step(self, undo=True)


def step_text(label: str, faces, n_faces: int) -> str:
    """An undo step's name in the Edit menu: with more than one face in the photo, which face it
    changed ("Smiling 1.70 (face 2)"), as the Face list numbers them."""
    if n_faces < 2 or not faces or "all faces" in label:
        return label
    if len(faces) == n_faces:
        return f"{label} (all faces)"
    numbers = ", ".join(str(f + 1) for f in sorted(faces))
    if len(faces) == 1 and label.endswith(" face"):
        return f"{label} {numbers}"   # "Reset face 2"
    return f"{label} ({'face' if len(faces) == 1 else 'faces'} {numbers})"


def local_files(mime) -> list:
    """The local files a drag or the clipboard carries (QMimeData, or None), as paths."""
    return [Path(u.toLocalFile()) for u in (mime.urls() if mime is not None else []) if u.isLocalFile()]


def recent_labels(paths) -> dict:
    """path -> its label in a recent list: the file name, with as many of its folders as tell it
    from the others of the same name. Every training run writes RUN/model.fader, so Recent Models
    listed several "model.fader" that only their tooltips told apart ("r7/model.fader")."""
    parts = {f: Path(f).parts for f in paths}
    depth = {f: 1 for f in paths}
    while True:
        labels = {f: str(Path(*parts[f][-depth[f]:])) for f in paths}
        seen: dict = {}
        for f, text in labels.items():
            seen.setdefault(text, []).append(f)
        clash = [f for same in seen.values() if len(same) > 1 for f in same if depth[f] < len(parts[f])]
        if not clash:
            return labels
        for f in clash:
            depth[f] += 1


def _gone(path: str) -> bool:
    """Whether nothing is at `path` any more (moved, renamed or deleted; a link to nothing)."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return True
    except OSError:
        return False   # there, but not readable (permission, a loop of links): the open says why
    return False


def pasted_folder() -> Path:
    """Where File ▸ Open from clipboard keeps pasted images (the app's data folder, Pasted/)."""
    from PySide6.QtCore import QStandardPaths
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)) / "Pasted"


def app_folder(folder) -> bool:
    """Whether `folder` is one of the app's own, not the user's: Pasted/ (a pasted image's) or the
    sample photo's (read-only in a packaged install). Never proposed or remembered as where the
    user works: after a paste, Export, Open and Save recipe proposed the hidden data folder."""
    import resources
    try:
        folder = Path(folder).resolve()
        own = (pasted_folder().resolve(), resources.sample_photo_path().parent.resolve())
    except (OSError, RuntimeError):
        return False
    return any(folder == f or f in folder.parents for f in own)


def user_folder(*candidates) -> Path:
    """The first of `candidates` (remembered folders) that exists and is no app_folder, else the
    user's Pictures folder, else home."""
    from PySide6.QtCore import QStandardPaths
    for c in candidates:
        if c and os.path.isdir(c) and not app_folder(c):
            return Path(c)
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return Path(pictures) if pictures and os.path.isdir(pictures) else Path.home()


# what the Faders panel says of View ▸ Find more faces where a face may have been missed, and after it
MORE_FACES_HINT = ("A face missed (lying down, small, tilted)? View ▸ Find more faces searches again; "
                   "View ▸ Mark a missed face takes a box drawn around it.")
# the status bar's line while marking a missed face (set_marking takes it away when marking ends)
MARKING_HINT = "Mark a missed face: drag a box from hairline to chin (keys: arrows, [ ], Enter; Esc stops)"
MORE_FACES_DONE = "View ▸ Find more faces found none either; View ▸ Mark a missed face takes a box drawn around a face."
MORE_FACES_TINY = "No search looks for faces under 40 px: View ▸ Mark a missed face takes a box drawn around one."
MORE_FACES_SMALL = ("Or View ▸ Find more faces looks for them (seconds on a big photo), and View ▸ Mark a missed face "
                    "takes a box drawn around one.")


def _names_of(snapshot) -> set:
    """The attribute names an edit (a Snapshot of faces) holds values of."""
    return {name for name, _value in snapshot.faces[0]} if snapshot.faces else set()


class MainWindow(QMainWindow):
    """Fader Desktop's editor window."""

    photoOpened = Signal(object)      # PhotoInfo, after the window has shown it
    modelChanged = Signal(object)     # ModelInfo
    previewUpdated = Signal(int)      # generation of the preview now shown
    renderFinished = Signal(int, float)   # generation and milliseconds of every render the worker ran
    exportFinished = Signal(str)      # written path
    sweepExported = Signal(str)       # written path
    imageCopied = Signal()            # the photo went to the clipboard
    errorShown = Signal(str, str)     # title, message (after show_error)

    def __init__(self, settings: Optional[Settings] = None, device: Optional[str] = None):
        super().__init__()
        self.settings = settings or Settings()
        # a save of the settings that fails once the window runs (a disk that filled since start)
        self.settings.on_unsaved = self._on_settings_unsaved
        self.device = device if device in DEVICES else self.settings.device
        self._model: Optional[ModelInfo] = None
        self._photo: Optional[PhotoInfo] = None
        self._attrs: list = []
        self.session = EditSession([], [])
        self._unsubscribe = None
        self._serial = 0
        self._gen = 0
        self._shown_gen = 0
        self._draft_requested = False   # the latest render asked for the draft decode (a drag)
        self._render_scale: Optional[float] = None   # the preview scale of the latest render (None: none yet)
        self._render_within: Optional[tuple] = None   # the photo rectangle it was limited to (None: all)
        self._busy = False
        self._busy_said = ""   # the busy text the jobs said last
        self._busy_note = None   # (a note said beside the busy texts, until when: time.monotonic())
        # each export still queued or running -> (photo serial, undo index, snapshot) when requested;
        # one entry per export, not per path: two exports to one file are two entries
        self._export_index: dict = {}
        self._export_ids = itertools.count()
        self._export_paths: dict = {}   # each export still queued or running -> its path
        self._loss_source = None   # (file stamp, its format) of the open photo, for the Export dialog's losses
        self._opening: Optional[Path] = None   # the photo being opened (a job queued or running)
        self._closing = False
        self._sweeps: list = []   # (job, path) of the sweeps submitted: closing asks before one still running is dropped
        self._image_list: list = []     # photos given on the command line (Next/Previous walk them)
        self._models_loading: list = []   # the file names of the models being loaded, in turn
        self._focus_before_busy = None   # the Faders panel's widget that had the focus when a job greyed it
        self._list_pos: Optional[int] = None   # the one of them last tried
        # (photo shown, its folder's neighbour that failed to open): Next/Previous go on from that one
        self._sibling_failed: Optional[tuple] = None
        self._painted = False
        self._start_note = None   # said with "Loaded model" at start (the last model gone)
        self._after_first_paint: list = []
        self._last_attr: Optional[str] = None
        self.last_render_ms: Optional[float] = None
        self._clean_modified = False   # whether the photo was edited at the undo stack's clean state
        # the photo on show was not encoded with the model loaded: photos dropped with it replace it
        self._stale_photo = False
        # the edit of the photo on show while the model loaded cannot read its faces (faces_error):
        # (snapshot, selected face, whether it was unsaved), put back by the next model that reads
        # them (_on_photo_loaded); it was lost at the switch without a question
        self._set_aside: Optional[tuple] = None

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)

        self.undo_stack = QUndoStack(self)
        self.replaying_history = False   # while the history is rebuilt, its steps leave the session alone
        self._failed_export = None   # (photo, path) of the last export that failed, proposed again
        self._after_export = None   # (export id, what to do once it is written): see _confirm_discard
        # a method, not a lambda: PySide drops it with the window, which the stack (its child,
        # destroyed after it) told of its unsaved edits going away, "already deleted", on every quit
        self.undo_stack.cleanChanged.connect(self._on_clean_changed)

        self.canvas = PhotoCanvas()
        self.setCentralWidget(self.canvas)
        # a small window keeps the photo a usable size: the window's minimum grows instead
        self.canvas.setMinimumSize(240, 160)
        self.panel = FaderPanel()
        self.dock = QDockWidget("Faders", self)
        self.dock.setObjectName("faders")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                              QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        self.jobs = JobRunner("fader-inference", self)
        self.jobs.busyChanged.connect(self._on_busy)
        self.jobs.default_error = lambda message: self._error("Error", message)
        self.backend = EditorBackend()

        build_window_chrome(self)
        self.panel.openModelRequested.connect(self.open_model_dialog)
        self.panel.dragFinished.connect(self._on_drag_finished)
        self.canvas.faceClicked.connect(self.panel.select_face)
        self.canvas.zoomChanged.connect(self._on_zoom)
        self.canvas.brushStroke.connect(self._on_brush_stroke)
        self.canvas.faceMarked.connect(self._on_face_marked)
        self.canvas.markCancelled.connect(lambda: self.set_marking(False))
        self.canvas.brushSizeChanged.connect(self._show_brush_help)
        self._stroke_id = 0
        # a zoom (wheel steps, a resize) re-renders the preview at its new resolution once it settles
        self._rescale = QTimer(self)
        self._rescale.setSingleShot(True)
        self._rescale.setInterval(RESCALE_MS)
        self._rescale.timeout.connect(self._rerender_for_view)
        self.canvas.viewChanged.connect(self._rescale.start)
        self._set_session(self.session)

        self._watch_text_keys()
        saved = self.settings.geometry()
        restored = saved is not None and self.restoreGeometry(saved)
        if self.settings.window_state() is not None:
            self.restoreState(self.settings.window_state())
        if not restored:
            fit_on_screen(self, QSize(*DEFAULT_SIZE), centre=True)
        elif not self.isMaximized() and not self.isFullScreen():
            # saved on a larger screen (a laptop undocked, a higher scale factor): the Faders panel
            # and the status bar were past the screen's edge
            fit_on_screen(self)
        self._refresh()

    def _on_clean_changed(self, clean: bool) -> None:
        if clean:   # emitted once an undo, redo or push has restored the session, or at setClean
            self._clean_modified = self.session.is_modified()
        self._show_modified()

    def has_unsaved_edits(self) -> bool:
        """Whether the photo holds edits not exported: the history has moved from where the photo
        opened or was last exported, and the pixels may differ from then. Where the photo is not
        edited now and was not then (a reading corrected with no fader moved, which changes no
        pixel), both are the photo's own pixels: closing asked "Discard edits?" all the same."""
        if self._set_aside is not None:   # not in the history (cleared), still the user's edit
            return self._set_aside[2]
        stack = self.undo_stack
        if stack.isClean():
            return False
        clean, index = stack.cleanIndex(), stack.index()
        if clean >= 0 and all(isinstance(c, FaceCommand) and not c.edited
                              for c in map(stack.command, range(min(clean, index), max(clean, index)))):
            return False   # only unedited faces taken off (or put back) since: the same pixels
        # cleanIndex -1: the state last exported is no longer in the history, its pixels unknown
        return self.session.is_modified() or self._clean_modified or self.undo_stack.cleanIndex() < 0

    def _show_modified(self) -> None:
        self.setWindowModified(self.has_unsaved_edits())

    # ------------------------------------------------------------------------------------------
    # hooks for dialogs (tests replace these on the instance)
    # ------------------------------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        """Tell the user something failed: a modal message box naming the problem (also logged)."""
        # one line for one failure: inside a failed job's on_error the log file's line names the job too
        log_told(log, logging.WARNING, "%s: %s", title, message)
        # plain: a message quotes paths, model names and attribute names, which Qt took for HTML
        box = plain(QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self))
        box.exec()

    def ask_confirm(self, title: str, message: str, accept_text: str = "OK", other: Optional[str] = None):
        """Ask before something destructive; default is No. `other`: the text of a third answer
        (Export… beside Discard), for which ASK_OTHER is returned."""
        box = plain(QMessageBox(QMessageBox.Icon.Question, title, message, QMessageBox.StandardButton.Cancel, self))
        # each answer with its own access key (Alt+D: Discard): the platform's Cancel has none on
        # Windows and in Qt's default theme, and a keyboard user had only Tab and Esc
        taken = set()
        box.button(QMessageBox.StandardButton.Cancel).setText(with_access_key("&Cancel", taken))
        alt = box.addButton(with_access_key(other, taken), QMessageBox.ButtonRole.AcceptRole) if other else None
        yes = box.addButton(with_access_key(accept_text, taken), QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return ASK_OTHER if alt is not None and box.clickedButton() is alt else box.clickedButton() is yes

    def _error(self, title: str, message: str) -> None:
        self.show_error(title, message)
        self.errorShown.emit(title, message)

    def _failure(self, title: str):
        """The on_error of a job: a dialog with this title and the job's one-line message."""
        return lambda message: self._error(title, message)

    def confirm_replace(self, path: Path) -> bool:
        """Before writing `path`: True when nothing is there or the user agrees to replace it;
        asked twice as clearly when it is the open photo (also through a link). A link to a
        missing file is something there too (it was replaced unasked)."""
        if not os.path.lexists(path):
            return True
        if self._photo is not None and same_file(path, self._photo.path):
            return self.ask_confirm("Overwrite the original photo?",
                                    f"{path} is the original photo. Replacing it with the edit cannot be undone.",
                                    "Overwrite original")
        return self.ask_confirm("Replace file?", f"{path} already exists. Replace it?", "Replace")

    # ------------------------------------------------------------------------------------------
    # startup
    # ------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            QTimer.singleShot(0, self._run_after_first_paint)

    def _run_after_first_paint(self) -> None:
        jobs, self._after_first_paint = self._after_first_paint, []
        for job in jobs:
            job()

    def start(self, model=None, images=()) -> None:
        """Load the model (argument, else last used, else the embedded default) and open images.

        A shown window does this after its first paint: loading a model starts torch in the
        worker thread, and loading torch's libraries holds the GIL for ~2 s, which would keep
        the window blank until then.
        """
        if self.isVisible() and not self._painted:
            self._after_first_paint.append(lambda: self._start(model, images))
        else:
            self._start(model, images)

    def _start(self, model, images) -> None:
        from resources import default_model_path  # not core.model_file, which imports torch
        path = fallback = None
        if model:
            path = Path(model)
            # a broken model given on the command line left the window without any model, each
            # photo then "opened" with 0 faces
            fallback = default_model_path() if default_model_path().is_file() else None
        elif self.settings.last_model and Path(self.settings.last_model).is_file():
            path = Path(self.settings.last_model)
            # a last model that no longer loads (damaged, from a newer version) left every start without one
            fallback = default_model_path() if default_model_path().is_file() else None
        elif default_model_path().is_file():
            path = default_model_path()
            if self.settings.last_model:
                # said, not silent: the user chose that model and finds another one loaded
                self._start_note = (f"the last model, {self.settings.last_model}, is no longer there; "
                                    "the built-in model is loaded")
                # and off Recent Models, as a gone entry picked there is (it stayed until clicked)
                self.settings.remove_recent_model(self.settings.last_model)
        unsaved = self.settings.unsaved_reason()
        if unsaved:   # once, at start: nothing the user sets up would come back next time
            log.warning("%s", unsaved)
            self._start_note = "; ".join(n for n in (self._start_note, unsaved) if n)
        if path is not None:
            self.load_model(path, fallback)
        else:
            log.info("no model: %s is absent and none was given", default_model_path())
        self.open_photos(images or ())

    def _on_settings_unsaved(self, reason: str) -> None:
        """The first failed save of the settings since start (Settings.sync; logged there): said in
        the status bar as the start-up check says it, after the message of what was saved ("Opened
        …", "Loaded model …"), not in a dialog. Later failures say nothing more."""
        current = self.statusBar().currentMessage()
        if current and current != getattr(self, "_busy_text", None):
            text = f"{current} · {reason}"
        else:   # alone, or in place of a busy text, which the busy bar and the photo's badge still show
            text = reason[:1].upper() + reason[1:]
        self.statusBar().showMessage(text, 15000)

    # ------------------------------------------------------------------------------------------
    # opening photos and models (jobs)
    # ------------------------------------------------------------------------------------------
    def _confirm_discard(self, opening=None, refused=None, then=None) -> bool:
        """True when there are no unsaved edits or the user discards them. A photo `opening` that
        is no image is refused first (its header only): the question came, then the failure;
        `refused()` is called then (before the message). Edits an export still queued or running
        writes are not unsaved (an edit set aside is in none); nor are those of a photo the user
        has already left (another one is being opened: Next pressed twice asked twice). Answered Export…: False, the Export dialog
        shows, and once that export is written `then()` does what was asked (close, open)."""
        if not self.has_unsaved_edits() or self._photo is None:
            return True
        # an edit set aside is in no export (one running writes the photo without it, faces None = None)
        if self._opening is not None or (self._set_aside is None
                                         and any(self._shows(e) for e in self._export_index.values())):
            return True
        if opening is not None:
            from core.image_io import check_header
            try:
                check_header(opening)   # also its size: a photo over the pixel limit is refused first
            except FaderError as e:
                if refused is not None:
                    refused()
                self._error("Cannot open photo", str(e))
                return False
        if self._set_aside is not None:   # Export… would write the photo without them and call them saved
            return bool(self.ask_confirm(
                "Discard edits?", f"The edits to {self._photo.path.name} have not been exported. This model "
                "could not read its faces: the edits come back when a model that reads them is opened again "
                "(File ▸ Recent Models). Discard them?", "Discard"))
        answer = self.ask_confirm("Discard edits?", f"The edits to {self._photo.path.name} have not been exported. "
                                  "Export them first, or discard them?", "Discard", other="Export…")
        if answer != ASK_OTHER:
            return bool(answer)
        before = set(self._export_index)
        self.export_dialog()
        started = set(self._export_index) - before
        if started and then is not None:
            self._after_export = (started.pop(), then)
        return False

    def _confirm_model_switch(self, path: Path) -> bool:
        """Another model keeps the edits (the photo's faces encoded again, the edit and its history
        carried over) where it has the same attributes and works at the same size; ask only where
        they may be lost, and say which. A file that is no model, or a damaged one, is said at
        once, not after the question."""
        if not self.has_unsaved_edits() or self._photo is None or same_file(path, self._model.path):
            return True
        if self._opening is not None:   # the edits are of a photo already being left (Next pressed)
            return True
        from core.model_file import read_model_header   # torch is loaded already: a model is open
        try:
            _meta, attrs, arch, _clf = read_model_header(path)
        except FaderError as e:
            self._error("Cannot load model", str(e))
            return False
        # an edit set aside (this model could not read the faces) is the edit the switch keeps or loses
        ours = _names_of(self._set_aside[0]) if self._set_aside else {a.name for a in self._attrs}
        size = self._model.summary.get("image_size")
        if {a.name for a in attrs} == ours and arch.img_size == size:
            return True
        if {a.name for a in attrs} == ours:
            why = (f"{path.name} works at {arch.img_size} px, the open model at {size} px: the edits carry over if "
                   "both edit the same faces, and are discarded where a face is too small for one of them.")
        else:
            why = (f"{path.name} has other attributes ({', '.join(display_name(a.name) for a in attrs)}) than the "
                   f"open model ({', '.join(display_name(a.name) for a in self._attrs)}): the edits are discarded.")
        return self.ask_confirm("Open another model?",
                                f"The edits to {self._photo.path.name} have not been exported. {why}", "Open model")

    def _remembered(self, folder: str) -> str:
        """A remembered folder setting, "" where it is one of the app's own (an earlier version kept Pasted/)."""
        return "" if not folder or app_folder(folder) else folder

    def _photo_folder(self) -> Path:
        """Where the open photo's exports and recipe are proposed: its own folder, or for a pasted
        image or the sample photo the last folder the user used (else Pictures, else home)."""
        folder = self._photo.path.parent
        if not app_folder(folder):
            return folder
        return user_folder(self.settings.last_dir, self.settings.export_dir)

    def open_photo_dialog(self) -> None:
        start = self._remembered(self.settings.last_dir) or (str(self._photo_folder()) if self._photo else "")
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", start, OPEN_FILTER)
        if path:
            self.open_photo(path)

    def open_photo(self, path) -> None:
        """Open a photo (detection and encoding run as a job; the window shows it when done)."""
        if self._confirm_discard(path, then=lambda: self.open_photo(path)):
            self._open_photo_now(path)

    def open_photos(self, paths, recipe=None, ask: bool = True) -> None:
        """Open the first of several photos (the command line's, a drop's); Next photo and
        Previous photo then walk them, not the folder. `recipe`: a recipe file dropped with
        them, applied to the first photo once it has opened. `ask=False`: the user has answered
        for the edits already."""
        paths = [Path(p) for p in paths]
        # of several, the question is asked where one of them can open (the first whose header
        # reads; one that is no image is said when it is tried, and the next one opens): the first
        # refused kept them all closed. None can: refused, nothing asked
        first = self._first_readable(paths) if ask and len(paths) > 1 else paths[0] if paths else None
        if not paths or (ask and not self._confirm_discard(first, then=lambda: self.open_photos(paths, recipe))):
            if paths and recipe is not None:
                self.statusBar().showMessage(f"{Path(recipe).name} was not applied: the photo did not open", 8000)
            return
        if len(paths) == 1:
            self._open_photo_now(paths[0], recipe)
            return
        self._image_list, self._list_pos = paths, 0
        self.act_next.setText("&Next photo")
        self.act_prev.setText("&Previous photo")
        self._open_from_list(0, recipe)

    def _first_readable(self, paths: list) -> Path:
        """The first of `paths` whose header reads as an image within the pixel limit (the
        first of them where none does); looked at only where there are edits to ask about."""
        if not self.has_unsaved_edits():
            return paths[0]
        from core.image_io import check_header
        for p in paths:
            try:
                check_header(p)
                return p
            except FaderError:
                continue
        return paths[0]

    def _open_from_list(self, i: int, recipe=None) -> None:
        """Open photo `i` of the photos given; where it fails (said), the next one is opened: an
        unreadable first photo left the window empty, the others out of reach of Next photo."""
        paths = self._image_list
        more = i + 1 < len(paths)

        def tried() -> None:
            self._list_pos = i

        def go_on() -> None:   # once its message is answered: each failure one box, not a stack
            if more and self._image_list is paths:
                self._open_from_list(i + 1, recipe)
        self._open_photo_now(paths[i], recipe, on_failed=tried, next_given=more, after_message=go_on)

    def _open_photo_now(self, path, recipe=None, on_failed=None, next_given: bool = False,
                        after_message=None) -> None:
        """Open `path` as a job; where it fails `on_failed()` is called before the message and
        `after_message()` after it. `next_given`: after_message opens the next photo given, which
        the message says (and the recipe, if any, goes on to it)."""
        path, backend, status = Path(path), self.backend, self.jobs.set_busy_text
        on_done, on_error = self._on_photo_loaded, self._failure("Cannot open photo")
        if next_given:
            def on_error(message):
                self._error("Cannot open photo", f"{message} (the next photo is opened instead)")
        elif recipe is not None:
            # tied to this open: a failed one must not leave the recipe waiting for a later photo
            def on_error(message):
                self._error("Cannot open photo", f"{message} ({Path(recipe).name} was not applied)")
        if recipe is not None:
            def on_done(info):
                self._on_photo_loaded(info)
                self.apply_recipe(recipe)
        self._opening = path

        def opened(info):
            if self._opening == path:
                self._opening = None
            on_done(info)

        def failed(message):
            if self._opening == path:
                self._opening = None
            if on_failed is not None:
                on_failed()
            on_error(message)
            if after_message is not None:
                after_message()
            self._reopen_stale()   # none of the photos dropped with a model opened (else: one is opening)
        view = self.canvas.preview_scale_for()   # a new photo is fitted to the view
        self.jobs.submit(lambda: backend.open_photo(path, status, view), on_done=opened,
                         on_error=failed, busy_text=f"Opening {path.name}…")

    def find_more_faces(self) -> None:
        """Search the open photo again for faces the first search missed, every search made
        whatever the others found (EditorBackend.find_more_faces). The faces found before keep
        their edits; the first new face is selected."""
        if not self.act_more_faces.isEnabled():   # _refresh_actions: the one place that says when
            return
        photo = self._photo
        backend, status, check, serial = self.backend, self.jobs.set_busy_text, self.jobs.check_cancelled, self._serial

        def done(result) -> None:
            if result[0] is None:
                if self._photo is photo:
                    photo.thorough = True
                    self._refresh()
                what = "No more faces" if photo.faces else "No face either"
                self.statusBar().showMessage(f"{what} found in {photo.path.name} by the thorough search "
                                             f"({result[1]:.1f} s); View ▸ Mark a missed face takes a box drawn "
                                             "around one", 10000)
                return
            self._on_more_faces(photo, *result)
        self.jobs.submit(lambda: backend.find_more_faces(serial, status, check), on_done=done,
                         on_error=self._failure("Cannot search for more faces"),
                         busy_text=f"Looking for more faces in {photo.path.name}…")

    def set_marking(self, on: bool, box=None) -> None:
        """View ▸ Mark a missed face: the next box drawn on the photo is searched for a face the searches
        missed (EditorBackend.mark_face); Esc or the action again leaves it. `box` (photo pixels): a
        box shown to start from, as the keys place one (a refused box, to be sized and marked again)."""
        on = bool(on) and self.act_mark_face.isEnabled()
        if on and self.act_brush.isChecked():
            self.set_brush(False)
        # the tick first: it calls this again (without the box), which the canvas's box must follow
        if self.act_mark_face.isChecked() != on:
            self.act_mark_face.setChecked(on)
        self.canvas.set_marking(on, box)
        if on:
            # Esc leaves marking from the photo view: with a fader or its box focused it went there
            self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)
        if on:
            # short: the status bar's model and render-time labels stepped aside for the whole of
            # marking to make room for a longer one (View ▸ Keyboard shortcuts says the keys in full)
            self.statusBar().showMessage(MARKING_HINT, 0)
        elif self.statusBar().currentMessage() == MARKING_HINT:
            self.statusBar().clearMessage()

    def _on_face_marked(self, rect) -> None:
        photo, enabled = self._photo, self.act_mark_face.isEnabled()
        self.set_marking(False)
        if not enabled:
            return
        box = (rect.left(), rect.top(), rect.right(), rect.bottom())
        backend, status, check, serial = self.backend, self.jobs.set_busy_text, self.jobs.check_cancelled, self._serial

        def refused(message: str) -> None:
            self._error("Cannot mark a face", message)
            # "No face was found … Draw the box around the whole face": marking goes on, the box
            # refused on show, so that it is drawn again at once (or sized by [ and ] and marked by
            # Enter); it had ended, and the user had to find View ▸ Mark a missed face again. A face
            # found already is to be selected, which marking would not let a click do.
            if message.startswith(MARK_NO_FACE) and self._photo is photo and not self.canvas.marking():
                self.set_marking(True, rect)
        self.jobs.submit(lambda: backend.mark_face(serial, box, status, check),
                         on_done=lambda result: self._on_more_faces(photo, *result),
                         on_error=refused, busy_text="Looking for the face in the marked area…")

    def remove_selected_face(self) -> None:
        """View ▸ Not a face: the selected face is taken off the photo's faces (a detection on a
        print, a pair of hands), the others and their edits kept (EditorBackend.remove_face)."""
        if not self.act_not_face.isEnabled():   # _refresh_actions: the one place that says when
            return
        # no question first, even for an edited face: Edit ▸ Undo puts it back with its edit
        photo, index = self._photo, self.session.selected
        backend, status, serial = self.backend, self.jobs.set_busy_text, self._serial

        def done(result) -> None:
            info = result[0]
            # taken now: an edit made while the job ran is on the faces it leaves (Reset face, Paste edit)
            before, boxes = self.session.snapshot(), [f.box for f in self._photo.faces]
            self._on_photo_loaded(info, face_step=True)
            step = FaceCommand(self, index, before, self.session.snapshot(), boxes, [f.box for f in info.faces])
            self.undo_stack.push(step)
            self._show_modified()
            self.statusBar().showMessage(f"Face {index + 1} taken off the faces of {photo.path.name} "
                                         "(Edit ▸ Undo puts it back)", 10000)
        self.jobs.submit(lambda: backend.remove_face(serial, index, status), on_done=done,
                         on_error=self._failure("Cannot remove the face"), busy_text=f"Removing face {index + 1}…")

    def _run_face_step(self, step: FaceCommand, undo: bool) -> None:
        """Undo (the face put back, with its edit) or redo (taken off again) a Not a face step, as a
        job; the history has moved already. Until it is done, undo and redo wait (the steps beside
        it are on the other faces: a busy job greys them, _refresh_undo); where it fails, the history
        goes back to where the photo is."""
        backend, status, serial = self.backend, self.jobs.set_busy_text, self._serial
        name = self._photo.path.name

        def done(result) -> None:
            self._on_photo_loaded(result[0], face_step=True, put=(step.before, step.boxes_before) if undo
                                  else (step.after, step.boxes_after))
            if undo:
                self.session.select(step.index)   # the face back, its faders on show
            if self.undo_stack.isClean():   # cleanChanged came before the faces changed
                self._clean_modified = self.session.is_modified()
            self._show_modified()
            self.statusBar().showMessage(f"Face {step.index + 1} " + ("put back on the faces of" if undo else
                                                                       "taken off the faces of") + f" {name}", 6000)

        def failed(message: str) -> None:
            self.replaying_history = True
            try:
                (self.undo_stack.redo if undo else self.undo_stack.undo)()
            finally:
                self.replaying_history = False
            self._refresh_actions()   # Undo and Redo with the rest (_refresh_undo)
            self._show_modified()
            self._error("Cannot undo Not a face" if undo else "Cannot redo Not a face", message)
        if undo:
            fn = lambda: backend.put_face_back(serial, step.box, status)  # noqa: E731
        else:
            fn = lambda: backend.remove_face(serial, step.index, status, step.box)  # noqa: E731
        self.jobs.submit(fn, on_done=done, on_error=failed,
                         busy_text=f"{'Putting back' if undo else 'Removing'} face {step.index + 1}…")

    def _refresh_undo(self) -> None:
        """Undo and Redo as the stack has them, but off while any busy job runs: a Not a face step
        being undone or redone (the steps beside it are on the other faces), a photo or model
        loading (a step undone then went to the document being replaced). Called after each of
        the stack's own changes too (build_actions): those enable the actions themselves."""
        self.act_undo.setEnabled(not self._busy and self.undo_stack.canUndo())
        self.act_redo.setEnabled(not self._busy and self.undo_stack.canRedo())

    def _on_more_faces(self, photo, info, seconds: float) -> None:
        """The photo opened again with more faces (Find more faces, Mark a missed face): shown, and the
        status bar says what was found."""
        self._on_photo_loaded(info)
        new = [i for i, j in enumerate(info.carried) if j is None]
        small = len(info.skipped) - len(photo.skipped)
        said = []
        if new:
            if self.session.selected == ALL_FACES:
                said.append(f"{counted(len(new), 'more face')} (All faces: the edit made applies to "
                            f"{'it' if len(new) == 1 else 'them'} too)")
            else:
                said.append(f"{counted(len(new), 'more face')} (face {new[0] + 1} selected; F zooms to it)")
        if small > 0:
            said.append(f"{counted(small, 'more face')} too small for the model (dotted)")
        found = f"Found {' and '.join(said)}" if said else "Found no more face the model can edit"
        self.statusBar().showMessage(f"{found} in {photo.path.name} ({seconds:.1f} s)", 10000)

    def open_sample_photo(self) -> None:
        """The portrait that ships with the app (public domain), for a first try."""
        import resources
        self.open_photo(resources.sample_photo_path())

    def paste_photo(self) -> None:
        """Open the photo on the clipboard: a copied image file (its own file is opened) or
        image data (a screenshot, an image copied in a browser), which is first saved as a PNG
        in the app's data folder (Pasted/), so that it has a file as every photo here does."""
        clip = QGuiApplication.clipboard()
        mime = clip.mimeData()
        photos = [f for f in local_files(mime) if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
        if photos:
            return self.open_photo(photos[0])
        img = clip.image() if mime is not None and mime.hasImage() else None
        if img is None or img.isNull():
            hint = "Copy a photo (or an image file) first."
            if RECIPE_FORMAT in clip.text():
                hint = "It holds a copied edit: Edit ▸ Paste edit (Ctrl+Shift+V) applies that to the selected face."
            self._error("Cannot paste a photo", f"The clipboard holds no image. {hint}")
            return
        from core import image_io
        if img.width() * img.height() > image_io.DEFAULT_MAX_PIXELS:   # refused before anything is written
            self._error("Cannot paste a photo", f"The clipboard's image is {img.width()}×{img.height()}, more than "
                        f"{image_io.DEFAULT_MAX_PIXELS // 1_000_000} megapixels, the most a photo may have here.")
            return
        if not self._confirm_discard(then=self.paste_photo):
            return
        folder = pasted_folder()
        name = time.strftime("Pasted %Y-%m-%d %H-%M-%S")

        def save() -> Path:
            # as a PNG of the image itself (its alpha too), written atomically, never over a file
            from PySide6.QtCore import QBuffer, QByteArray, QIODevice
            from core.atomic_write import write_bytes_atomic
            data = QByteArray()
            buf = QBuffer(data)
            buf.open(QIODevice.OpenModeFlag.WriteOnly)
            if not img.save(buf, "PNG"):
                raise FaderError("the clipboard's image could not be encoded as PNG")
            buf.close()
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path, n = folder / f"{name}.png", 1
                while path.exists():
                    n += 1
                    path = folder / f"{name} ({n}).png"
                write_bytes_atomic(path, bytes(data.data()))
            except OSError as e:
                raise FaderError(f"{folder}: cannot save the pasted image: {e.strerror or e}") from None
            return path

        self.jobs.submit(save, on_done=self._open_photo_now, on_error=self._failure("Cannot paste a photo"),
                         busy_text="Saving the pasted image…", cancellable=False)   # the pasted image is kept

    def open_sibling(self, step: int) -> None:
        """Next/previous photo: of the command-line list when one was given, else of the folder."""
        if self._photo is None:
            return
        if self._photo.path in self._image_list:
            # from the photo last tried: one of the list that fails to open is passed over next
            # time, not tried again and again
            at = self._list_pos if self._list_pos is not None else self._image_list.index(self._photo.path)
            i = at + step
            if 0 <= i < len(self._image_list):
                def tried(i=i):
                    self._list_pos = i
                # one whose header is refused before the "Discard edits?" question is passed over too
                if self._confirm_discard(self._image_list[i], refused=tried, then=lambda: self.open_sibling(step)):
                    tried()
                    self._open_photo_now(self._image_list[i])
            else:
                self.statusBar().showMessage("That was the last photo given", 3000)
            return
        # from the photo being opened, if any: pressed three times quickly, Next opened the
        # shown photo's neighbour three times; else from the neighbour that last failed to open, as
        # for the list: each Next tried a truncated photo again, and never got past it
        shown = self._photo.path
        failed = self._sibling_failed[1] if self._sibling_failed and self._sibling_failed[0] == shown else None
        if self._opening is not None and self._opening.parent == shown.parent:
            here = self._opening
        elif failed is not None and failed.parent == shown.parent:
            here = failed
        else:
            here = shown
        folder = here.parent
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as e:
            self._error("Cannot open photo", f"{folder}: {e.strerror or e}")
            return
        if here in files:
            i = files.index(here) + step
        else:   # deleted or renamed since it opened (Ctrl+PgDown did nothing): its neighbours are still there
            i = bisect.bisect_left(files, here) + min(step, 0)
        if 0 <= i < len(files) and files[i] == shown and here != shown:
            i += step   # back from a photo that failed: the one shown is already there
        if not 0 <= i < len(files):
            self.statusBar().showMessage("No more photos in this folder", 3000)
            return
        target = files[i]

        def passed_over() -> None:   # the failure is said once; the next press goes on from it
            self._sibling_failed = (shown, target)
        if self._confirm_discard(target, refused=passed_over, then=lambda: self.open_sibling(step)):
            self._open_photo_now(target, on_failed=passed_over)

    def fill_recent_menu(self) -> None:
        """File ▸ Open Recent: the photos opened last."""
        self._fill_recent(self.recent_menu, self.settings.recent_files(), self.open_recent,
                          self.settings.clear_recent)

    def fill_recent_models_menu(self) -> None:
        """File ▸ Recent Models: the models loaded last (the built-in one by that name)."""
        from resources import default_model_path
        builtin = str(default_model_path().resolve())
        self._fill_recent(self.recent_models_menu, self.settings.recent_models(), self.open_recent_model,
                          self.settings.clear_recent_models, {builtin: "Default model (built in)"})

    @staticmethod
    def _fill_recent(menu, paths: list, open_one, clear, named=None) -> None:
        named = named or {}
        labels = recent_labels([f for f in paths if f not in named])
        menu.clear()
        for f in paths:
            a = menu.addAction(no_mnemonic(named.get(f) or labels[f]))
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda _=False, f=f: open_one(f))
        if paths:
            menu.addSeparator()
            menu.addAction("Clear list", clear)
        else:
            menu.addAction("(none)").setEnabled(False)

    def open_recent(self, path: str) -> None:
        """File ▸ Open Recent: a photo moved or deleted since is taken off the list, with a message
        (it stayed there, and asked to discard the edits before failing to open)."""
        self._open_listed(path, self.settings.remove_recent, "Cannot open photo", "Open Recent", self.open_photo)

    def open_recent_model(self, path: str) -> None:
        """File ▸ Recent Models: as Open Recent, for models."""
        self._open_listed(path, self.settings.remove_recent_model, "Cannot load model", "Recent Models",
                          self.load_model)

    def _open_listed(self, path: str, drop, title: str, menu: str, open_one) -> None:
        # only a path that is gone is taken off the list: a folder or a pipe there now, or a file
        # that no longer opens, goes to the open, whose own message says what it is
        if _gone(path):
            drop(path)
            self._error(title, f"{path} is no longer there (moved, renamed or deleted); "
                        f"it is taken off File ▸ {menu}.")
            return
        open_one(path)

    def open_model_dialog(self) -> None:
        """File ▸ Open model…: starts in the open model's folder, or where the built-in one is open
        (its folder is inside the app: a packaged install's own files) in the folder of the model
        last opened from elsewhere, else the user's."""
        from resources import default_model_path
        builtin = default_model_path().parent
        folders = [Path(self._model.path).parent] if self._model else []
        folders += [Path(f).parent for f in self.settings.recent_models()]
        start = next((str(f) for f in folders if f.is_dir() and not same_file(f, builtin)),
                     str(user_folder(self.settings.last_dir)))
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, "Fader models (*.fader);;All files (*)")
        if path:
            self.load_model(path)

    def load_model(self, path, fallback=None, ask: bool = True, then=None, replacing: bool = False) -> None:
        """Load a .fader model (a job); an open photo is re-encoded with it. Where it fails, the
        fallback (the default model, at start) is loaded instead. `ask=False`: the user has
        answered for the edits already. `then()`: once it has loaded and is shown. `replacing`:
        photos opened next replace the open one, which is not re-encoded (seconds thrown away on a
        large photo) unless none of them opens (_reopen_stale)."""
        if ask and self._model is not None and not self._confirm_model_switch(Path(path)):
            return
        path, device, backend, status = Path(path), self.device, self.backend, self.jobs.set_busy_text
        on_error = self._failure("Cannot load model")
        if fallback is not None and not same_file(fallback, path):
            def on_error(message: str) -> None:
                self._error("Cannot load model", f"{message}\nThe default model is opened instead.")
                self.load_model(fallback)
        check = self.jobs.check_cancelled   # closing the window stops the load between its steps
        view = self.canvas.preview_scale_for(keep_view=True)   # the open photo, opened again
        keep = self._edit_to_keep()
        # said in the Faders panel while no model is there yet: at start it read "No model loaded"
        # for the seconds the built-in one took, under a status bar saying "Loading model…"
        self._models_loading.append(path.name)
        if self._model is None:
            self._refresh()

        def failed(message: str, report=on_error) -> None:
            self._models_loading.remove(path.name)   # another queued after it is still said
            report(message)
            self._refresh()

        def loaded(info: ModelInfo) -> None:
            self._models_loading.remove(path.name)
            # the photo on show has no document with this model until the next photo replaces it
            self._stale_photo = replacing and self._photo is not None
            self._on_model_loaded(info)
            if then is not None:
                then()
        reopen = not replacing
        self.jobs.submit(lambda: backend.load_model(path, device, status, check, view, keep, reopen),
                         on_done=loaded, on_error=failed, busy_text=f"Loading model {path.name}…")

    def _reopen_stale(self) -> None:
        """The photos dropped with a model did not open: the photo still on show is encoded with
        that model after all (load_model's `replacing`), its edit carried over as a model switch
        carries it."""
        if not self._stale_photo or self._photo is None or self._opening is not None:
            return
        self._stale_photo = False
        backend, status = self.backend, self.jobs.set_busy_text
        view, keep = self.canvas.preview_scale_for(keep_view=True), self._edit_to_keep()

        self.jobs.submit(lambda: backend.reopen_photo(status, view, keep), on_done=self._on_photo_loaded,
                         on_error=self._failure(REOPEN_FAILED),
                         busy_text=f"Finding faces in {self._photo.path.name}…")

    def import_reference_dialog(self) -> None:
        dlg = ImportReferenceDialog(self._remembered(self.settings.last_dir), self)
        if dlg.exec():
            src, dst, attrs = dlg.values()
            from core.errors import FaderError
            from core.model_file import check_model_output
            try:   # as the command line: never over the checkpoint read (its Save as defaults to it for x.fader)
                check_model_output(dst, [src])
            except FaderError as e:
                self._error("Import failed", str(e))
                return
            if not self.confirm_replace(dst):
                return
            backend, status = self.backend, self.jobs.set_busy_text

            def imported(info: ModelInfo) -> None:
                self.statusBar().showMessage(f"Imported model {dst}", 6000)
                self._on_model_loaded(info)
            view, keep = self.canvas.preview_scale_for(keep_view=True), self._edit_to_keep()
            self.jobs.submit(lambda: backend.import_reference(src, dst, attrs, status, view, keep), on_done=imported,
                             on_error=self._failure("Import failed"), busy_text=f"Importing {src.name}…",
                             cancellable=False)   # the converted model is written before a close

    def set_device(self, device: str) -> None:
        if device not in DEVICES or device == self.device:
            return
        was = self.device
        self._show_device(device)
        backend, status, check = self.backend, self.jobs.set_busy_text, self.jobs.check_cancelled
        name = self._model.path.name if self._model else ""
        view, keep = self.canvas.preview_scale_for(keep_view=True), self._edit_to_keep()

        def done(info: Optional[ModelInfo]) -> None:
            if info is not None:
                self._on_model_loaded(info)
        failure = self._failure("Cannot load model")

        def failed(message: str) -> None:
            # the model stays where it ran (its file gone, say): the menu and the setting said the new device
            if self.device == device:
                self._show_device(was)
            failure(message)
        self.jobs.submit(lambda: backend.set_device(device, status, check, view, keep), on_done=done,
                         on_error=failed, busy_text=f"Loading model {name}…" if name else "")

    def _show_device(self, device: str) -> None:
        """The device models run on, as the window, its menu and the settings hold it."""
        self.device = device
        self.settings.device = device
        self.device_actions[device].setChecked(True)

    def _edit_to_keep(self):
        """The open photo's edit (a Snapshot), for a model load to render the reopened photo's
        first frame at where the edit carries over; None when there is none."""
        if self._photo is not None and self._set_aside is not None and not self.session.n_faces:
            return self._set_aside[0]   # the next model may read the faces: its first frame at the edit
        if self._photo is None or not self.session.n_faces or not self.session.is_modified():
            return None
        return self.session.snapshot()

    def check_cuda(self) -> None:
        try:
            import torch
            ok = torch.cuda.is_available()
        except Exception:
            ok = False
        a = self.device_actions["cuda"]
        a.setEnabled(ok or self.device == "cuda")
        a.setText("CU&DA (GPU)" if ok else "CU&DA (no CUDA device found)")

    # ------------------------------------------------------------------------------------------
    # job results
    # ------------------------------------------------------------------------------------------
    def _on_model_loaded(self, info: ModelInfo) -> None:
        same_attrs = [a.to_dict() for a in info.attributes] == [a.to_dict() for a in self._attrs]
        # the history's steps hold values by attribute name: they apply to a model with the same
        # names whatever its slider ranges (it went without a word for a retrained model)
        same_names = {a.name for a in info.attributes} == {a.name for a in self._attrs}
        self._model = info
        self._attrs = list(info.attributes)
        self.settings.last_model = str(info.path)
        self.settings.add_recent_model(info.path)
        if not same_attrs:
            self.panel.set_attributes(self._attrs)
            self._watch_text_keys()
        if not same_names:
            self._fresh_history()   # its values refer to attributes that no longer exist
        # the notice (no CUDA here: on the CPU) goes with it: shown first, "Loaded model" replaced it at once
        notes = [n for n in (info.notice, self._start_note) if n]
        self._start_note = None
        self.statusBar().showMessage(f"Loaded model {info.name}" + "".join(f" · {n}" for n in notes),
                                     10000 if notes else 5000)
        log.info("model %s loaded from %s on %s", info.name, info.path, info.device)
        if self._photo is None:
            self._set_session(EditSession(self._attrs, []))
        self._refresh()
        self.modelChanged.emit(info)
        if info.photo is not None:
            self._on_photo_loaded(info.photo)

    def _fresh_history(self) -> None:
        """An empty undo history at the clean state. QUndoStack.clear() leaves an empty stack as it
        is: one marked unsaved (an edit carried over without its history) stayed so, and the photo
        opened afresh read as edited (the title's *, "Discard edits?" on close)."""
        self.undo_stack.clear()
        self.undo_stack.setClean()

    def _set_session(self, session: EditSession) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.session = session
        self._unsubscribe = session.subscribe(self._on_session_change)
        self.panel.set_session(session)

    def _carry_history(self, was: Snapshot, now: Snapshot, carried, share: bool) -> None:
        """Renumber the undo history for the faces the photo has now (see core.edit_session.carry_over):
        each step keeps what it did to the faces still there, a step that changed only a face taken
        off goes, and the state last exported stays the clean one where its pixels are still what
        the photo would show (no face taken off was edited then, no face found since is edited in it)."""
        stack = self.undo_stack
        cmds = list(map(stack.command, range(stack.count())))
        index, clean = stack.index(), stack.cleanIndex()
        # Not a face steps (FaceCommand) become final, as the search numbers the faces anew. One
        # undone ends the history kept: its redo and the steps after it were made without its face
        cut = next((k for k in range(index, len(cmds)) if isinstance(cmds[k], FaceCommand)), len(cmds))
        cmds, clean = cmds[:cut], clean if clean <= cut else -1
        # for each point of the history, the index each face of `was` had there (None: the same;
        # before a Not a face step there was one face more)
        at, m = [None] * (len(cmds) + 1), None
        for p in range(len(cmds), -1, -1):
            at[p] = m
            if p and isinstance(cmds[p - 1], FaceCommand):
                m = list(cmds[p - 1].kept) if m is None else [cmds[p - 1].kept[j] for j in m]

        def on_was(snap, p):   # a snapshot of point p on `was`'s faces (a face taken off since goes)
            return snap if at[p] is None else carry_over(snap, was, at[p], False)
        steps = [(k, on_was(c.before, k), on_was(c.after, k), c.label) for k, c in enumerate(cmds)
                 if not isinstance(c, FaceCommand)]
        # where the history was last exported, and whether a face taken off since was edited then
        raw = was if not cmds else cmds[0].before if clean <= 0 else cmds[clean - 1].after
        gone_edited = clean >= 0 and at[clean] is not None and any(
            snapshot_edited(list(self._attrs), raw, j) for j in range(len(raw.faces)) if j not in at[clean])
        kept = {j for j in carried if j is not None}   # the old faces still there
        attrs = list(self._attrs)
        kept_index = kept_clean = 0
        self.replaying_history = True
        try:
            stack.clear()
            for k, before, after, label in steps:
                before, after = carry_over(before, now, carried, share), carry_over(after, now, carried, share)
                if before == after:
                    continue
                # the faces it changes, renumbered (under All faces, a face found since too)
                faces = [i for i in range(len(after.faces))
                         if (before.faces[i], before.own[i], before.masks[i]) != (after.faces[i], after.own[i], after.masks[i])]
                stack.push(ValuesCommand(self, before, after, label, None, faces))
                kept_index += k < index
                kept_clean += k < clean
            same_pixels = then = False
            if clean >= 0 and not gone_edited:
                state = on_was(raw, clean)
                then = carry_over(state, now, carried, share)
                same_pixels = not (
                    any(snapshot_edited(attrs, state, j) for j in range(len(state.faces)) if j not in kept)
                    or any(snapshot_edited(attrs, then, i) for i, j in enumerate(carried) if j is None))
            if same_pixels:
                stack.setIndex(kept_clean)
                stack.setClean()
            stack.setIndex(kept_index)
            if not same_pixels:
                stack.resetClean()   # the photo as last exported can no longer be shown
        finally:
            self.replaying_history = False
        self._clean_modified = same_pixels and any(snapshot_edited(attrs, then, i) for i in range(len(carried)))

    def _on_photo_loaded(self, info: PhotoInfo, face_step: bool = False, put=None) -> None:
        """`face_step`: opened again for a Not a face step (done, undone or redone), whose history
        stays as it is (the step is on it); `put`: (snapshot, the boxes of its faces) to show, the
        state the step undid or redid to."""
        old = self.session
        self._stale_photo = False
        names = {a.name for a in self._attrs}
        same_names = {a.name for a in old.attributes} == names
        same_faces = info.reencoded and self._photo is not None and len(info.faces) == old.n_faces and same_names
        # a model that cannot read the faces of the photo on show (faces_error) shows it without
        # them: the edit that would have carried over is set aside, not lost, until a model that
        # reads the same faces opens it again; another photo, other faces or attributes drop it
        aside, restore = self._set_aside, None
        self._set_aside = None
        fits = (aside is not None and info.reencoded and self._photo is not None and not old.n_faces
                and _names_of(aside[0]) == names)
        if info.reencoded and self._photo is not None and info.faces_error:
            # a reading corrected with no fader moved too (it changes no pixel, yet was the user's work)
            if old.n_faces and same_names and (old.is_modified()
                                               or any(old.corrected(i) for i in range(old.n_faces))):
                self._set_aside = (old.snapshot(), old.selected, self.has_unsaved_edits())
            elif fits:
                self._set_aside = aside   # still no model that reads the faces
        elif fits and len(info.faces) == len(aside[0].faces):
            restore = aside
        self._photo = info
        self._serial = info.serial
        if info.path in self._image_list:
            self._list_pos = self._image_list.index(info.path)
        session = EditSession(self._attrs, [f.own_values for f in info.faces],
                              certainty=[f.own_certainty for f in info.faces])
        carried = info.carried if info.reencoded and self._photo is not None else None
        if carried is not None:
            # Find more faces, a marked face, Not a face: the faces found before keep their edits
            # (their alignment is the same), the new ones start at their own values; the history
            # and the unsaved state carry over, renumbered
            was, now = old.snapshot(), session.snapshot()
            new = [i for i, j in enumerate(carried) if j is None]
            # an All-faces edit is every face's: a face found since takes what the others share
            share = old.selected == ALL_FACES and bool(new) and old.n_faces > 0
            if put is not None:   # a Not a face step undone or redone: the state it went to, exactly
                snap, boxes = put
                on = [boxes.index(f.box) if f.box in boxes else None for f in info.faces]
                session.restore(carry_over(snap, now, on, False))
                new = []
            else:
                session.restore(carry_over(was, now, carried, share))
            from core.photo_edit import main_face   # here: importing it loads torch
            session.selected = (ALL_FACES if old.selected == ALL_FACES and old.n_faces else new[0] if new
                                else carried.index(old.selected) if old.selected in carried
                                else main_face(info.faces))
            if not face_step:
                self._carry_history(was, now, carried, share)
        elif same_faces:
            # the same faces with another model or device: the edit and its history carry over
            session.restore(old.snapshot())
            session.selected = old.selected
            if self.undo_stack.count() == 0 and session.is_modified():
                # a model whose attributes differ only in their ranges or labels: the history went
                # (it refers to the old attributes) but the edit stays, unsaved: without this the
                # window read as unmodified and the next photo discarded the edit without asking
                self.undo_stack.resetClean()
        else:
            # a new photo or a new model: start from the faces' own values with a fresh history
            self._fresh_history()
            from core.photo_edit import main_face   # here: importing it loads torch
            session.selected = main_face(info.faces)
            self._clean_modified = False   # the photo as opened
            if restore is not None:   # the edit set aside, without its history (cleared with the faces)
                session.restore(restore[0])
                session.selected = restore[1]
                if restore[2]:
                    self.undo_stack.resetClean()
                else:   # it had been exported
                    self._clean_modified = session.is_modified()
        self._set_session(session)
        self._show_modified()
        self._update_brush_overlay()
        self._shown_gen = self._gen   # renders still in flight were for the previous document
        self._render_scale = self._render_within = None
        # the last photo's timing stayed on show under one that has no face (nothing is rendered for it)
        self.last_render_ms = None
        self.render_label.setText("")
        # zoomed out, even unedited, the photo is shown as the worker downscales it (area-averaged):
        # the canvas's own downscale differs by a level or two, and the preview after an edit and
        # its undo was not the image shown at opening. The worker rendered it so as it opened, at
        # the scale it is shown at, so that its first frame is already that render: requested
        # only now, Qt's downscale showed until it came (0.2-0.3 s at 48 MP), then jumped.
        # Opened again with an edit carried over, it was rendered at that edit (_edit_to_keep):
        # at the faces' own values, the edit vanished from view until the next render
        edited = (same_faces or carried is not None or restore is not None) and session.is_modified()
        # the Snapshot _edit_to_keep gave the load, where the first frame was rendered at an edit
        kept = (restore[0] if restore is not None else old.snapshot()) if edited else None
        first = info.first
        shown_at = self.canvas.preview_scale_for(keep_view=info.reencoded)(info.width, info.height)
        rendered = (bool(info.faces) and first is not None and first.scale == shown_at
                    and info.first_values == kept)
        # where it was not (the view is at 100 %, or changed size while it opened), the edit shown
        # so far stays on show until its render with the new model comes
        self.canvas.set_photo(info.original, keep_view=info.reencoded, keep_shown=edited and not rendered,
                              name=info.path.name)
        # the alignments let the brush ring show a stroke's true size (core.edit_mask.MIN_RADIUS)
        self.canvas.set_faces([(f.index, f.box, f.matrix, f.crop_size) for f in info.faces], info.skipped,
                              session.selected)
        if rendered:
            self.canvas.apply_patch(first.patch, first.x, first.y, first.base)
            self._render_scale, self._render_within = first.scale, None
            self.last_render_ms = first.ms
            self.render_label.setText(f"Render {first.ms:.0f} ms")
        if info.faces and not rendered and (self.canvas.preview_scale() < 1.0 or edited):
            # the view changed size while it opened (or it is edited): rendered for it now
            self._request_render()
        if not info.reencoded:
            self._sibling_failed = None
            self.settings.add_recent(info.path)
            if not app_folder(info.path.parent):
                self.settings.last_dir = str(info.path.parent)
            n = len(info.faces)
            # where it is in the photos given (the "Photo 1 of 3" said before it opened was replaced at once)
            of = (f" · photo {self._image_list.index(info.path) + 1} of {len(self._image_list)}, Ctrl+PgDown: next"
                  if info.path in self._image_list else "")
            # without a model no face is looked for: "0 faces" read as none found in the photo
            found = f"{n} face{'s' if n != 1 else ''}" if info.has_model else "no model is loaded to find its faces"
            self.statusBar().showMessage(f"Opened {info.path.name}: {found} ({info.seconds:.1f} s){of}", 6000)
        self._refresh()
        self.photoOpened.emit(info)
        if info.faces_error:   # on show with no face to edit (EditorBackend.reopen_photo), whichever reopened it
            self._error(REOPEN_FAILED, info.faces_error)

    def _on_rendered(self, r: Optional[Rendered]) -> None:
        if r is None:
            return   # the worker dropped a request for a photo that has been replaced
        self.renderFinished.emit(r.generation, r.ms)
        if r.serial != self._serial or r.generation < self._shown_gen:
            return  # a late result for an older photo or older values
        self._shown_gen = r.generation
        self.canvas.apply_patch(r.patch, r.x, r.y, r.base)
        self.last_render_ms = r.ms
        self.render_label.setText(f"Render {r.ms:.0f} ms")
        self.previewUpdated.emit(r.generation)

    def _on_render_failed(self, message: str) -> None:
        self.canvas.release_held()   # the last model's edit must not stand in for this one's
        # a failing preview would fail again on every slider move: one dialog per photo
        if getattr(self, "_render_error_serial", None) == self._serial:
            log_told(log, logging.WARNING, "preview failed again: %s", message)
            return
        self._render_error_serial = self._serial
        self._error("Preview failed", message)

    def _note_while_busy(self, note: str, ms: int = 10000) -> None:
        """A status-bar note during a job: the job's next busy text ("Finding faces in …") replaced
        it within moments, so it is said beside those until `ms` have passed."""
        self._busy_note = (note, time.monotonic() + ms / 1000)
        if self._busy:
            self._on_busy(True, self._busy_said)
        else:
            self.statusBar().showMessage(note, ms)

    def _on_busy(self, busy: bool, text: str) -> None:
        self._busy = busy
        self.busy_bar.setVisible(busy)
        self.canvas.set_busy(text if busy else "")
        note, until = self._busy_note or ("", 0.0)
        left_ms = int((until - time.monotonic()) * 1000)
        if busy:
            self._busy_said = text
            shown = f"{text} · {note}" if note and left_ms > 0 else text
            self.statusBar().showMessage(shown)
            self._busy_text = shown
        elif self.statusBar().currentMessage() == getattr(self, "_busy_text", None):
            if note and left_ms > 0:
                self.statusBar().showMessage(note, left_ms)   # its time is not up yet
            else:
                self.statusBar().clearMessage()   # but keep a result message ("Opened …") shown since
        # edits made while a photo or model is loading would go to the document being replaced
        if busy and self.panel.isEnabled():
            focused = QApplication.focusWidget()
            # the fader the keys were on: disabling the panel left the focus on nothing, and the
            # arrow keys did nothing after Find more faces or a device switch
            self._focus_before_busy = focused if focused is not None and self.panel.isAncestorOf(focused) else None
        self.panel.setEnabled(not busy)
        if not busy:
            was, self._focus_before_busy = self._focus_before_busy, None
            if (was is not None and QApplication.focusWidget() is None and self.isActiveWindow()
                    and shiboken_valid(was) and was.isVisible() and was.isEnabled()):
                was.setFocus(Qt.FocusReason.OtherFocusReason)
        self._refresh_actions()

    def _shows(self, exported) -> bool:
        """Whether an export's (photo serial, undo index, snapshot) is what the window shows now.
        The index alone is not enough: an undo and another edit while the export was written
        come back to the same index with a different edit."""
        if exported is None:
            return False
        serial, index, snap = exported
        # Snapshots compare by value; their brush masks (EditMask) by identity, each stroke making a new one
        return (serial == self._serial and index == self.undo_stack.index()
                and snap == (self.session.snapshot() if self.session.n_faces else None))

    def _on_exported(self, path: str, export_id=None, notes=()) -> None:
        # the exported values are "saved" unless the user kept editing while it was written
        self._export_paths.pop(export_id, None)
        self._failed_export = None
        then = self._after_export[1] if self._after_export and self._after_export[0] == export_id else None
        if then is not None:
            self._after_export = None
        if self._shows(self._export_index.pop(export_id, None)):
            self.undo_stack.setClean()
            if then is not None:   # "Discard edits?" answered Export…: now what was asked (close, open)
                QTimer.singleShot(0, then)
        # the next export's folder: where this one was written (a failed one's folder is not kept)
        if not app_folder(Path(path).parent):
            self.settings.export_dir = str(Path(path).parent)
        # what the file could not keep (transparency in a JPEG, 16 bits), as edit and batch say it
        kept = f" — not all of the photo kept: {'; '.join(notes)}" if notes else ""
        self.statusBar().showMessage(f"Exported {path}{kept}", 15000 if notes else 8000)
        self.exportFinished.emit(path)

    # ------------------------------------------------------------------------------------------
    # edits: the session changes, the window records and renders them
    # ------------------------------------------------------------------------------------------
    def _on_session_change(self, change) -> None:
        if change.kind == "select":
            self.canvas.set_selected_face(self.session.selected)
            self._refresh_actions()   # what Erase edit everywhere would erase is the selected face's
            return
        if change.kind != "restore":
            # a new edit: one undo step (pushing it runs redo(), a restore of what is already there)
            self.undo_stack.push(ValuesCommand(self, change.before, change.after, self._undo_text(change),
                                               self._merge_key(change), change.faces))
        if change.name is not None:
            self._last_attr = change.name
        if self.canvas.brush_enabled():
            self._update_brush_overlay()
        self._show_modified()
        self._request_render()
        self._refresh_actions()

    def _undo_text(self, change) -> str:
        if change.label:
            return change.label
        if change.kind == "reset":
            return f"Reset {display_name(change.name)}" if change.name else "Reset face"
        return f"{display_name(change.name)} {self._describe(change.name, self.session.slider(change.name))}"

    def _merge_key(self, change):
        if change.kind == "mask" and change.merge is not None:
            return ("mask", change.merge)   # one brush stroke: one undo step
        if change.kind != "set" or change.merge is None:
            return None
        return (self.session.selected, change.name, change.merge)

    def _describe(self, name: str, value) -> str:
        attr = self.session.attribute(name)
        if isinstance(value, Towards):
            return f"→ {attr.values[value.target]} {value.strength:.2f}"
        return f"{value:.2f}"

    # -- copy and paste an edit: the changed faders as a recipe on the clipboard ------------------
    def copy_edit(self) -> None:
        """Put the selected face's moved faders on the clipboard (as recipe JSON, which batch
        --recipe also reads), to paste onto another face or photo."""
        if self._photo is None or not self._photo.faces:
            return
        face = self._selected_face()
        values = self.session.changed_values(face)
        if not values:
            self.statusBar().showMessage("Nothing to copy: no fader of this face is moved"
                                         if self.session.selected != ALL_FACES else "Nothing to copy: no face is edited", 5000)
            return
        name = self._model.name if self._model is not None else ""
        QGuiApplication.clipboard().setText(json.dumps(make_recipe(values, name), indent=2) + "\n")
        note = self._corrections_left_out(face)
        self.statusBar().showMessage(f"Copied the edit of face {face + 1}: {self._summary(values)}{note}",
                                     12000 if note else 6000)

    def paste_edit(self) -> None:
        """Set the selected face's (or every face's) faders to the edit on the clipboard, as one
        undo step; faders the edit did not move stay where they are."""
        if self._photo is None or not self._photo.faces:
            return
        text = QGuiApplication.clipboard().text()
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):   # not JSON, or nested too deeply to parse
            data = None
        if not isinstance(data, dict) or data.get("format") != RECIPE_FORMAT:
            mime = QGuiApplication.clipboard().mimeData()
            hint = ("It holds an image: File ▸ Open from clipboard (Ctrl+V) opens that." if mime is not None
                    and (mime.hasImage() or mime.hasUrls()) else
                    "Copy one first (Edit ▸ Copy edit), or copy the text of a recipe file.")
            self._error("Cannot paste edit", f"The clipboard holds no Fader edit. {hint}")
            return
        try:
            values = recipe_values(data, self._attrs, name="the copied edit")
        except FaderError as e:
            self._error("Cannot paste edit", str(e))
            return
        if self.session.set_values(values, label="Paste edit"):
            self.statusBar().showMessage(f"Pasted the edit: {self._summary(values)}", 6000)
        else:
            self.statusBar().showMessage("The face already has this edit", 5000)

    def apply_recipe(self, path) -> None:
        """A recipe file (File ▸ Save edit as recipe…) dropped on the window: the selected face's
        (or every face's) faders set to it in one undo step, as Paste edit does; it was refused as
        "not a recognised image format"."""
        path = Path(path)
        if self._photo is None or not self._photo.faces:
            self._error("Cannot apply recipe", f"{path.name}: open a photo with a face first.")
            return
        try:
            values = load_recipe(path, self._attrs)
        except FaderError as e:
            self._error("Cannot apply recipe", str(e))
            return
        if self.session.set_values(values, label=f"Apply {path.name}"):
            self.statusBar().showMessage(f"Applied {path.name}: {self._summary(values)}", 6000)
        else:
            self.statusBar().showMessage("The face already has this edit", 5000)

    def _summary(self, values: dict) -> str:
        return ", ".join(f"{display_name(n)} {v:.2f}" if isinstance(v, float) else display_name(n)
                         for n, v in values.items())

    def reset_face(self) -> None:
        """Every fader of the selected face (or of all faces when All faces is selected) reset."""
        s = self.session
        s.reset(faces=s.targets(), label="Reset face" if s.selected != ALL_FACES else "Reset all faces")

    def reset_all(self) -> None:
        self.session.reset(label="Reset all faces")

    def _request_render(self) -> None:
        if self._photo is None or not self._photo.faces:
            return
        self._gen += 1
        draft = self.panel.dragging()
        self._draft_requested = draft
        # zoomed out, the preview is rendered at the resolution it is shown at: a 48 MP photo's
        # face region at full resolution cost every fader move a second, for pixels never seen
        self._render_scale = self.canvas.preview_scale()
        # zoomed in on a large photo, only the part in view: the rest follows when it is scrolled to
        self._render_within = self._part_in_view()
        request = RenderRequest(self._serial, self._gen, self.session.snapshot(), draft, self._render_scale,
                                self._render_within)
        backend = self.backend
        self.jobs.submit(lambda: backend.render(request), on_done=self._on_rendered,
                         on_error=self._on_render_failed, coalesce="render")

    def _on_drag_finished(self) -> None:
        # the handle was let go: the preview drawn while dragging gets the full decode (the export's)
        if self._draft_requested:
            self._request_render()

    def preview_current(self) -> bool:
        """True when the preview shows the latest values (no render outstanding), at the scale the
        view asks for now, and where the last render was limited to the part in view, the view has
        not moved beyond it."""
        scale_ok = self._render_scale is None or self.canvas.preview_scale() == self._render_scale
        return self._shown_gen >= self._gen and scale_ok and self._view_rendered()

    def _edit_rect_in_view(self, margin: float = 0.0) -> Optional[tuple]:
        """(x, y, w, h): the part of the photo's edit region in view (with ``margin`` screen
        pixels around the view), None when none of it is."""
        er = self._photo.edit_rect if self._photo is not None else None
        if not er:
            return None
        vx, vy, vw, vh = self.canvas.visible_rect(margin)
        x0, y0 = max(er[0], vx), max(er[1], vy)
        x1, y1 = min(er[0] + er[2], vx + vw), min(er[1] + er[3], vy + vh)
        return (x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None

    def _part_in_view(self) -> Optional[tuple]:
        """The rectangle a render for the current view needs: the view widened by
        PARTIAL_MARGIN_PX when the edit region's part in it is under PARTIAL_FRACTION of the
        region (a photo zoomed in on), else None (the whole region)."""
        er = self._photo.edit_rect if self._photo is not None else None
        if not er or er[2] * er[3] == 0:
            return None
        part = self._edit_rect_in_view(PARTIAL_MARGIN_PX)
        if part is not None and part[2] * part[3] >= PARTIAL_FRACTION * er[2] * er[3]:
            return None
        return self.canvas.visible_rect(PARTIAL_MARGIN_PX)

    def _view_rendered(self) -> bool:
        """Whether the latest render covers the part of the edit region now in view."""
        r = self._render_within
        part = self._edit_rect_in_view() if r is not None else None
        if part is None:
            return True
        x, y, w, h = part
        return r[0] <= x and r[1] <= y and x + w <= r[0] + r[2] and y + h <= r[1] + r[3]

    def is_modified(self) -> bool:
        return self.session.is_modified()

    def _selected_face(self) -> int:
        """The face whose edit Copy edit, Save recipe, Export sweep and Batch export take: the
        selected one; under All faces the first that is edited (Face 1 was taken even when only
        Face 2 was, and Copy edit said there was nothing to copy)."""
        s = self.session
        if s.selected != ALL_FACES:
            return s.selected
        return next((i for i in range(s.n_faces) if s.changed_values(i)), 0)

    # ------------------------------------------------------------------------------------------
    # export / recipe / batch (jobs)
    # ------------------------------------------------------------------------------------------
    def _export_folder(self) -> Path:
        folder = self._remembered(self.settings.export_dir)
        return Path(folder) if folder and os.path.isdir(folder) else self._photo_folder()

    def export_dialog(self) -> None:
        if self._photo is None:
            return
        src = self._photo.path
        # the edit set aside is not in the photo on show: the export would hold the photo without
        # it while "Exported NAME" said nothing of it (the close question leaves Export… out for that)
        if self._set_aside is not None and not self.ask_confirm(
                "Export without the edits?", f"This model could not read the faces of {src.name}: an export "
                "now holds the photo without your edits. They come back when a model that reads the faces "
                "is opened again (File ▸ Recent Models).", "Export without edits"):
            return
        suffix = "." + self.settings.export_format
        # an export of this photo that failed (a read-only folder, a full disk) is proposed again
        # as it was typed: the dialog had closed, and the path had to be typed anew
        failed = self._failed_export[1] if self._failed_export and self._failed_export[0] == src else None
        dlg = ExportDialog(failed or self._export_folder() / f"{src.stem}_edited{suffix}", self.settings.export_quality,
                           self.settings.keep_exif, self, losses=self.export_losses)
        while dlg.exec():
            path = dlg.result_path()
            self.settings.export_quality = dlg.quality()
            self.settings.keep_exif = dlg.keep_exif()
            self.settings.export_format = path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
            if self.export_to(path, dlg.quality(), dlg.keep_exif()):
                return
            # "Replace file?" answered Cancel: back to the dialog, the path as typed, to change it

    def export_losses(self, suffix: str, keep_exif: bool = True) -> list:
        """What an export of the open photo to a `suffix` file (".jpg") could not keep of it, one
        short phrase each: the notes the export returns once written (core.image_io's, the same
        rules, on the source the worker read when the photo opened, as the export uses), known
        before it. Nothing where the file itself is copied (nothing edited, same format, and the
        file on disk still the one opened: EditorBackend.export)."""
        from core.image_io import SAVE_FORMATS, export_notes, image_format
        from .workers import file_stamp
        fmt = SAVE_FORMATS.get(suffix.lower())
        source = getattr(self._photo, "source", None)
        if source is None or fmt is None:
            return []   # no photo, or its file could not be read back: the export says what is wrong
        path = self._photo.path
        stamp = (str(path), file_stamp(path))
        if self._loss_source is None or self._loss_source[0] != stamp:
            try:
                own = image_format(path)   # the header only
            except FaderError:
                own = None   # deleted or unreadable since it opened: never copied
            self._loss_source = (stamp, own)
        own = self._loss_source[1]
        # a file replaced since it opened (another picture of the same format) is never copied:
        # the photo opened is rendered, and loses what a rendering in that format does
        opened = stamp[1] is not None and stamp[1] == self._photo.stamp
        if keep_exif and opened and own == fmt and not self.session.is_modified():
            return []   # an unedited photo in its own format is copied byte for byte (export_photo)
        return export_notes(fmt, source if keep_exif else source.without_metadata())

    def export_to(self, path, quality: int = 95, keep_exif: bool = True) -> bool:
        """Export the edited photo (a job). Asks before replacing a file, twice as clearly
        before replacing the original photo. Returns False if the user declined."""
        if self._photo is None:
            return False
        path = Path(path)
        # replaced only where the user said so, or over this window's own export still to come:
        # a file another program puts there meanwhile is never replaced
        replace = os.path.lexists(path) or str(path) in self._export_paths.values()
        if not self.confirm_replace(path):
            return False
        backend, serial, values = self.backend, self._serial, self.session.snapshot() if self.session.n_faces else None
        export_id = next(self._export_ids)
        self._export_index[export_id] = (serial, self.undo_stack.index(), values)
        self._export_paths[export_id] = str(path)

        photo = self._photo.path

        def failed(message: str) -> None:
            # no longer running: closing the window took the failed export for one still writing
            # the edits, and discarded them without asking
            self._export_index.pop(export_id, None)
            self._export_paths.pop(export_id, None)
            self._failed_export = (photo, path)
            if self._after_export and self._after_export[0] == export_id:
                self._after_export = None   # the edits are still not exported: nothing more is done
            # "Exporting NAME…" stayed on show, as if it were still under way
            self.statusBar().showMessage(f"Export of {path.name} failed", 10000)
            self._error("Export failed", message)
        # not cancellable: closing the window waits for it (the edit it writes is not asked about)
        self.jobs.submit(lambda: backend.export(path, serial, values, int(quality), bool(keep_exif), replace),
                         on_done=lambda r: self._on_exported(r[0], export_id, r[1]), on_error=failed,
                         cancellable=False)
        # a 24 MP export takes most of a second: say that it is under way ("Exported …" replaces it)
        self.statusBar().showMessage(f"Exporting {path.name}…")
        return True

    def copy_image(self) -> None:
        """Put the edited photo on the clipboard, at full resolution, as an export renders it
        (a job), to paste into another program."""
        if self._photo is None:
            return
        backend, serial, values = self.backend, self._serial, self.session.snapshot() if self.session.n_faces else None

        def done(img) -> None:
            QGuiApplication.clipboard().setImage(img)
            self.statusBar().showMessage(f"Copied the {'edited ' if values and self.session.is_modified() else ''}"
                                         f"photo ({img.width()}×{img.height()})", 6000)
            self.imageCopied.emit()

        self.jobs.submit(lambda: backend.rendered_image(serial, values), on_done=done,
                         on_error=self._failure("Cannot copy the photo"))

    def export_sweep_dialog(self) -> None:
        if self._photo is None or not self._photo.faces:
            return
        src = self._photo.path
        dlg = SweepDialog(self._attrs, self._export_folder() / f"{src.stem}_sweep.png", self._last_attr, self)
        if dlg.exec():
            self.export_sweep(dlg.spec())

    def export_sweep(self, spec: dict) -> bool:
        """Write a sweep of the selected face (see SweepDialog.spec); False if the user declined."""
        path = Path(spec["path"])
        replace = os.path.lexists(path)   # asked below; a file appearing meanwhile is never replaced
        if not self.confirm_replace(path):
            return False
        backend, serial, face, check = self.backend, self._serial, self._selected_face(), self.jobs.check_cancelled
        spec = {**spec, "path": path, "replace": replace}
        values = self.session.snapshot()   # the faces' own values as the window holds them (corrected ones too)

        def done(written: str) -> None:
            self.statusBar().showMessage(f"Exported sweep {written}", 8000)
            self.sweepExported.emit(written)
        # a GIF of 64 steps takes seconds with the shipped model: shown as busy (status bar, the
        # photo's badge, Export sweep greyed out), as a model load is; nothing said so before
        # closing the window cancels it: written under a temporary name, it then leaves nothing
        job = self.jobs.submit(lambda: backend.export_sweep(serial, face, spec, values, check), on_done=done,
                               on_error=self._failure("Sweep export failed"), busy_text=f"Exporting sweep {path.name}…")
        self._sweeps = [(j, p) for j, p in self._sweeps if j in self.jobs.pending()] + [(job, path)]
        return True

    def batch_export_dialog(self) -> None:
        """File ▸ Batch export…: the faders the user changed on this face, applied to a folder."""
        from fader_desktop.batch_dialog import BatchDialog
        if self._model is None:
            self._error("Batch export", "Load a model first (File ▸ Open model…).")
            return
        values = self.session.changed_values(self._selected_face()) if self.session.n_faces else {}
        dialog = BatchDialog(self, self._model.path, self.device, values, settings=self.settings)
        try:
            dialog.exec()   # it closes only once no batch runs
        finally:
            # each export used to leave its dialog and idle worker thread behind until the window closed
            dialog.jobs.shutdown()
            dialog.deleteLater()

    def save_recipe_dialog(self) -> None:
        if self._photo is None or not self._photo.faces:
            self._error("Cannot save recipe", "Open a photo with a face first.")
            return
        if not self._recipe_has_values():
            return
        default = self._photo_folder() / f"{self._photo.path.stem}.recipe.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save edit as recipe", str(default), "Recipes (*.json)")
        if path:
            self.save_recipe(Path(path))

    def _recipe_has_values(self) -> bool:
        """Whether the face a recipe is saved from has a fader moved; else it is said why none is
        saved. A recipe of no values was written and "Saved"; a batch with it copied every photo."""
        face = self._selected_face()
        if self.session.n_faces and self.session.changed_values(face):
            return True
        which = f"no fader of face {face + 1} is moved" if self.session.selected != ALL_FACES else "no face is edited"
        self._error("Cannot save recipe", f"Nothing to save: {which}. A recipe holds the faders you moved; "
                    "move one first.")
        return False

    def save_recipe(self, path: Path) -> None:
        """Write the selected face's changed values as a recipe (a job); refused without any."""
        if not self._recipe_has_values():
            return
        backend, serial, values, face = self.backend, self._serial, self.session.snapshot(), self._selected_face()
        note = self._corrections_left_out(face)
        self.jobs.submit(lambda: backend.save_recipe(path, serial, values, face),
                         on_done=lambda p: self.statusBar().showMessage(f"Saved recipe {p}{note}", 12000 if note else 6000),
                         on_error=self._failure("Cannot save recipe"), cancellable=False)   # written before a close

    def _corrections_left_out(self, face: int) -> str:
        """A recipe holds the moved faders, not the user's corrections of what the face shows: each
        photo it is applied to is read anew. Said where this face has such corrections."""
        names = self.session.corrected(face)
        if not names:
            return ""
        return (f" (your correction of {', '.join(names)} is not in it: each photo it is applied to "
                "is read anew)")

    # ------------------------------------------------------------------------------------------
    # dialogs
    # ------------------------------------------------------------------------------------------
    def show_model_card(self) -> None:
        if self._model is None:
            self._error("No model", "No model is loaded. Use File ▸ Open model… to load a .fader file.")
            return
        ModelCardDialog(self._model.summary, self._model.path, self).exec()

    def show_shortcuts(self) -> None:
        from .canvas import CANVAS_KEYS
        from .fader_panel import FADER_KEYS
        from .dialogs import ShortcutsDialog, shortcuts_html
        menus = [(m.title(), m.actions()) for m in (a.menu() for a in self.menuBar().actions()) if m is not None]
        dlg = getattr(self, "_shortcuts_dialog", None)
        if dlg is None:
            dlg = self._shortcuts_dialog = ShortcutsDialog(self, "")
        dlg.set_html(shortcuts_html(menus, CANVAS_KEYS, FADER_KEYS))   # anew: the Training menu may have grown
        dlg.show()
        dlg.raise_()

    def show_about(self) -> None:
        QMessageBox.about(self, "About Fader Desktop", about_html(self._model.summary if self._model else None))

    def show_training_dialog(self) -> None:
        from .training_dialog import TrainingDialog
        dlg = getattr(self, "_training_dialog", None)
        if dlg is None:
            dlg = self._training_dialog = TrainingDialog(self)
            dlg.openResult.connect(self.load_model)
        dlg.set_current_model(self._model.path if self._model else None)
        dlg.show()
        dlg.raise_()
        # already open: the keyboard stayed in the editor, under the dialog brought to the front
        dlg.activateWindow()

    # ------------------------------------------------------------------------------------------
    # view state
    # ------------------------------------------------------------------------------------------
    def set_show_boxes(self, on: bool) -> None:
        self.canvas.set_show_boxes(on)
        self.settings.show_boxes = on

    # ------------------------------------------------------------------------------------------
    # the edit brush: strokes on the canvas become the faces' edit masks (one undo step each)
    # ------------------------------------------------------------------------------------------
    def set_brush(self, on: bool) -> None:
        if on and self.act_mark_face.isChecked():
            self.set_marking(False)
        self.canvas.set_brush(on)
        if on:
            self._update_brush_overlay()
        if self.act_brush.isChecked() != on:
            self.act_brush.setChecked(on)
        if on:
            self._show_brush_help()
        else:
            self.statusBar().clearMessage()

    def _show_brush_help(self, *_args) -> None:
        self.statusBar().showMessage(
            f"Edit brush ({self.canvas.brush_size():.0f} px): drag over a face to erase its edit there, "
            "Shift+drag to bring it back, [ and ] change the size, B ends", 0)

    def _on_brush_stroke(self, points, radius: float, erase: bool, first: bool) -> None:
        if self._photo is None or self._busy:
            return
        if first:
            self._stroke_id += 1
        new = {}
        for f in self._photo.faces:
            if f.matrix is None or not f.crop_size:
                continue
            old = self.session.masks[f.index]
            base = old.in_frame(f.matrix, f.crop_size) if old is not None else EditMask.full(f.crop_size, f.matrix)
            mask = base.painted(to_crop(f.matrix, points), radius * crop_scale(f.matrix), erase)
            if mask is not base:   # painted() returns the mask itself where the stroke misses the crop
                new[f.index] = None if mask.is_full() else mask
        if new:
            self.session.set_masks(new, merge=self._stroke_id,
                                   label="Erase edit (brush)" if erase else "Bring back edit (brush)")

    def _update_brush_overlay(self) -> None:
        photo = self._photo
        if photo is None or not photo.faces or len(self.session.masks) != len(photo.faces):
            self.canvas.set_brush_overlay(None)
            return
        self.canvas.set_brush_overlay(*erased_overlay(photo.faces, self.session.masks, photo.width, photo.height))

    def clear_brush(self) -> None:
        """The selected face's (or every face's) edit everywhere again."""
        s = self.session
        s.set_masks({i: None for i in s.targets()}, label="Clear edit brush")

    def erase_edit_everywhere(self) -> None:
        """The selected face's (or every face's) edit erased everywhere, and the brush on: then
        Shift+drag paints the edit back only where it is wanted (the eyes for glasses, say)."""
        photo = self._photo
        if photo is None or not photo.faces:
            return
        s = self.session
        if not self._targets_edited():
            self.statusBar().showMessage("Nothing to erase: no fader of this face is moved" if s.selected != ALL_FACES
                                         else "Nothing to erase: no face is edited", 5000)
            return
        chosen = set(s.targets())
        masks = {f.index: EditMask(np.zeros((f.crop_size, f.crop_size), np.float32), f.matrix)
                 for f in photo.faces if f.index in chosen and f.matrix is not None and f.crop_size}
        s.set_masks(masks, label="Erase edit everywhere")
        self.set_brush(True)
        self.statusBar().showMessage("The edit is erased everywhere: Shift+drag paints it back where you want it, "
                                     "[ and ] change the size, B ends", 0)

    def _targets_edited(self) -> bool:
        """Whether a face the faders apply to now (the selected one, or all) has a fader moved."""
        s = self.session
        return any(s.is_modified(i) for i in s.targets())

    def select_next_face(self, step: int = 1) -> None:
        """Select the next (step 1) or previous (-1) face, round the photo's faces; from All
        faces, the first or the last. Where the view is zoomed in, it follows to that face."""
        s = self.session
        if s.n_faces < 2:
            return
        if s.selected == ALL_FACES:
            face = 0 if step > 0 else s.n_faces - 1
        else:
            face = (s.selected + step) % s.n_faces
        s.select(face)
        if not self.canvas.is_fit():
            self.zoom_to_face()

    def zoom_to_face(self) -> None:
        """Fill the view with the selected face (every face when All faces is selected): the
        part of the photo its edit can change, with a margin."""
        photo = self._photo
        if photo is None or not photo.faces:
            self.statusBar().showMessage("No face to zoom to", 4000)
            return
        chosen = photo.faces if self.session.selected == ALL_FACES else \
            [f for f in photo.faces if f.index == self.session.selected] or photo.faces
        pts = []
        for f in chosen:
            if f.matrix is not None and f.crop_size:
                pts.append(crop_corners(f.matrix, f.crop_size))
            elif f.box is not None:
                x0, y0, x1, y1 = f.box
                pts.append(np.array([[x0, y0], [x1, y1]], np.float64))
        if not pts:
            return self.canvas.fit_to_window()
        p = np.concatenate(pts)
        (x0, y0), (x1, y1) = p.min(0), p.max(0)
        m = 0.08 * max(x1 - x0, y1 - y0)
        self.canvas.zoom_to_rect(QRectF(x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m))

    def _rerender_for_view(self) -> None:
        """The view has settled: render again if it needs another scale, or another part of a
        photo whose last render was limited to what was in view; a photo not rendered yet once
        it is shown zoomed out (as the worker downscales it: _on_photo_loaded)."""
        if self._render_scale is None:
            if self._photo is not None and self._photo.faces and self.canvas.preview_scale() < 1.0:
                self._request_render()
            return
        if self.canvas.preview_scale() != self._render_scale or not self._view_rendered():
            self._request_render()

    def _on_zoom(self, scale: float) -> None:
        self._rescale.start()
        self.zoom_label.setText(f"{'Fit · ' if self.canvas.is_fit() else ''}{scale * 100:.0f} %")

    def _refresh(self) -> None:
        """Title, placeholder, notices and action states from the current model/photo."""
        photo, model = self._photo, self._model
        self.setWindowTitle(f"{photo.path.name}[*] — {APP_TITLE}" if photo else APP_TITLE)
        loading = self._models_loading[-1] if self._models_loading else None
        no_model = f"Loading model {loading}…" if loading else "No model loaded — File ▸ Open model… (Ctrl+M)"
        self.canvas.set_placeholder("Open a photo: File ▸ Open… (Ctrl+O), drop one here, or paste one (Ctrl+V)\n"
                                    "(no photo at hand? Help ▸ Open sample photo)"
                                    + ("" if model else "\n\n" + no_model))
        if model is None and loading:
            self.panel.set_notice(f"<b>Loading model {html.escape(loading)}…</b><br>The faders come when it has loaded.")
        elif model is None:
            self.panel.set_notice("<b>No model loaded.</b><br>Open a <i>.fader</i> model to edit faces: "
                                  "File ▸ Open model… (Ctrl+M).")
        elif photo is None:
            self.panel.set_notice("Open a photo to edit its faces.")
        elif photo.faces_error:
            # the faces shown before were the last model's: nothing renders them with this one
            then = ("Your edit is kept: it comes back when a model that reads the faces is opened again (File ▸ "
                    "Recent Models: the model before)." if self._set_aside else "Switch back to the model before "
                    "(File ▸ Recent Models) or open another photo to edit faces.")
            self.panel.set_notice(f"<b>This model could not read the faces of {html.escape(photo.path.name)}:</b> "
                                  f"{html.escape(ended(photo.faces_error))}<br>{then}")
        elif not photo.faces and photo.removed:
            self.panel.set_notice(f"<b>No face to edit:</b> {counted(photo.removed, 'face')} taken off (View ▸ Not a "
                                  "face).<br>View ▸ Mark a missed face takes a box drawn around a face.")
        elif not photo.faces:
            why = "".join(f"<br>• {html.escape(r)}" for _b, r in photo.skipped[:3])
            from core.photo_edit import reduced_search_hint   # here: importing it loads torch
            hint = "" if photo.thorough else reduced_search_hint(photo.search_scale, photo.width, photo.height)
            if not photo.skipped and hint:
                why = f"<br>{html.escape(hint[0].upper() + hint[1:])}."
            self.panel.set_notice(f"<b>No face the model can edit was found in this photo.</b>{why}"
                                  f"<br>{MORE_FACES_DONE if photo.thorough else MORE_FACES_HINT}")
        elif photo.aligned:
            self.panel.set_notice("No face was detected, but the photo has the model's aligned-crop framing, "
                                  "so it is edited as one aligned face.")
        else:
            from core.photo_edit import small_faces_hint
            # a thorough search looked for faces down to the 40 px the hint speaks of
            hint = "" if photo.thorough else small_faces_hint(photo.search_scale, photo.width, photo.height)
            notes = [f"{counted(len(photo.skipped), 'more face')} too small for the model (dotted boxes)."] \
                if photo.skipped else []
            notes += [html.escape(hint[0].upper() + hint[1:]) + ".", MORE_FACES_SMALL] if hint else []
            # the small-faces hint is gone, but no search looks under 40 px
            notes += [MORE_FACES_TINY] if photo.thorough else []
            self.panel.set_notice("<br>".join(notes))
        if model:
            name = model.name if len(model.name) <= 48 else model.name[:47] + "…"
            self.model_label.setText(f"Model: {name} · {model.device.upper()}")
            self.model_label.setToolTip(literal_tip(f"{model.name}\n{model.path}\nrunning on {model.device}"))
        else:
            self.model_label.setText("No model")
            self.model_label.setToolTip("")
        n = len(photo.faces) if photo else 0
        self.faces_label.setText(f"{n} face{'s' if n != 1 else ''}" if photo and model else "")
        self._refresh_actions()

    def _refresh_actions(self) -> None:
        has_photo = self._photo is not None
        has_faces = bool(has_photo and self._photo.faces)
        self.act_export.setEnabled(has_photo and not self._busy)
        self.act_recipe.setEnabled(has_faces and not self._busy)
        self.act_sweep.setEnabled(has_faces and not self._busy)
        # while any busy job runs (the Faders panel is greyed too): a Not a face step being undone
        # or redone changes the faces under an edit made then; a photo or model loading, an edit
        # went to the document being replaced, lost or kept on the photo left
        editable = has_faces and not self._busy
        self.act_reset_face.setEnabled(editable)
        self.act_copy_edit.setEnabled(has_faces)
        self.act_copy_image.setEnabled(has_photo and not self._busy)
        self.act_paste_edit.setEnabled(editable)
        self.act_reset_all.setEnabled(editable)
        self.act_brush.setEnabled(has_faces)
        self.act_clear_brush.setEnabled(editable and any(m is not None for m in self.session.masks))
        # nothing to erase without an edit: it entered the brush, painted the photo red and made an
        # undo step for nothing
        self.act_erase_everywhere.setEnabled(editable and self._targets_edited())
        if self.act_brush.isChecked() and not has_faces:
            self.set_brush(False)
        self.act_card.setEnabled(self._model is not None)
        for a in (self.act_next, self.act_prev, self.act_fit, self.act_actual, self.act_zoom_in, self.act_zoom_out):
            a.setEnabled(has_photo)
        self.act_zoom_face.setEnabled(has_faces)
        # nothing to compare without a face: the split showed the photo against itself
        self.act_split.setEnabled(has_faces)
        if self.act_split.isChecked() and not has_faces:
            self.act_split.setChecked(False)
        # faces too small for the model still have (dotted) boxes to show
        boxes = has_faces or bool(has_photo and self._photo.skipped)
        self.act_boxes.setEnabled(boxes)
        # with no box to show it is shown off: checked, its greyed-out tool still looked pressed
        # and highlighted. The setting and the canvas keep the user's choice for the next photo
        # (signals blocked: toggled would write them)
        shown = boxes and self.settings.show_boxes
        if self.act_boxes.isChecked() != shown:
            blocker = QSignalBlocker(self.act_boxes)
            self.act_boxes.setChecked(shown)
            blocker.unblock()
        for a in (self.act_next_face, self.act_prev_face):
            a.setEnabled(has_faces and len(self._photo.faces) > 1)
        # an aligned crop is one face filling the frame; a photo searched so already has nothing more to give
        # (a photo this model could not read has no document to search: "the photo or the model changed")
        searchable = (has_photo and self._model is not None and not self._busy and not self._photo.aligned
                      and not self._photo.faces_error)
        self.act_more_faces.setEnabled(searchable and not self._photo.thorough)
        # greyed without a word, it read as broken
        self.act_more_faces.setText("Find &more faces (done for this photo)" if has_photo and self._photo.thorough
                                    else "Find &more faces")
        self.act_mark_face.setEnabled(searchable)
        self.act_not_face.setEnabled(has_faces and not self._busy and not self._photo.aligned
                                     and self.session.selected != ALL_FACES)
        if self.act_mark_face.isChecked() and not self.act_mark_face.isEnabled():
            self.set_marking(False)
        self.original_button.setEnabled(has_photo)
        self._refresh_undo()

    # ------------------------------------------------------------------------------------------
    # Qt events
    # ------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_files(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = local_files(event.mimeData())
        models = [f for f in files if f.suffix.lower() == ".fader"]
        recipes = [f for f in files if f.suffix.lower() == ".json"]
        photos = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
        others = [f for f in files if f not in models + recipes + photos]
        if others and not (models or recipes or photos):
            photos = others   # dropped alone: opening it says what it is ("not an image", "a folder")
        elif others:
            # among photos, a note or a folder held up Next photo: each Ctrl+PgDown failed on it
            self.statusBar().showMessage(f"Left out, not an image: {', '.join(f.name for f in others[:3])}"
                                         + (f" and {len(others) - 3} more" if len(others) > 3 else ""), 8000)
        event.acceptProposedAction()
        # deferred: a modal dialog inside a drop handler would block the drag source
        QTimer.singleShot(0, lambda: self._open_dropped(models[0] if models else None, photos,
                                                        recipes[0] if recipes else None))

    def _open_dropped(self, model, photos, recipe) -> None:
        """What a drop brought: a model, then photos (several: the first opens, Ctrl+PgDown the
        next) with a recipe applied to the first, or a recipe alone. A model dropped with photos
        is loaded first, so that they open with it, and the edits of the photo they replace are
        asked about once: two questions came, the second on top of the first."""
        if model is not None and photos:
            first = self._first_readable(photos)   # as open_photos: of several, each is tried
            if not self._confirm_discard(first, then=lambda: self._open_dropped(model, photos, recipe)):
                return
            # the photo they replace is not encoded with the model first: seconds for nothing
            self.load_model(model, ask=False, replacing=True)
            self.open_photos(photos, recipe, ask=False)
        elif model is not None:
            # a recipe is for the model dropped with it: applied once that has loaded (it was applied
            # to the model open then, refused for its attributes or lost in the switch)
            self.load_model(model, then=None if recipe is None else lambda: self.apply_recipe(recipe))
        elif photos:
            self.open_photos(photos, recipe)
        elif recipe is not None:
            if self._busy:
                # it edits the photo on show, as Paste edit does, which is greyed meanwhile: applied
                # now it went to the photo or model being replaced (lost with it), and applied later
                # to whichever photo is on show then. Photos and models dropped now wait their turn
                self._note_while_busy(f"{recipe.name} not applied while the window is busy: "
                                      "drop it again once it is done")
                return
            self.apply_recipe(recipe)

    def _hold_key(self, event) -> bool:
        """Hold \\ to see the original, wherever the focus is in the window."""
        if event.key() != Qt.Key.Key_Backslash:
            return False
        if not event.isAutoRepeat():
            self.canvas.set_hold_original(event.type() == QEvent.Type.KeyPress)
        return True

    def keyPressEvent(self, event) -> None:
        # keys the focused widget does not use (slider, buttons, canvas) arrive here
        if self._hold_key(event):
            return
        if event.key() in (Qt.Key.Key_BracketLeft, Qt.Key.Key_BracketRight) and self.canvas.brush_enabled():
            # the brush's size wherever the focus is, as its status message says (not only on the photo)
            self.canvas.grow_brush(event.key() == Qt.Key.Key_BracketRight)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if not self._hold_key(event):
            super().keyReleaseEvent(event)

    def eventFilter(self, obj, event) -> bool:
        # spin boxes and combos would take \\ as text, so they are filtered (see _watch_text_keys)
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self._hold_key(event):
            return True
        if event.type() == QEvent.Type.ShortcutOverride and self._window_key(obj, event):
            return True   # not taken by the box: the window's action runs
        return super().eventFilter(obj, event)

    def _window_key(self, obj, event) -> bool:
        """Whether a key pressed in a value box or combo is the window's (an action's shortcut that
        the box would otherwise keep: Ctrl+Z as text undo after a typed value, Ctrl+E, B, F)
        rather than the box's own: digits, signs, separators, editing, Select all, and the
        clipboard keys where they have text to work on."""
        key = QKeySequence(event.keyCombination())
        if not any(key in a.shortcuts() for a in self.findChildren(QAction) if a.isEnabled()):
            return False
        command = event.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                                       | Qt.KeyboardModifier.MetaModifier)
        if not command and (isinstance(obj, QComboBox) or not event.text().isalpha()):
            return False   # a combo's letters pick an item; digits, '-', '.', ',' are a number's
        edit = obj if isinstance(obj, QLineEdit) else obj.lineEdit() if isinstance(obj, QComboBox) else None
        if event.matches(QKeySequence.StandardKey.Copy) or event.matches(QKeySequence.StandardKey.Cut):
            # the box's with text selected in it; else there is nothing for it to copy, and Ctrl+C
            # right after a typed value silently copied nothing where Copy image was meant
            return edit is None or not edit.hasSelectedText()
        if event.matches(QKeySequence.StandardKey.Paste):
            # text is the box's to paste; an image or a file (Open from clipboard) is the window's
            mime = QGuiApplication.clipboard().mimeData()
            return edit is None or mime is None or mime.hasImage() or mime.hasUrls() or not mime.hasText()
        return not event.matches(QKeySequence.StandardKey.SelectAll)

    def _watch_text_keys(self) -> None:
        # the keys go to a spin box's line edit (its focus proxy), so it is watched too
        for w in (self.panel.findChildren(QAbstractSpinBox) + self.panel.findChildren(QComboBox)
                  + self.panel.findChildren(QLineEdit)):
            w.installEventFilter(self)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # the status labels step aside for a message by the width the window had when it came:
        # fitted again when the window is made narrower or wider while it shows
        if self.statusBar().currentMessage():
            make_room_for_message(self, self.statusBar().currentMessage())

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:   # a second close while the first waits for an export: that one closes
            event.ignore()
            return
        # an export of what the window shows, still queued or running: it is written, not dropped
        # (the queue is cleared on shutdown), and nothing is asked about edits it is writing
        if not self._confirm_discard(then=self.close):
            event.ignore()
            return
        sweeps = [p.name for j, p in self._sweeps if j in self.jobs.pending()]
        if sweeps and not self.ask_confirm(
                "Close Fader Desktop", f"The sweep {', '.join(sweeps)} is still being made. Close and discard it?",
                "Discard and close"):
            event.ignore()
            return
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.settings.on_unsaved = None   # nothing more to say in a window that is going
        # what runs or waits besides exports is of no use once the window is gone: a model load or
        # a sweep stops at its next step (a sweep leaves no file), a render or an open is dropped,
        # and none of them calls back. The close does not wait for them: the GUI thread joining the
        # worker kept the window on screen for seconds (1.4 s into the start-up load, 3.9 s into a
        # GIF sweep); run_app waits for the thread once the window is gone
        self.jobs.cancel()
        # exports, a recipe, a pasted image or an imported model being saved: written, not dropped
        if self._export_index or self.jobs.pending():
            self._closing = True
            # no edit, photo or model can be started meanwhile: it would be lost when the window closes
            self.setEnabled(False)
            self.statusBar().showMessage("Finishing what is being saved before closing…")
            self.jobs.wait_idle(600)
        self.jobs.shutdown(wait=False)
        if getattr(self, "_training_dialog", None) is not None:
            # the dialog stays open (a run goes on) but its Open result has no window to load into
            self._training_dialog.editor_closed()
        event.accept()
