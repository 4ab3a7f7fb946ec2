"""The main window: menus, canvas, fader panel, undo stack, and the bridge to the inference worker.

The window holds the *UI state* of the open photo (per face: attribute -> UI value) and nothing
heavier; every model call goes to the worker (fader_desktop.workers), and every change to the UI
state goes through the undo stack, so undo/redo and live preview share one path.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon,
                           QKeySequence, QUndoCommand, QUndoStack)
from PySide6.QtWidgets import (QAbstractSpinBox, QApplication, QComboBox, QDockWidget, QFileDialog, QLabel,
                               QMainWindow, QMessageBox, QProgressBar, QToolButton)

from .canvas import PhotoCanvas
from .dialogs import ExportDialog, ImportReferenceDialog, ModelCardDialog, SweepDialog, about_html
from .fader_panel import ALL_FACES, FaderPanel, display_name, own_ui_value, ui_to_core
from .settings import DEVICES, Settings
from .workers import InferenceWorker, ModelInfo, PhotoInfo

log = logging.getLogger("fader_desktop")

APP_TITLE = "Fader Desktop"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
OPEN_FILTER = "Images (*.jpg *.jpeg *.png *.webp *.bmp *.tif *.tiff);;All files (*)"
ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
FAILURE_TITLES = {"photo": "Cannot open photo", "model": "Cannot load model", "export": "Export failed",
                  "sweep": "Sweep export failed",
                  "render": "Preview failed", "recipe": "Cannot save recipe", "import": "Import failed"}


def icon(name: str) -> QIcon:
    p = ICONS / f"{name}.svg"
    return QIcon(str(p)) if p.exists() else QIcon()


class ValuesCommand(QUndoCommand):
    """One undoable change of the UI values (a snapshot before and after, all faces).

    Snapshots are tiny (faces x attributes), and whole snapshots make every kind of change
    (one fader, All faces, reset) the same command. Consecutive commands with the same merge key
    (same face selection + attribute + slider drag) merge, so a drag is one undo step.
    """

    def __init__(self, window: "MainWindow", before: list, after: list, text: str, merge_key=None):
        super().__init__(text)
        self.window, self.before, self.after, self.merge_key = window, before, after, merge_key

    def id(self) -> int:
        return 1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self.merge_key is None or getattr(other, "merge_key", None) != self.merge_key:
            return False
        self.after = other.after
        self.setText(other.text())   # "Undo Smiling 1.70": the value the drag ended on
        # a drag that ends where it started is no change at all
        self.setObsolete(self.after == self.before)
        return True

    def redo(self) -> None:
        self.window._apply_snapshot(self.after)

    def undo(self) -> None:
        self.window._apply_snapshot(self.before)


class MainWindow(QMainWindow):
    """Fader Desktop's editor window."""

    photoOpened = Signal(object)      # PhotoInfo, after the window has shown it
    modelChanged = Signal(object)     # ModelInfo
    previewUpdated = Signal(int)      # generation of the preview now shown
    exportFinished = Signal(str)      # written path
    sweepExported = Signal(str)       # written path
    errorShown = Signal(str, str)     # title, message (after show_error)

    def __init__(self, settings: Optional[Settings] = None, device: Optional[str] = None):
        super().__init__()
        from .app import install_refcount_guard
        install_refcount_guard(QApplication.instance())
        self.settings = settings or Settings()
        self.device = device if device in DEVICES else self.settings.device
        self._model: Optional[ModelInfo] = None
        self._photo: Optional[PhotoInfo] = None
        self._attrs: list = []
        self._ui: list = []          # per face: {attribute: UI value}
        self._own_ui: list = []      # per face: {attribute: UI value at the face's own values}
        self._selected = 0
        self._serial = 0
        self._gen = 0
        self._shown_gen = 0
        self._busy = False
        self._export_index: dict = {}   # export path -> undo index when it was requested
        self._image_list: list = []     # photos given on the command line (Next/Previous walk them)
        self._painted = False
        self._after_first_paint: list = []
        self.last_render_ms: Optional[float] = None

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks)

        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(lambda clean: self.setWindowModified(not clean))

        self.canvas = PhotoCanvas()
        self.setCentralWidget(self.canvas)
        self.panel = FaderPanel()
        self.dock = QDockWidget("Faders", self)
        self.dock.setObjectName("faders")
        self.dock.setWidget(self.panel)
        self.dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                              QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)

        self.worker = InferenceWorker()
        self.worker.modelLoaded.connect(self._on_model_loaded)
        self.worker.photoLoaded.connect(self._on_photo_loaded)
        self.worker.rendered.connect(self._on_rendered)
        self.worker.failed.connect(self._on_failed)
        self.worker.busyChanged.connect(self._on_busy)
        self.worker.exported.connect(self._on_exported)
        self.worker.recipeSaved.connect(lambda p: self.statusBar().showMessage(f"Saved recipe {p}", 6000))
        self.worker.sweepExported.connect(self._on_sweep_exported)
        self.worker.notice.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.worker.modelImported.connect(lambda p: self.statusBar().showMessage(f"Imported model {p}", 6000))
        self.worker.start()

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status()
        self.panel.valueEdited.connect(self._on_value_edited)
        self.panel.resetAttribute.connect(self._on_reset_attribute)
        self.panel.resetAll.connect(self.reset_face)
        self.panel.faceSelected.connect(self._on_face_selected)
        self.panel.openModelRequested.connect(self.open_model_dialog)
        self.canvas.faceClicked.connect(self.panel.select_face)
        self.canvas.zoomChanged.connect(self._on_zoom)

        self._watch_text_keys()
        self.resize(1280, 820)
        if self.settings.geometry() is not None:
            self.restoreGeometry(self.settings.geometry())
        if self.settings.window_state() is not None:
            self.restoreState(self.settings.window_state())
        self._refresh()

    # ------------------------------------------------------------------------------------------
    # hooks for dialogs (tests replace these on the instance)
    # ------------------------------------------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        """Tell the user something failed: a modal message box naming the problem (also logged)."""
        log.warning("%s: %s", title, message)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.exec()

    def ask_confirm(self, title: str, message: str, accept_text: str = "OK") -> bool:
        """Ask before something destructive; default is No."""
        box = QMessageBox(QMessageBox.Icon.Question, title, message, QMessageBox.StandardButton.Cancel, self)
        yes = box.addButton(accept_text, QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is yes

    def _error(self, title: str, message: str) -> None:
        self.show_error(title, message)
        self.errorShown.emit(title, message)

    # ------------------------------------------------------------------------------------------
    # building the UI
    # ------------------------------------------------------------------------------------------
    def _action(self, text: str, slot=None, shortcut=None, tip: str = "", icon_name: str = "",
                checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if icon_name:
            a.setIcon(icon(icon_name))
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                a.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                a.setShortcut(QKeySequence(shortcut))
        if tip:
            a.setStatusTip(tip)
            a.setToolTip(f"{tip} ({a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                         if not a.shortcut().isEmpty() else tip)
        a.setCheckable(checkable)
        if slot is not None:
            (a.toggled if checkable else a.triggered).connect(slot)
        return a

    def _build_actions(self) -> None:
        A = self._action
        self.act_open = A("&Open…", self.open_photo_dialog, QKeySequence.StandardKey.Open, "Open a photo", "open")
        self.act_next = A("&Next photo in folder", lambda: self.open_sibling(1), "Ctrl+PgDown",
                          "Open the next photo of the same folder")
        self.act_prev = A("&Previous photo in folder", lambda: self.open_sibling(-1), "Ctrl+PgUp",
                          "Open the previous photo of the same folder")
        self.act_export = A("&Export…", self.export_dialog, "Ctrl+E", "Export the edited photo", "export")
        self.act_sweep = A("Export s&weep…", self.export_sweep_dialog, "Ctrl+Shift+E",
                           "One attribute of the selected face at several values, as a strip or an animation")
        self.act_recipe = A("Save edit as &recipe…", self.save_recipe_dialog, "Ctrl+Shift+S",
                            "Save the selected face's fader values as a JSON recipe (for batch editing)")
        self.act_batch = A("&Batch export…", self.batch_export_dialog, "Ctrl+Alt+B",
                           "Apply the changed faders to every photo of a folder")
        self.act_open_model = A("Open &model…", self.open_model_dialog, "Ctrl+M", "Open a .fader model", "model")
        self.act_import = A("&Import reference checkpoint…", self.import_reference_dialog, None,
                            "Convert a checkpoint of the reference implementation (.pth) to .fader")
        self.act_card = A("Model &card…", self.show_model_card, None, "What the model does, its ranges, metrics and licence")
        self.act_quit = A("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_undo = self.undo_stack.createUndoAction(self, "&Undo")
        self.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
        self.act_undo.setIcon(icon("undo"))
        self.act_redo = self.undo_stack.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Shift+Z")])
        self.act_redo.setIcon(icon("redo"))
        self.act_reset_face = A("Reset &face", self.reset_face, "Ctrl+R", "Every fader of the selected face back to its own value")
        self.act_reset_all = A("Reset &all faces", self.reset_all, "Ctrl+Shift+R", "Undo every edit on every face")
        self.act_fit = A("&Fit to window", self.canvas.fit_to_window, ["Ctrl+0"], "Fit the photo to the window", "fit")
        self.act_actual = A("&100 %", self.canvas.actual_size, ["Ctrl+1"], "Show the photo at 100 %", "actual")
        self.act_zoom_in = A("Zoom &in", lambda: self.canvas.zoom_in(), [QKeySequence.StandardKey.ZoomIn, "Ctrl+="], "Zoom in")
        self.act_zoom_out = A("Zoom &out", lambda: self.canvas.zoom_out(), [QKeySequence.StandardKey.ZoomOut], "Zoom out")
        self.act_split = A("&Before/after split", self.canvas.set_split, "Ctrl+B",
                           "Original on the left, edit on the right; drag the line", "split", checkable=True)
        self.act_boxes = A("Show face &boxes", self._set_show_boxes, "Ctrl+Shift+B", "Outline the faces", "faces",
                           checkable=True)
        self.act_boxes.setChecked(self.settings.show_boxes)
        self.canvas.set_show_boxes(self.settings.show_boxes)
        self.device_group = QActionGroup(self)
        self.device_actions = {}
        for d, label in (("auto", "&Automatic"), ("cpu", "&CPU"), ("cuda", "CU&DA (GPU)")):
            a = A(label, None, None, f"Run the model on {'the best available device' if d == 'auto' else d.upper()}",
                  checkable=True)
            a.setData(d)
            a.setChecked(d == self.device)
            self.device_group.addAction(a)
            self.device_actions[d] = a
        self.device_group.triggered.connect(lambda a: self.set_device(a.data()))
        self.act_about = A("&About Fader Desktop", self.show_about)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.act_open)
        self.recent_menu = m.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        m.addAction(self.act_prev)
        m.addAction(self.act_next)
        m.addSeparator()
        m.addAction(self.act_export)
        m.addAction(self.act_sweep)
        m.addAction(self.act_recipe)
        m.addAction(self.act_batch)
        m.addSeparator()
        m.addAction(self.act_open_model)
        m.addAction(self.act_import)
        m.addAction(self.act_card)
        m.addSeparator()
        m.addAction(self.act_quit)
        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_redo)
        m.addSeparator()
        m.addAction(self.act_reset_face)
        m.addAction(self.act_reset_all)
        m = mb.addMenu("&View")
        for a in (self.act_fit, self.act_actual, self.act_zoom_in, self.act_zoom_out):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.act_split)
        m.addAction(self.act_boxes)
        hint = QAction("Hold \\ (backslash) to see the original", self)
        hint.setEnabled(False)
        m.addAction(hint)
        m.addSeparator()
        m.addAction(self.dock.toggleViewAction())
        self.device_menu = mb.addMenu("&Device")
        for a in self.device_actions.values():
            self.device_menu.addAction(a)
        self.device_menu.aboutToShow.connect(self._check_cuda)
        self._training_menu(mb)
        m = mb.addMenu("&Help")
        m.addAction(self.act_about)

    def _training_menu(self, mb) -> None:
        try:
            from .training_dialog import TrainingDialog  # noqa: F401  (optional part of the app)
        except ImportError:
            return
        m = mb.addMenu("&Training")
        m.addAction(self._action("&Train model…", self.show_training_dialog, None,
                                 "Train or fine-tune a model on your own labeled photos"))

    def _build_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("main_toolbar")
        tb.setMovable(False)
        tb.setIconSize(QSize(20, 20))
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (self.act_open, self.act_export):
            tb.addAction(a)
        tb.addSeparator()
        # the stack's own actions carry the command text ("Undo Smiling 0.70"): fine in the menu,
        # too wide for a toolbar, so the toolbar gets short twins that follow their state
        for text, name, src in (("Undo", "undo", self.act_undo), ("Redo", "redo", self.act_redo)):
            twin = QAction(icon(name), text, self)
            twin.setToolTip(f"{text} ({src.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
            twin.setEnabled(src.isEnabled())
            twin.triggered.connect(src.trigger)
            src.enabledChanged.connect(twin.setEnabled)
            tb.addAction(twin)
        tb.addSeparator()
        tb.addAction(self.act_fit)
        tb.addAction(self.act_actual)
        tb.addSeparator()
        tb.addAction(self.act_split)
        tb.addAction(self.act_boxes)
        self.original_button = QToolButton()
        self.original_button.setText("Original")
        self.original_button.setIcon(icon("original"))
        self.original_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.original_button.setToolTip("Press and hold to see the original photo (or hold \\)")
        self.original_button.pressed.connect(lambda: self.canvas.set_hold_original(True))
        self.original_button.released.connect(lambda: self.canvas.set_hold_original(False))
        tb.addWidget(self.original_button)

    def _build_status(self) -> None:
        sb = self.statusBar()
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)      # indeterminate: detection time is not predictable
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.hide()
        self.faces_label = QLabel()
        self.render_label = QLabel()
        self.render_label.setMinimumWidth(120)
        self.render_label.setToolTip("Time the last preview took on the worker (decode + paste back)")
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(90)
        self.model_label = QLabel()
        for w in (self.busy_bar, self.faces_label, self.render_label, self.zoom_label, self.model_label):
            if isinstance(w, QLabel):
                w.setContentsMargins(10, 0, 10, 0)
            sb.addPermanentWidget(w)

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
        path = None
        if model:
            path = Path(model)
        elif self.settings.last_model and Path(self.settings.last_model).is_file():
            path = Path(self.settings.last_model)
        elif default_model_path().is_file():
            path = default_model_path()
        if path is not None:
            self.load_model(path)
        else:
            log.info("no model: %s is absent and none was given", default_model_path())
        images = [Path(p) for p in images or ()]
        if images:
            self.open_photo(images[0])
        if len(images) > 1:
            self._image_list = images
            self.act_next.setText("&Next photo")
            self.act_prev.setText("&Previous photo")
            self.statusBar().showMessage(f"Photo 1 of {len(images)}: Ctrl+PgDown opens the next one", 8000)

    # ------------------------------------------------------------------------------------------
    # opening photos and models
    # ------------------------------------------------------------------------------------------
    def _confirm_discard(self) -> bool:
        if self.undo_stack.isClean() or self._photo is None:
            return True
        return self.ask_confirm("Discard edits?",
                                f"The edits to {self._photo.path.name} have not been exported. Discard them?",
                                "Discard")

    def open_photo_dialog(self) -> None:
        start = self.settings.last_dir or (str(self._photo.path.parent) if self._photo else "")
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", start, OPEN_FILTER)
        if path:
            self.open_photo(path)

    def open_photo(self, path) -> None:
        """Open a photo (runs on the worker; the window shows it when faces are found)."""
        if not self._confirm_discard():
            return
        self.worker.open_photo(Path(path))

    def open_sibling(self, step: int) -> None:
        """Next/previous photo: of the command-line list when one was given, else of the folder."""
        if self._photo is None:
            return
        if self._photo.path in self._image_list:
            i = self._image_list.index(self._photo.path) + step
            if 0 <= i < len(self._image_list):
                self.open_photo(self._image_list[i])
            else:
                self.statusBar().showMessage("That was the last photo given", 3000)
            return
        folder = self._photo.path.parent
        try:
            files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as e:
            self._error("Cannot open photo", f"{folder}: {e.strerror or e}")
            return
        if self._photo.path not in files:
            return
        i = files.index(self._photo.path) + step
        if 0 <= i < len(files):
            self.open_photo(files[i])
        else:
            self.statusBar().showMessage("No more photos in this folder", 3000)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for f in files:
            a = self.recent_menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda _=False, f=f: self.open_photo(f))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.settings.clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def open_model_dialog(self) -> None:
        start = str(Path(self._model.path).parent) if self._model else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start, "Fader models (*.fader);;All files (*)")
        if path:
            self.load_model(path)

    def load_model(self, path) -> None:
        """Load a .fader model on the worker; an open photo is re-encoded with it."""
        if self._model is not None and not self._confirm_discard():
            return
        self.worker.load_model(Path(path), self.device)

    def import_reference_dialog(self) -> None:
        dlg = ImportReferenceDialog(self.settings.last_dir, self)
        if dlg.exec():
            src, dst, attrs = dlg.values()
            if dst.exists() and not self.ask_confirm("Replace model?", f"{dst} exists. Replace it?", "Replace"):
                return
            self.worker.import_reference(src, dst, attrs)

    def set_device(self, device: str) -> None:
        if device not in DEVICES or device == self.device:
            return
        self.device = device
        self.settings.device = device
        self.device_actions[device].setChecked(True)
        self.worker.set_device(device)

    def _check_cuda(self) -> None:
        try:
            import torch
            ok = torch.cuda.is_available()
        except Exception:
            ok = False
        a = self.device_actions["cuda"]
        a.setEnabled(ok or self.device == "cuda")
        a.setText("CU&DA (GPU)" if ok else "CU&DA (no CUDA device found)")

    # ------------------------------------------------------------------------------------------
    # worker results
    # ------------------------------------------------------------------------------------------
    def _on_model_loaded(self, info: ModelInfo) -> None:
        same_attrs = [a.to_dict() for a in info.attributes] == [a.to_dict() for a in self._attrs]
        self._model = info
        self._attrs = list(info.attributes)
        self.settings.last_model = str(info.path)
        if not same_attrs:
            # the values and the history refer to attributes that no longer exist
            self.panel.set_attributes(self._attrs)
            self._watch_text_keys()
            self.undo_stack.clear()
        self.statusBar().showMessage(f"Loaded model {info.name}", 5000)
        log.info("model %s loaded from %s on %s", info.name, info.path, info.device)
        if self._photo is None:
            self._ui, self._own_ui = [], []
        self._refresh()
        self.modelChanged.emit(info)

    def _on_photo_loaded(self, info: PhotoInfo) -> None:
        same_faces = (info.reencoded and self._photo is not None and len(info.faces) == len(self._ui)
                      and all(set(u) == {a.name for a in self._attrs} for u in self._ui))
        self._photo = info
        self._serial = info.serial
        self._own_ui = [{a.name: own_ui_value(a, f.own_values[a.name]) for a in self._attrs} for f in info.faces]
        if not same_faces:
            # a new photo or a new model: start from the faces' own values with a fresh history
            self._ui = copy.deepcopy(self._own_ui)
            self._selected = 0
            self.undo_stack.clear()
        self._shown_gen = self._gen   # renders still in flight were for the previous document
        self.canvas.set_photo(info.original, keep_view=info.reencoded)
        self.canvas.set_faces([(f.index, f.box) for f in info.faces], info.skipped, self._selected)
        self.panel.set_faces(len(info.faces), self._selected)
        if not info.reencoded:
            self.settings.add_recent(info.path)
            self.settings.last_dir = str(info.path.parent)
            n = len(info.faces)
            self.statusBar().showMessage(
                f"Opened {info.path.name}: {n} face{'s' if n != 1 else ''} ({info.seconds:.1f} s)", 6000)
        self._sync_panel()
        if same_faces and any(u != o for u, o in zip(self._ui, self._own_ui)):
            self._request_render()
        self._refresh()
        self.photoOpened.emit(info)

    def _on_rendered(self, serial: int, generation: int, patch, x: int, y: int, ms: float) -> None:
        if serial != self._serial or generation < self._shown_gen:
            return  # a late result for an older photo or older values
        self._shown_gen = generation
        self.canvas.apply_patch(patch, x, y)
        self.last_render_ms = ms
        self.render_label.setText(f"Render {ms:.0f} ms")
        self.previewUpdated.emit(generation)

    def _on_failed(self, kind: str, message: str) -> None:
        if kind == "render":
            # a failing preview would fail again on every slider move: one dialog per photo
            if getattr(self, "_render_error_serial", None) == self._serial:
                log.warning("preview failed again: %s", message)
                return
            self._render_error_serial = self._serial
        self._error(FAILURE_TITLES.get(kind, "Error"), message)

    def _on_busy(self, busy: bool, text: str) -> None:
        self._busy = busy
        self.busy_bar.setVisible(busy)
        self.canvas.set_busy(text if busy else "")
        if busy:
            self.statusBar().showMessage(text)
            self._busy_text = text
        elif self.statusBar().currentMessage() == getattr(self, "_busy_text", None):
            self.statusBar().clearMessage()   # but keep a result message ("Opened …") shown since
        # edits made while a photo or model is loading would go to the document being replaced
        self.panel.setEnabled(not busy)
        self._refresh_actions()

    def _on_exported(self, path: str) -> None:
        # the exported values are "saved" unless the user kept editing while it was written
        if self._export_index.pop(path, None) == self.undo_stack.index():
            self.undo_stack.setClean()
        self.statusBar().showMessage(f"Exported {path}", 8000)
        self.exportFinished.emit(path)

    # ------------------------------------------------------------------------------------------
    # edits (every change goes through the undo stack)
    # ------------------------------------------------------------------------------------------
    def _targets(self) -> list:
        return list(range(len(self._ui))) if self._selected == ALL_FACES else [self._selected]

    def _push(self, after: list, text: str, merge_key=None) -> None:
        before = copy.deepcopy(self._ui)
        if after == before:
            return
        self.undo_stack.push(ValuesCommand(self, before, after, text, merge_key))

    def _on_value_edited(self, name: str, ui, drag: int) -> None:
        if not self._ui:
            return
        after = copy.deepcopy(self._ui)
        for i in self._targets():
            after[i][name] = ui
        self._last_attr = name
        key = (self._selected, name, drag) if drag else None
        self._push(after, f"{display_name(name)} {self._describe(name, ui)}", key)

    def _describe(self, name: str, ui) -> str:
        attr = next(a for a in self._attrs if a.name == name)
        if attr.is_binary:
            return f"{ui:.2f}"
        return f"→ {attr.values[ui[0]]} {ui[1]:.2f}"

    def _on_reset_attribute(self, name: str) -> None:
        if not self._ui:
            return
        after = copy.deepcopy(self._ui)
        for i in self._targets():
            after[i][name] = self._own_ui[i][name]
        self._push(after, f"Reset {display_name(name)}")

    def reset_face(self) -> None:
        """Every fader of the selected face (or of all faces when All faces is selected) reset."""
        if not self._ui:
            return
        after = copy.deepcopy(self._ui)
        for i in self._targets():
            after[i] = copy.deepcopy(self._own_ui[i])
        self._push(after, "Reset face" if self._selected != ALL_FACES else "Reset all faces")

    def reset_all(self) -> None:
        if self._ui:
            self._push(copy.deepcopy(self._own_ui), "Reset all faces")

    def _apply_snapshot(self, snapshot: list) -> None:
        """Called by undo commands: make `snapshot` the current values and re-render."""
        self._ui = copy.deepcopy(snapshot)
        self._sync_panel()
        self._request_render()
        self._refresh_actions()

    def _on_face_selected(self, index: int) -> None:
        self._selected = index
        self.canvas.set_selected_face(index)
        self._sync_panel()

    def _sync_panel(self) -> None:
        if not self._ui:
            return
        i = 0 if self._selected == ALL_FACES else min(self._selected, len(self._ui) - 1)
        self.panel.set_values(self._ui[i], self._own_ui[i])

    def core_values(self) -> list:
        """The current values as core values (one dict per face) for the worker."""
        out = []
        for i, face in enumerate(self._photo.faces if self._photo else []):
            out.append({a.name: ui_to_core(a, self._ui[i][a.name], face.own_values[a.name]) for a in self._attrs})
        return out

    def _request_render(self) -> None:
        if self._photo is None or not self._photo.faces:
            return
        self._gen += 1
        self.worker.render(self._serial, self._gen, self.core_values())

    def preview_current(self) -> bool:
        """True when the preview shows the latest values (no render outstanding)."""
        return self._shown_gen >= self._gen

    def is_modified(self) -> bool:
        return any(u != o for u, o in zip(self._ui, self._own_ui))

    # ------------------------------------------------------------------------------------------
    # export / recipe
    # ------------------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self._photo is None:
            return
        src = self._photo.path
        folder = Path(self.settings.export_dir) if self.settings.export_dir else src.parent
        if not folder.is_dir():
            folder = src.parent
        suffix = "." + self.settings.export_format
        dlg = ExportDialog(folder / f"{src.stem}_edited{suffix}", self.settings.export_quality,
                           self.settings.keep_exif, self)
        if dlg.exec():
            path = dlg.result_path()
            self.settings.export_quality = dlg.quality()
            self.settings.keep_exif = dlg.keep_exif()
            self.settings.export_format = path.suffix.lower().lstrip(".").replace("jpeg", "jpg")
            self.settings.export_dir = str(path.parent)
            self.export_to(path, dlg.quality(), dlg.keep_exif())

    def export_to(self, path, quality: int = 95, keep_exif: bool = True) -> bool:
        """Export the edited photo (on the worker). Asks before replacing a file, twice as
        clearly before replacing the original photo. Returns False if the user declined."""
        if self._photo is None:
            return False
        path = Path(path)
        if path.exists():
            try:
                same = path.resolve() == self._photo.path.resolve() or path.samefile(self._photo.path)
            except OSError:
                same = False
            if same:
                if not self.ask_confirm("Overwrite the original photo?",
                                        f"{path} is the original photo. Replacing it with the edit cannot be undone.",
                                        "Overwrite original"):
                    return False
            elif not self.ask_confirm("Replace file?", f"{path} already exists. Replace it?", "Replace"):
                return False
        self._export_index[str(path)] = self.undo_stack.index()
        self.worker.export(path, self.core_values(), quality, keep_exif)
        return True

    def export_sweep_dialog(self) -> None:
        if self._photo is None or not self._photo.faces:
            return
        src = self._photo.path
        folder = Path(self.settings.export_dir) if self.settings.export_dir else src.parent
        if not folder.is_dir():
            folder = src.parent
        dlg = SweepDialog(self._attrs, folder / f"{src.stem}_sweep.png", getattr(self, "_last_attr", None), self)
        if dlg.exec():
            self.export_sweep(dlg.spec())

    def export_sweep(self, spec: dict) -> bool:
        """Write a sweep of the selected face (see SweepDialog.spec); False if the user declined."""
        path = Path(spec["path"])
        if path.exists():
            original = self._photo is not None and path.resolve() == self._photo.path.resolve()
            if not self.ask_confirm("Overwrite the original photo?" if original else "Replace file?",
                                    f"{path} {'is the original photo' if original else 'already exists'}. Replace it?",
                                    "Replace"):
                return False
        face = 0 if self._selected == ALL_FACES else self._selected
        self.worker.export_sweep(face, {**spec, "path": path})
        return True

    def _on_sweep_exported(self, path: str) -> None:
        self.statusBar().showMessage(f"Exported sweep {path}", 8000)
        self.sweepExported.emit(path)

    def batch_export_dialog(self) -> None:
        """File ▸ Batch export…: the faders the user changed on this face, applied to a folder."""
        from fader_desktop.batch_dialog import BatchDialog
        if self._model is None:
            self._error("Batch export", "Load a model first (File ▸ Open model…).")
            return
        values = {}
        if self._photo is not None and self._ui:
            i = 0 if self._selected == ALL_FACES else self._selected
            now = self.core_values()[i]
            values = {a.name: now[a.name] for a in self._attrs if self._ui[i][a.name] != self._own_ui[i][a.name]}
        BatchDialog(self, self._model.path, self.device, values).exec()

    def save_recipe_dialog(self) -> None:
        if self._photo is None or not self._photo.faces:
            self._error("Cannot save recipe", "Open a photo with a face first.")
            return
        face = 0 if self._selected == ALL_FACES else self._selected
        default = self._photo.path.with_name(f"{self._photo.path.stem}.recipe.json")
        path, _ = QFileDialog.getSaveFileName(self, "Save edit as recipe", str(default), "Recipes (*.json)")
        if path:
            self.worker.save_recipe(Path(path), self.core_values(), face)

    # ------------------------------------------------------------------------------------------
    # dialogs
    # ------------------------------------------------------------------------------------------
    def show_model_card(self) -> None:
        if self._model is None:
            self._error("No model", "No model is loaded. Use File ▸ Open model… to load a .fader file.")
            return
        ModelCardDialog(self._model.summary, self._model.path, self).exec()

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

    # ------------------------------------------------------------------------------------------
    # view state
    # ------------------------------------------------------------------------------------------
    def _set_show_boxes(self, on: bool) -> None:
        self.canvas.set_show_boxes(on)
        self.settings.show_boxes = on

    def _on_zoom(self, scale: float) -> None:
        self.zoom_label.setText(f"{'Fit · ' if self.canvas.is_fit() else ''}{scale * 100:.0f} %")

    def _refresh(self) -> None:
        """Title, placeholder, notices and action states from the current model/photo."""
        photo, model = self._photo, self._model
        self.setWindowTitle(f"{photo.path.name}[*] — {APP_TITLE}" if photo else APP_TITLE)
        no_model = "No model loaded — File ▸ Open model… (Ctrl+M)"
        self.canvas.set_placeholder("Open a photo: File ▸ Open… (Ctrl+O), or drop one here"
                                    + ("" if model else "\n\n" + no_model))
        if model is None:
            self.panel.set_notice("<b>No model loaded.</b><br>Open a <i>.fader</i> model to edit faces: "
                                  "File ▸ Open model… (Ctrl+M).")
        elif photo is None:
            self.panel.set_notice("Open a photo to edit its faces.")
        elif not photo.faces:
            why = "".join(f"<br>• {r}" for _b, r in photo.skipped[:3])
            self.panel.set_notice(f"<b>No face the model can edit was found in this photo.</b>{why}")
        elif photo.aligned:
            self.panel.set_notice("No face was detected, but the photo has the model's aligned-crop framing, "
                                  "so it is edited as one aligned face.")
        elif photo.skipped:
            self.panel.set_notice(f"{len(photo.skipped)} more face(s) too small for the model (dotted boxes).")
        else:
            self.panel.set_notice("")
        if model:
            name = model.name if len(model.name) <= 32 else model.name[:31] + "…"
            self.model_label.setText(f"Model: {name} · {model.device.upper()}")
            self.model_label.setToolTip(f"{model.name}\n{model.path}\nrunning on {model.device}")
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
        self.act_reset_face.setEnabled(has_faces)
        self.act_reset_all.setEnabled(has_faces)
        self.act_card.setEnabled(self._model is not None)
        for a in (self.act_next, self.act_prev, self.act_fit, self.act_actual, self.act_zoom_in, self.act_zoom_out):
            a.setEnabled(has_photo)
        self.original_button.setEnabled(has_photo)

    # ------------------------------------------------------------------------------------------
    # Qt events
    # ------------------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        files = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        models = [f for f in files if f.suffix.lower() == ".fader"]
        photos = [f for f in files if f.suffix.lower() != ".fader"]
        event.acceptProposedAction()
        # deferred: a modal dialog inside a drop handler would block the drag source
        if models:
            QTimer.singleShot(0, lambda: self.load_model(models[0]))
        if photos:
            QTimer.singleShot(0, lambda: self.open_photo(photos[0]))

    def _hold_key(self, event) -> bool:
        """Hold \\ to see the original, wherever the focus is in the window."""
        if event.key() != Qt.Key.Key_Backslash:
            return False
        if not event.isAutoRepeat():
            self.canvas.set_hold_original(event.type() == QEvent.Type.KeyPress)
        return True

    def keyPressEvent(self, event) -> None:
        # keys the focused widget does not use (slider, buttons, canvas) arrive here
        if not self._hold_key(event):
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if not self._hold_key(event):
            super().keyReleaseEvent(event)

    def eventFilter(self, obj, event) -> bool:
        # spin boxes and combos would take \\ as text, so they are filtered (see _watch_text_keys)
        if event.type() in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease) and self._hold_key(event):
            return True
        return super().eventFilter(obj, event)

    def _watch_text_keys(self) -> None:
        for w in self.panel.findChildren(QAbstractSpinBox) + self.panel.findChildren(QComboBox):
            w.installEventFilter(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_discard():
            event.ignore()
            return
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.worker.shutdown()
        event.accept()
