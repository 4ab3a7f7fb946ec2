"""The photo view and the toolbar by keyboard, as a keyboard-only QA walk met them: a zoomed-in photo
could not be panned, the before/after line not moved and a missed face not marked without the
mouse; the focused photo view showed nothing; Undo, Redo and Original said nothing in the status
bar; and a dialog's focused Export button looked exactly as it did unfocused (the default button).
The real window, the tiny model and the portrait (test_gui's shared window)."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QEnterEvent, QKeySequence, QPalette  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolBar, QToolButton  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALT, SHIFT = Qt.KeyboardModifier.AltModifier, Qt.KeyboardModifier.ShiftModifier


def _focused_canvas(w, qtbot):
    """The window active and the photo view focused as Tab or a click leaves it."""
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=TIMEOUT)
    w.canvas.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(w.canvas.hasFocus, timeout=TIMEOUT)
    return w.canvas


def _zoomed_in(w, qtbot):
    """The view zoomed in on the middle of the photo: room to pan every way."""
    from PySide6.QtCore import QRectF
    canvas = _focused_canvas(w, qtbot)
    photo = canvas.original_image()
    canvas.zoom_to_rect(QRectF(photo.width() * 0.4, photo.height() * 0.4, photo.width() * 0.2, photo.height() * 0.2))
    x, y, vw, vh = canvas.visible_rect()
    assert vw < photo.width() / 2 and vh < photo.height() / 2
    return canvas


def _centre(canvas) -> QPointF:
    return canvas.to_photo(QPointF(canvas.width() / 2, canvas.height() / 2))


def test_the_arrow_keys_pan_a_zoomed_in_photo_and_a_focused_fader_keeps_them(editor, qtbot):
    w = editor
    canvas = _zoomed_in(w, qtbot)
    start = _centre(canvas)
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    right = _centre(canvas)
    assert right.x() > start.x() + 5 and right.y() == pytest.approx(start.y())
    qtbot.keyClick(canvas, Qt.Key.Key_Down)
    down = _centre(canvas)
    assert down.y() > right.y() + 5 and down.x() == pytest.approx(right.x())
    qtbot.keyClick(canvas, Qt.Key.Key_Left, SHIFT)   # Shift: further than a plain arrow
    far = _centre(canvas)
    assert right.x() - start.x() < down.x() - far.x()
    qtbot.keyClick(canvas, Qt.Key.Key_Up)
    assert _centre(canvas).y() < down.y()
    # with a fader focused, its arrows move the fader and leave the view where it is
    slider = w.panel.row("Smiling").slider
    slider.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(slider.hasFocus, timeout=TIMEOUT)
    view, value = canvas.visible_rect(), slider.value()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert slider.value() > value and canvas.visible_rect() == view
    canvas.fit_to_window()


def test_alt_arrows_move_the_split_line_and_help_lists_them(editor, qtbot):
    import html
    import re
    w = editor
    canvas = _focused_canvas(w, qtbot)
    w.act_split.setChecked(True)
    try:
        canvas.set_split_fraction(0.5)
        qtbot.keyClick(canvas, Qt.Key.Key_Right, ALT)
        assert canvas.split_fraction() > 0.52
        moved = canvas.split_fraction()
        qtbot.keyClick(canvas, Qt.Key.Key_Left, ALT | SHIFT)   # Shift: further
        assert canvas.split_fraction() < 0.5 - (moved - 0.5)
        for _ in range(40):
            qtbot.keyClick(canvas, Qt.Key.Key_Left, ALT)
        assert canvas.split_fraction() == 0.0   # stops at the view's edge
    finally:
        w.act_split.setChecked(False)
    # no action has the keys that the view uses (they would never reach it)
    taken = [QKeySequence(k) for k in ("Alt+Left", "Alt+Right", "Left", "Right", "Up", "Down", "Shift+Left",
                                       "Return", "[", "]")]
    bound = [(a.text(), k.toString()) for a in w.findChildren(type(w.act_open)) for k in a.shortcuts() if k in taken]
    assert not bound
    w.act_shortcuts.trigger()
    dlg = w._shortcuts_dialog
    try:
        rows = {html.unescape(what): html.unescape(key)
                for key, what in re.findall(r"<tr><td><code>(.*?)</code></td><td>(.*?)</td></tr>", dlg.html)}
        split = [k for what, k in rows.items() if "split line" in what]
        assert split and "Alt+Left" in split[0], rows   # in words: the list's font drew arrows tiny (s49j)
        assert any("pan" in what and "Left" in k for what, k in rows.items()), rows
        assert any("marking a missed face by keys" in what and "Enter" in k for what, k in rows.items()), rows
    finally:
        dlg.close()


def test_the_focused_photo_view_is_outlined_in_the_highlight_colour(editor, qtbot):
    w = editor
    canvas = _focused_canvas(w, qtbot)
    highlight = canvas.palette().color(QPalette.ColorRole.Highlight)
    focused = canvas.grab().toImage()
    w.panel.row("Smiling").slider.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(lambda: not canvas.hasFocus(), timeout=TIMEOUT)
    unfocused = canvas.grab().toImage()
    h, wd = focused.height(), focused.width()
    edge = [(0, h // 2), (1, h // 2), (wd - 1, h // 3), (wd // 2, 0), (wd // 3, h - 2)]
    for x, y in edge:
        assert QColor(focused.pixel(x, y)) == highlight, (x, y)
        assert QColor(unfocused.pixel(x, y)) != highlight, (x, y)
    assert QColor(focused.pixel(3, h // 2)) != highlight   # an outline, not a fill
    # a click on the photo gives it the focus too, and the outline with it
    from PySide6.QtCore import QPoint
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    qtbot.waitUntil(canvas.hasFocus, timeout=TIMEOUT)
    assert QColor(canvas.grab().toImage().pixel(0, h // 2)) == highlight


def test_the_empty_photo_view_shows_its_focus_too(qtbot, tmp_path):
    """Before a photo is opened (the view's hint) the focused view is outlined as well."""
    from test_gui import _settings

    from fader_desktop.main_window import MainWindow
    w = MainWindow(_settings(tmp_path), device="cpu")
    qtbot.addWidget(w)
    canvas = _focused_canvas(w, qtbot)
    assert canvas.original_image() is None
    img = canvas.grab().toImage()
    assert QColor(img.pixel(0, img.height() // 2)) == canvas.palette().color(QPalette.ColorRole.Highlight)


def test_every_toolbar_button_says_what_it_does_in_the_status_bar(editor, qtbot):
    """Hovering a toolbar button shows its status tip; Undo, Redo and Original showed none. Each
    tooltip names the button's shortcut where it has one."""
    w = editor
    tb = w.findChild(QToolBar, "main_toolbar")
    buttons = [b for b in tb.findChildren(QToolButton) if b.isVisible() and b.objectName() != "qt_toolbar_ext_button"]
    names = []
    for b in buttons:
        w.statusBar().clearMessage()
        pos = QPointF(b.width() / 2, b.height() / 2)
        QApplication.sendEvent(b, QEnterEvent(pos, b.mapToGlobal(pos), b.mapToGlobal(pos)))
        names.append(b.text())
        assert w.statusBar().currentMessage(), f"{b.text()}: no status tip"
        QApplication.sendEvent(b, QEvent(QEvent.Type.Leave))
        a = b.defaultAction()
        keys = a.shortcut() if a is not None else QKeySequence()
        if not keys.isEmpty():
            assert keys.toString(QKeySequence.SequenceFormat.NativeText) in b.toolTip(), b.toolTip()
    assert {"Undo", "Redo", "Original"} <= set(names), names
    assert "\\" in w.original_button.toolTip()


def test_a_focused_button_is_ringed_apart_from_the_default_button(editor, qtbot, tmp_path):
    """The Export dialog's Export (its default button: Enter presses it) looked the same focused
    and unfocused on the app's own style (make_application's). Focused, it has a ring of the
    highlight colour inside its outline; the default's outline alone stays thin."""
    import numpy as np

    from fader_desktop.app import OutlinedStyle, dark_palette
    from fader_desktop.dialogs import ExportDialog
    from fader_desktop.workers import qimage_to_numpy
    from PySide6.QtWidgets import QStyleFactory
    app = QApplication.instance()
    style, palette = app.style().name(), app.palette()
    app.setStyle(OutlinedStyle(QStyleFactory.create("Fusion")))
    app.setPalette(dark_palette())
    try:
        d = ExportDialog(tmp_path / "out.jpg", parent=editor)
        qtbot.addWidget(d)
        d.show()
        d.activateWindow()
        qtbot.waitUntil(d.isActiveWindow, timeout=TIMEOUT)
        button = d.export_button
        d.path_edit.setFocus(Qt.FocusReason.TabFocusReason)
        qtbot.waitUntil(d.path_edit.hasFocus, timeout=TIMEOUT)
        assert button.isDefault()
        default = qimage_to_numpy(button.grab().toImage()).astype(int)
        qtbot.keyClick(d.focusWidget(), Qt.Key.Key_Tab)
        while not button.hasFocus():
            qtbot.keyClick(d.focusWidget(), Qt.Key.Key_Tab)
        focused = qimage_to_numpy(button.grab().toImage()).astype(int)
        highlight = np.array(app.palette().color(QPalette.ColorRole.Highlight).getRgb()[:3])

        def ring(img):   # the highlight's pixels in the band 1-2 px inside the button's edge
            h, wd = img.shape[:2]
            band = np.zeros((h, wd), bool)
            band[1:3, 4:-4] = band[-3:-1, 4:-4] = band[4:-4, 1:3] = band[4:-4, -3:-1] = True
            return (np.abs(img[..., :3] - highlight).sum(axis=2) < 30)[band].mean()
        assert ring(focused) > 0.9 and ring(default) < 0.1, (ring(focused), ring(default))
        d.reject()
    finally:
        app.setStyle(style)
        app.setPalette(palette)


def test_a_missed_face_is_marked_with_the_keys(editor, qtbot):
    """View ▸ Mark a missed face by keyboard: the first key shows a box in the middle of the view,
    the arrows move it, [ and ] size it, Enter marks it (searched as a box drawn with the mouse:
    here on the face found already, which is refused in words); Esc still leaves marking."""
    w = editor
    canvas = _focused_canvas(w, qtbot)
    w.act_mark_face.trigger()
    assert canvas.marking() and canvas.hasFocus() and "Enter" in w.statusBar().currentMessage()
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    first = canvas.marked_box()
    side = 0.25 * min(canvas.width(), canvas.height()) / canvas.scale
    assert first is not None and first.width() == pytest.approx(side, rel=0.02)
    assert first.center().x() == pytest.approx(_centre(canvas).x(), abs=1)
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    qtbot.keyClick(canvas, Qt.Key.Key_Down, SHIFT)
    moved = canvas.marked_box()
    assert moved.x() - first.x() == pytest.approx(8 / canvas.scale, rel=0.05)
    assert moved.y() - first.y() == pytest.approx(40 / canvas.scale, rel=0.05)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    larger = canvas.marked_box()
    assert larger.width() == pytest.approx(moved.width() * 1.25, rel=0.01)
    assert larger.center().x() == pytest.approx(moved.center().x(), abs=0.5)
    # onto the face found already: the box placed over it, Enter searches it, and says in words
    # that the face is there already
    face = w._photo.faces[0].box
    target = QPointF((face[0] + face[2]) / 2, (face[1] + face[3]) / 2)
    step = 8 / canvas.scale
    for _ in range(200):
        c = canvas.marked_box().center()
        if abs(c.x() - target.x()) <= step and abs(c.y() - target.y()) <= step:
            break
        key = (Qt.Key.Key_Right if c.x() < target.x() - step else Qt.Key.Key_Left if c.x() > target.x() + step
               else Qt.Key.Key_Down if c.y() < target.y() else Qt.Key.Key_Up)
        qtbot.keyClick(canvas, key)
    while canvas.marked_box().width() < 0.9 * (face[2] - face[0]):
        qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    w.errors.clear()
    with qtbot.waitSignal(canvas.faceMarked, timeout=TIMEOUT) as marked:
        qtbot.keyClick(canvas, Qt.Key.Key_Return)
    assert marked.args[0].contains(target) and not canvas.marking() and canvas.marked_box() is None
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert "found already" in w.errors[0][1], w.errors
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    # Esc leaves marking with a box placed
    w.act_mark_face.trigger()
    qtbot.keyClick(canvas, Qt.Key.Key_Left)
    assert canvas.marked_box() is not None
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert not canvas.marking() and canvas.marked_box() is None
