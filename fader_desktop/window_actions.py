"""The main window's actions, menus, toolbar and status bar, as tables.

Each action is one row of ACTIONS (attribute name, text, what it calls, shortcut, tip, icon); the
menus are lists of those names. The window gets an attribute per action (`window.act_open`, …)
and calls `build_window_chrome(window)` once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence, QPainter
from PySide6.QtWidgets import (QLabel, QProgressBar, QSizeGrip, QStatusBar, QStyle, QStyleOption, QToolButton,
                               QToolTip)

from .plain_text import plain

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SK = QKeySequence.StandardKey


def icon(name: str) -> QIcon:
    p = ICONS / f"{name}.svg"
    return QIcon(str(p)) if p.exists() else QIcon()


@dataclass(frozen=True)
class ActionSpec:
    """One action: `calls` is a dotted path from the window ("canvas.fit_to_window") and `args`
    are passed to it; checkable actions call it with their new state."""

    attr: str
    text: str
    calls: Optional[str] = None
    shortcut: object = None          # a key sequence, a standard key, or a list of them
    tip: str = ""
    icon: str = ""
    checkable: bool = False
    args: tuple = ()


ACTIONS = (
    ActionSpec("act_open", "&Open…", "open_photo_dialog", SK.Open, "Open a photo", "open"),
    ActionSpec("act_next", "&Next photo in folder", "open_sibling", "Ctrl+PgDown",
               "Open the next photo of the same folder", args=(1,)),
    ActionSpec("act_prev", "&Previous photo in folder", "open_sibling", "Ctrl+PgUp",
               "Open the previous photo of the same folder", args=(-1,)),
    ActionSpec("act_paste_photo", "Open from c&lipboard", "paste_photo", SK.Paste,
               "Open the image (or image file) on the clipboard, e.g. a screenshot"),
    ActionSpec("act_export", "&Export…", "export_dialog", "Ctrl+E", "Export the edited photo", "export"),
    ActionSpec("act_sweep", "Export s&weep…", "export_sweep_dialog", "Ctrl+Shift+E",
               "One attribute of the selected face at several values, as a strip or an animation"),
    ActionSpec("act_recipe", "Sa&ve edit as recipe…", "save_recipe_dialog", "Ctrl+Shift+S",
               "Save the selected face's fader values as a JSON recipe (for batch editing)"),
    ActionSpec("act_batch", "&Batch export…", "batch_export_dialog", "Ctrl+Alt+B",
               "Apply the changed faders to every photo of a folder"),
    ActionSpec("act_open_model", "Open &model…", "open_model_dialog", "Ctrl+M", "Open a .fader model", "model"),
    ActionSpec("act_import", "&Import reference checkpoint…", "import_reference_dialog", None,
               "Convert a checkpoint of the reference implementation (.pth) to .fader"),
    ActionSpec("act_card", "Model &card…", "show_model_card", None, "What the model does, its ranges, metrics and licence"),
    ActionSpec("act_quit", "&Quit", "close", SK.Quit),
    ActionSpec("act_reset_face", "Reset &face", "reset_face", "Ctrl+R",
               "Every fader of the selected face back to its own value"),
    ActionSpec("act_reset_all", "Reset &all faces", "reset_all", "Ctrl+Shift+R", "Undo every edit on every face"),
    ActionSpec("act_copy_image", "Copy &image", "copy_image", SK.Copy,
               "Copy the edited photo at full resolution, to paste into another program"),
    ActionSpec("act_copy_edit", "C&opy edit", "copy_edit", "Ctrl+Shift+C",
               "Copy the selected face's moved faders, to paste onto another face or photo"),
    ActionSpec("act_paste_edit", "&Paste edit", "paste_edit", "Ctrl+Shift+V",
               "Set the selected face's faders to the copied edit (the other faders stay)"),
    ActionSpec("act_brush", "Edit &brush", "set_brush", "B",
               "Paint over a face to erase its edit there; Shift+drag brings it back; [ and ] change the size",
               "brush", checkable=True),
    ActionSpec("act_erase_everywhere", "&Erase edit everywhere (paint it back)", "erase_edit_everywhere", None,
               "Erase the selected face's edit everywhere and turn the brush on: Shift+drag paints it back where wanted"),
    ActionSpec("act_clear_brush", "&Clear edit brush", "clear_brush", None,
               "The selected face's edit everywhere again (removes the brush strokes)"),
    ActionSpec("act_next_face", "&Next face", "select_next_face", "Ctrl+]", "Select the next face of the photo", args=(1,)),
    ActionSpec("act_prev_face", "&Previous face", "select_next_face", "Ctrl+[", "Select the previous face of the photo",
               args=(-1,)),
    ActionSpec("act_more_faces", "Find &more faces", "find_more_faces", None,
               "Search the photo again, turned and tilted and at a finer scale, for faces the first search missed "
               "(a person lying down, a small face in a big photo)"),
    ActionSpec("act_mark_face", "Mar&k a missed face", "set_marking", None,
               "Draw a box around a face the search missed, to edit it", checkable=True),
    ActionSpec("act_not_face", "Not a fa&ce (remove it)", "remove_selected_face", None,
               "The selected face is no face (a print, a pair of hands): take it off the photo's faces"),
    ActionSpec("act_fit", "&Fit to window", "canvas.fit_to_window", ["Ctrl+0"], "Fit the photo to the window", "fit"),
    ActionSpec("act_actual", "&100 %", "canvas.actual_size", ["Ctrl+1"], "Show the photo at 100 %", "actual"),
    ActionSpec("act_zoom_face", "&Zoom to face", "zoom_to_face", ["F", "Ctrl+2"],
               "Fill the view with the selected face (every face when All faces is selected)", "zoom_face"),
    ActionSpec("act_zoom_in", "Zoom &in", "canvas.zoom_in", [SK.ZoomIn, "Ctrl+="], "Zoom in"),
    ActionSpec("act_zoom_out", "Zoom &out", "canvas.zoom_out", [SK.ZoomOut], "Zoom out"),
    ActionSpec("act_split", "&Before/after split", "canvas.set_split", "Ctrl+B",
               "Original on the left, edit on the right; drag the line (or Alt+← / Alt+→ on the photo)", "split",
               checkable=True),
    ActionSpec("act_boxes", "Show face bo&xes", "set_show_boxes", "Ctrl+Shift+B", "Outline the faces", "faces",
               checkable=True),
    ActionSpec("act_sample", "Open &sample photo", "open_sample_photo", None,
               "Open the public-domain portrait that ships with the app, to try the faders on"),
    ActionSpec("act_shortcuts", "&Keyboard shortcuts", "show_shortcuts", [SK.HelpContents, "Ctrl+/"],
               "Every shortcut of the menus and of the photo view"),
    ActionSpec("act_about", "&About Fader Desktop", "show_about"),
)

DEVICE_CHOICES = (("auto", "&Automatic"), ("cpu", "&CPU"), ("cuda", "CU&DA (GPU)"))

# menu title -> entries: an action's attribute, None for a separator, or a special entry
MENUS = (
    ("&File", ("act_open", "act_paste_photo", "@recent", "act_prev", "act_next", None, "act_export", "act_sweep", "act_recipe",
               "act_batch", None, "act_open_model", "@recent_models", "act_import", "act_card", None, "act_quit")),
    ("&Edit", ("act_undo", "act_redo", None, "act_copy_image", "act_copy_edit", "act_paste_edit", None, "act_reset_face",
               "act_reset_all", None, "act_brush", "act_erase_everywhere", "act_clear_brush")),
    ("&View", ("act_fit", "act_actual", "act_zoom_face", "act_zoom_in", "act_zoom_out", None, "act_next_face",
               "act_prev_face", "act_more_faces", "act_mark_face", "act_not_face", None, "act_split", "act_boxes",
               "@hold_hint")),
    ("&Device", ("@devices",)),
    ("@training", ()),
    ("&Help", ("act_sample", "act_shortcuts", None, "act_about")),
)

TOOLBAR = ("act_open", "act_export", None, "@undo_redo", None, "act_fit", "act_actual", "act_zoom_face", None, "act_split",
           "act_boxes", "@original", None, "act_brush")


def _target(window, dotted: str):
    obj = window
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def make_action(window, text: str, slot=None, shortcut=None, tip: str = "", icon_name: str = "",
                checkable: bool = False) -> QAction:
    """A QAction with its shortcut(s), status tip, tooltip naming the shortcut, and slot."""
    a = QAction(text, window)
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


def _slot(window, spec: ActionSpec):
    if spec.calls is None:
        return None
    if spec.checkable:
        return lambda on: _target(window, spec.calls)(on)
    return lambda *_: _target(window, spec.calls)(*spec.args)


def build_actions(window) -> None:
    """Every action of ACTIONS as `window.<attr>`, the undo stack's actions and the device group."""
    for spec in ACTIONS:
        setattr(window, spec.attr, make_action(window, spec.text, _slot(window, spec), spec.shortcut, spec.tip,
                                               spec.icon, spec.checkable))
    window.act_undo = window.undo_stack.createUndoAction(window, "&Undo")
    # their text follows the next step ("Undo Smiling 0.70"); Help ▸ Keyboard shortcuts lists the
    # icon text, which would otherwise follow it too
    window.act_undo.setIconText("Undo")
    window.act_undo.setShortcut(QKeySequence.StandardKey.Undo)
    window.act_undo.setIcon(icon("undo"))
    window.act_redo = window.undo_stack.createRedoAction(window, "&Redo")
    window.act_redo.setIconText("Redo")
    # the platform's redo keys plus the two every editor knows, each once: on X11 the standard one
    # is Ctrl+Shift+Z itself, and a key bound twice to one action is "ambiguous" to Qt (nothing ran)
    redo_keys = []
    for key in (*QKeySequence.keyBindings(QKeySequence.StandardKey.Redo), QKeySequence("Ctrl+Shift+Z"),
                QKeySequence("Ctrl+Y")):
        if key not in redo_keys:
            redo_keys.append(key)
    window.act_redo.setShortcuts(redo_keys)
    window.act_redo.setIcon(icon("redo"))
    # the stack enables its actions itself after each change (connected first, so run first): a
    # Not a face step undone or redone is a job, greyed by its start inside the stack's undo(),
    # which then enabled both again, and a second Ctrl+Z undid a step on the faces being replaced
    for changed in (window.undo_stack.canUndoChanged, window.undo_stack.canRedoChanged):
        changed.connect(window._refresh_undo)
    window.act_boxes.setChecked(window.settings.show_boxes)
    window.canvas.set_show_boxes(window.settings.show_boxes)
    window.device_group = QActionGroup(window)
    window.device_actions = {}
    for d, label in DEVICE_CHOICES:
        a = make_action(window, label, None, None,
                        f"Run the model on {'the best available device' if d == 'auto' else d.upper()}", checkable=True)
        a.setData(d)
        a.setChecked(d == window.device)
        window.device_group.addAction(a)
        window.device_actions[d] = a
    window.device_group.triggered.connect(lambda a: window.set_device(a.data()))


def build_menus(window) -> None:
    mb = window.menuBar()
    for title, entries in MENUS:
        if title == "@training":
            _training_menu(window, mb)
            continue
        m = mb.addMenu(title)
        for entry in entries:
            if entry is None:
                m.addSeparator()
            elif entry == "@recent":
                window.recent_menu = m.addMenu("Open &Recent")
                window.recent_menu.aboutToShow.connect(window.fill_recent_menu)
            elif entry == "@recent_models":
                window.recent_models_menu = m.addMenu("Recent Mo&dels")
                window.recent_models_menu.aboutToShow.connect(window.fill_recent_models_menu)
            elif entry == "@hold_hint":
                hint = QAction("Hold \\ (backslash) to see the original", window)
                hint.setEnabled(False)
                m.addAction(hint)
            elif entry == "@devices":
                window.device_menu = m
                for a in window.device_actions.values():
                    m.addAction(a)
                m.aboutToShow.connect(window.check_cuda)
            else:
                m.addAction(getattr(window, entry))


def _training_menu(window, mb) -> None:
    try:
        from .training_dialog import TrainingDialog  # noqa: F401  (optional part of the app)
    except ImportError:
        return
    m = mb.addMenu("&Training")
    m.addAction(make_action(window, "&Train model…", window.show_training_dialog, None,
                            "Train or fine-tune a model on your own labeled photos"))


def build_toolbar(window) -> None:
    tb = window.addToolBar("Main")
    tb.setObjectName("main_toolbar")
    tb.setMovable(False)
    tb.setIconSize(QSize(20, 20))
    tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for entry in TOOLBAR:
        if entry is None:
            tb.addSeparator()
        elif entry == "@undo_redo":
            # the stack's own actions carry the command text ("Undo Smiling 0.70"): fine in the menu,
            # too wide for a toolbar, so the toolbar gets short twins that follow their state
            for text, name, src, tip in (
                    ("Undo", "undo", window.act_undo, "Undo the last change to the faces (Edit ▸ Undo names it)"),
                    ("Redo", "redo", window.act_redo, "Redo the change last undone (Edit ▸ Redo names it)")):
                twin = QAction(icon(name), text, window)
                twin.setStatusTip(tip)
                twin.setToolTip(f"{text} ({src.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
                twin.setEnabled(src.isEnabled())
                twin.triggered.connect(src.trigger)
                src.enabledChanged.connect(twin.setEnabled)
                tb.addAction(twin)
        elif entry == "@original":
            b = window.original_button = QToolButton()
            b.setText("Original")
            b.setIcon(icon("original"))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            b.setToolTip("Press and hold to see the original photo (or hold \\)")
            b.setStatusTip("Hold to see the original photo; holding \\ (backslash) does the same wherever the focus is")
            b.pressed.connect(lambda: window.canvas.set_hold_original(True))
            b.released.connect(lambda: window.canvas.set_hold_original(False))
            tb.addWidget(b)
        else:
            tb.addAction(getattr(window, entry))
    # the style's own "more tools" chevron is dark grey: on the dark palette a narrow window's
    # hidden tools (Original, Edit brush, ...) sat behind a button nobody could see
    more = tb.findChild(QToolButton, "qt_toolbar_ext_button")
    if more is not None:
        more.setIcon(icon("more"))
        more.setToolTip("More tools")
        more.setAccessibleName("More tools")   # a screen reader said nothing: the button has no text
        more.setStatusTip("The tools the window is too narrow to show")


class MessageBar(QStatusBar):
    """A status bar whose message, where it does not fit, ends in "…" and is shown whole in a
    tooltip over it. QStatusBar cut it off mid-word at the first permanent label ("… (a JPEG export
    canno"), with no way to read the rest."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._permanent: list = []

    def addPermanentWidget(self, widget, stretch: int = 0) -> None:
        self._permanent.append(widget)
        super().addPermanentWidget(widget, stretch)

    def message_rect(self) -> QRect:
        """Where the message is drawn: as QStatusBar draws it (QStatusBarPrivate::messageRect),
        from the left edge to the first permanent label shown (or the size grip)."""
        rtl = self.isRightToLeft()
        left, right = 6, self.width() - 12
        grip = self.findChild(QSizeGrip)
        if grip is not None and grip.isVisible():
            if rtl:
                left = grip.x() + grip.width()
            else:
                right = grip.x()
        shown = [w for w in self._permanent if w.isVisible()]
        if shown:
            w = shown[0]
            if rtl:
                left = max(left, w.x() + w.width() + 2)
            else:
                right = min(right, w.x() - 2)
        return QRect(left, 0, right - left, self.height())

    def shown_message(self) -> str:
        """The message as the bar shows it: elided where the whole does not fit."""
        return self.fontMetrics().elidedText(self.currentMessage(), Qt.TextElideMode.ElideRight,
                                             self.message_rect().width())

    def message_is_cut(self) -> bool:
        return bool(self.currentMessage()) and self.shown_message() != self.currentMessage()

    def paintEvent(self, event) -> None:
        if not self.message_is_cut():
            super().paintEvent(event)
            return
        # as QStatusBar::paintEvent, but the message elided (it draws it whole, clipped)
        p = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, opt, p, self)
        for w in self._permanent:
            if w.isVisible():
                frame = QStyleOption()
                frame.rect = w.geometry().adjusted(-2, -1, 2, 1)
                frame.palette = self.palette()
                frame.state = QStyle.StateFlag.State_None
                self.style().drawPrimitive(QStyle.PrimitiveElement.PE_FrameStatusBarItem, frame, p, w)
        p.setPen(self.palette().windowText().color())
        p.drawText(self.message_rect(), Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
                   | Qt.TextFlag.TextSingleLine, self.shown_message())

    def event(self, event) -> bool:
        # hovering a cut message shows it whole (the labels beside it keep their own tooltips)
        if event.type() == QEvent.Type.ToolTip and self.message_is_cut() \
                and self.message_rect().contains(event.pos()):
            QToolTip.showText(event.globalPos(), self.currentMessage(), self, self.message_rect())
            return True
        return super().event(event)


def build_status(window) -> None:
    window.setStatusBar(MessageBar(window))
    sb = window.statusBar()
    window.busy_bar = QProgressBar()
    window.busy_bar.setRange(0, 0)      # indeterminate: detection time is not predictable
    window.busy_bar.setMaximumWidth(120)
    window.busy_bar.setTextVisible(False)
    window.busy_bar.hide()
    window.faces_label = QLabel()
    window.render_label = QLabel()
    window.render_label.setMinimumWidth(120)
    window.render_label.setToolTip("Time the last preview took on the worker (decode + paste back)")
    window.zoom_label = QLabel()
    window.zoom_label.setMinimumWidth(90)
    window.model_label = QLabel()
    for w in (window.busy_bar, window.faces_label, window.render_label, window.zoom_label, window.model_label):
        if isinstance(w, QLabel):
            w.setContentsMargins(10, 0, 10, 0)
            plain(w)   # the model label shows the model's own name, which Qt took for HTML
        sb.addPermanentWidget(w)
    window.status_yielded = []
    sb.messageChanged.connect(lambda text: make_room_for_message(window, text))


def make_room_for_message(window, text: str) -> None:
    """In a narrow window the model, timing and zoom labels step aside while a message
    ("Opened …", "Exported …") would otherwise be cut short, and come back when it goes."""
    sb = window.statusBar()
    for w in window.status_yielded:
        w.show()
    window.status_yielded = []
    if not text:
        return
    permanent = [window.busy_bar, window.faces_label, window.render_label, window.zoom_label, window.model_label]
    spacing = sb.layout().spacing() if sb.layout() is not None else 6

    def room() -> int:
        taken = sum(max(w.sizeHint().width(), w.minimumWidth()) + spacing for w in permanent if not w.isHidden())
        return sb.width() - taken - 24     # the size grip and the message's own margins
    need = sb.fontMetrics().horizontalAdvance(text)
    for w in (window.model_label, window.render_label, window.zoom_label):   # least needed first
        if room() >= need:
            break
        if not w.isHidden():
            w.hide()
            window.status_yielded.append(w)


def build_window_chrome(window) -> None:
    """Actions, menus, toolbar and status bar, in that order."""
    build_actions(window)
    build_menus(window)
    build_toolbar(window)
    build_status(window)
