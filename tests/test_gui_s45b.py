"""An edited photo opened again with another model (File > Open model, the Device menu) is shown
as its edit, from the old model's view straight to the new one's: the window painted the photo
UNEDITED in between (the reopened photo's first frame, at the new model's own values), and the
edit came back a render later: a flash of the edit disappearing.

The real MainWindow and tiny test models; every paint after the switch is read from the window's
backing store as the screen gets it (tests/test_gui_s45.py). Nothing of ours is mocked.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from fader_desktop.workers import qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from conftest import make_tiny_model  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

LEVELS = 2   # a device switch decodes in another batch: pixels may round one level the other way


def settled(w, qtbot) -> np.ndarray:
    """The view once nothing is left to render (what the user ends up looking at)."""
    qtbot.waitUntil(lambda: not w._rescale.isActive() and w.jobs.is_idle() and w.preview_current()
                    and not w._busy, timeout=TIMEOUT)
    for _ in range(5):
        QApplication.processEvents()
    return qimage_to_numpy(w.canvas.grab().toImage())


def shown_rows(canvas) -> np.ndarray:
    """The canvas's rows but for the busy badge's ("Loading model…"), which paints while loading."""
    top = canvas.height() - canvas.fontMetrics().height() - 28
    rows = np.ones(canvas.height(), bool)
    rows[top - 2:top + canvas.fontMetrics().height() + 8] = False
    return rows


def paints_during(w, qtbot, switch) -> tuple:
    """Every frame the canvas painted from `switch()` until the view settled, and the settled view."""
    canvas, frames = w.canvas, []

    def on_paint():
        # what the paint put in the window's backing store (a grab would paint again)
        pos = canvas.mapTo(w, canvas.rect().topLeft())
        shot = QGuiApplication.primaryScreen().grabWindow(w.winId(), pos.x(), pos.y(), canvas.width(),
                                                          canvas.height())
        frames.append(qimage_to_numpy(shot.toImage()))
    canvas.painted.connect(on_paint)
    try:
        with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
            switch()
        final = settled(w, qtbot)
    finally:
        canvas.painted.disconnect(on_paint)
    return frames, final


def off(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b).max(axis=2)[rows].max())


def check_no_flash(what: str, frames: list, before: np.ndarray, after: np.ndarray, unedited: np.ndarray,
                   rows: np.ndarray) -> None:
    assert frames, f"{what}: nothing was painted"
    for k, frame in enumerate(frames):
        if off(frame, unedited, rows) <= LEVELS:
            pytest.fail(f"{what}: paint {k + 1} of {len(frames)} showed the photo unedited, between the "
                        f"edited view before the switch and the edited view after it")
        assert min(off(frame, before, rows), off(frame, after, rows)) <= LEVELS, (
            f"{what}: paint {k + 1} of {len(frames)} is neither the view before the switch nor the one after "
            f"({off(frame, before, rows)} and {off(frame, after, rows)} levels off)")


def test_an_edited_photo_keeps_its_edit_on_screen_through_a_model_or_device_switch(editor, qtbot, tmp_path):
    """The portrait shown at 100 % or larger (no first frame comes with the reopened photo): faders
    moved and a brush stroke, then the device and the model changed."""
    w = editor
    rows = shown_rows(w.canvas)
    unedited = settled(w, qtbot)
    assert w.canvas.preview_scale() == 1.0
    w.panel.row("Smiling").spin.setValue(2.0 if w.panel.row("Smiling").spin.value() < 1 else -1.0)
    w.panel.row("Male").spin.setValue(2.0 if w.panel.row("Male").spin.value() < 1 else -1.0)
    x0, y0, x1, y1 = w._photo.faces[0].box
    w.act_brush.trigger()
    w.canvas.set_brush_size(30 * w.canvas.scale)
    at = [w.canvas.to_widget(QPointF(x0 + 0.85 * (x1 - x0), y0 + t * (y1 - y0))).toPoint()
          for t in np.linspace(0.1, 0.9, 7)]
    qtbot.mousePress(w.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[0])
    for p in at[1:]:
        qtbot.mouseMove(w.canvas, p)
    qtbot.mouseRelease(w.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at[-1])
    w.act_brush.trigger()   # brush off: its tint would cover what is compared
    assert any(m is not None for m in w.session.masks), "the stroke should have painted a mask"
    edited = settled(w, qtbot)
    assert off(edited, unedited, rows) > 20

    other = "auto" if w.device == "cpu" else "cpu"
    frames, after = paints_during(w, qtbot, lambda: w.device_actions[other].trigger())
    assert w.session.is_modified() and w.undo_stack.canUndo(), "the device switch keeps the edit"
    check_no_flash("Device switched", frames, edited, after, unedited, rows)

    same_attrs = make_tiny_model(tmp_path / "same_attrs.fader", seed=2)
    frames, later = paints_during(w, qtbot, lambda: w.load_model(same_attrs))
    assert w.session.is_modified() and w.undo_stack.canUndo(), "a model with the same attributes keeps the edit"
    assert off(later, after, rows) > 5, "another model renders the edit otherwise"
    check_no_flash("Model switched", frames, after, later, unedited, rows)


def test_a_zoomed_out_edited_photo_is_first_shown_with_its_edit_after_a_model_switch(
        editor, qtbot, tmp_path, tiny_model_path_b):
    """Zoomed out, the reopened photo comes with its first frame: it is rendered at the edit carried
    over, and is what the edit renders as. A model with other attributes drops the edit (the
    window asked first): the view goes from the edit to the photo unedited, and stays there."""
    w = editor
    portrait = cv2.imread(str(w._photo.path))
    big = cv2.resize(portrait, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(tmp_path / "big.png"), big)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(tmp_path / "big.png")
    rows = shown_rows(w.canvas)
    unedited = settled(w, qtbot)
    assert w._photo.faces and w.canvas.preview_scale() < 0.7, "the photo should be shown zoomed out"
    w.panel.row("Smiling").spin.setValue(2.0 if w.panel.row("Smiling").spin.value() < 1 else -1.0)
    w.panel.row("Male").spin.setValue(2.0 if w.panel.row("Male").spin.value() < 1 else -1.0)
    edited = settled(w, qtbot)
    assert off(edited, unedited, rows) > 20

    same_attrs = make_tiny_model(tmp_path / "same_attrs.fader", seed=2)
    frames, after = paints_during(w, qtbot, lambda: w.load_model(same_attrs))
    assert w.session.is_modified() and w.undo_stack.canUndo(), "a model with the same attributes keeps the edit"
    assert off(after, edited, rows) > 5, "another model renders the edit otherwise"
    check_no_flash("Model switched", frames, edited, after, unedited, rows)
    # what was shown is what the edit renders as with the new model: undone and redone, the same
    # (to a level: the first render decoded the edit in one batch with the faces' reconstruction,
    # the later one alone, and float results that differ by ~1e-5 can round a pixel the other way)
    w.undo_stack.undo()
    settled(w, qtbot)
    w.undo_stack.redo()
    assert off(settled(w, qtbot), after, rows) <= 1, "the first frame after the switch is not the edit's render"

    # other attributes: the edit is dropped, and the view goes straight to the photo unedited
    frames, dropped = paints_during(w, qtbot, lambda: w.load_model(tiny_model_path_b))
    assert not w.session.is_modified() and not w.undo_stack.canUndo(), "other attributes drop the edit"
    assert off(dropped, unedited, rows) == 0, "the photo is shown unedited once the edit is dropped"
    for k, frame in enumerate(frames):
        assert min(off(frame, after, rows), off(frame, dropped, rows)) <= LEVELS, (
            f"paint {k + 1} of {len(frames)} is neither the edit before the switch nor the photo unedited")
    qtbot.wait(300)   # nothing more comes: the edit does not stay on show
    assert off(qimage_to_numpy(w.canvas.grab().toImage()), unedited, rows) == 0
