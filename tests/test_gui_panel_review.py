"""The fader panel as a GUI review found it (fader_desktop/fader_panel.py), driven in the real
window with a tiny real model and the vendored portrait; nothing of ours is mocked.

- a pasted edit or a recipe may hold values beyond a slider's range (core.attributes.value_limits
  accepts three widths past it): the faders showed them clamped to the slider's ends;
- the panel's "Reset all" button reset only the selected face, as Edit ▸ Reset face does;
- a narrow window squeezed the photo view to a few pixels beside the panel.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QGuiApplication, QPalette  # noqa: E402
from PySide6.QtWidgets import QStyle, QStyleOptionSlider  # noqa: E402

from core.attributes import value_limits  # noqa: E402
from core.edit_session import ALL_FACES  # noqa: E402
from core.image_io import load_image, save_image  # noqa: E402
from fader_desktop.fader_panel import SLIDER_STEPS  # noqa: E402
from fader_desktop.workers import qimage_to_numpy  # noqa: E402
from test_gui import editor, preview, shared_window  # noqa: E402,F401  (the fixtures)

TIMEOUT = 60_000


# test_gui's `editor` (its own window in this module): the tiny model (Smiling and Male: slider
# range -1 .. 2) and the portrait open, unedited, with an empty undo history
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def handle_centre_colour(slider) -> np.ndarray:
    """The RGB of the slider's handle at its centre, as painted on screen."""
    opt = QStyleOptionSlider()
    slider.initStyleOption(opt)
    c = slider.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                      QStyle.SubControl.SC_SliderHandle, slider).center()
    img = qimage_to_numpy(slider.grab().toImage())
    scale = img.shape[1] / slider.width()
    return img[int(c.y() * scale), int(c.x() * scale), :3].astype(int)


def test_a_pasted_edit_beyond_the_slider_range_shows_its_values_and_moves_from_there(editor, qtbot):
    """Edit ▸ Paste edit of Smiling 5 / Male -4 (the sliders go -1 .. 2; up to -10 .. 11 is
    accepted): the photo got 5 and -4, but the boxes showed 2.00 and -1.00 and their arrows did
    nothing. The boxes show the values, the sliders stop at their ends with an outward arrow on
    the handle, the tooltips say why; the arrows and the slider move on from there, and showing
    a value never writes one."""
    w = editor
    smiling, male = w.panel.row("Smiling"), w.panel.row("Male")
    assert smiling.spin.soft == (-1.0, 2.0)
    plain = handle_centre_colour(smiling.slider)
    QGuiApplication.clipboard().setText(json.dumps({"format": "fader-recipe", "version": 1,
                                                    "values": {"Smiling": 5.0, "Male": -4.0}}))
    steps = w.undo_stack.count()
    w.act_paste_edit.trigger()
    assert not w.errors and w.undo_stack.count() == steps + 1
    assert w.session.slider("Smiling") == 5.0 and w.session.slider("Male") == -4.0
    assert smiling.spin.value() == 5.0 and male.spin.value() == -4.0            # were 2.00 and -1.00
    assert smiling.slider.value() == SLIDER_STEPS and male.slider.value() == 0   # at the ends
    assert smiling.slider.beyond() == 1 and male.slider.beyond() == -1
    assert "beyond the slider's range -1 … 2" in smiling.spin.toolTip()
    assert "beyond the slider's range" in smiling.slider.toolTip() and "beyond" in male.slider.toolTip()
    assert (smiling.spin.minimum(), smiling.spin.maximum()) == value_limits(smiling.attr)
    # the arrow on the handle is painted, in the highlight colour
    highlight = smiling.slider.palette().color(QPalette.ColorRole.Highlight)
    marked = handle_centre_colour(smiling.slider)
    assert np.abs(marked - [highlight.red(), highlight.green(), highlight.blue()]).max() < 40, marked
    assert np.abs(marked - plain).max() > 40
    assert w.undo_stack.count() == steps + 1 and w.session.slider("Smiling") == 5.0   # showing wrote nothing

    # the box's arrows nudge from the value shown, either way
    smiling.spin.stepUp()
    assert w.session.slider("Smiling") == pytest.approx(5.05) and smiling.spin.value() == pytest.approx(5.05)
    smiling.spin.stepDown()
    smiling.spin.stepDown()
    assert w.session.slider("Smiling") == pytest.approx(4.95)
    # pressing the handle and letting go without moving it changes nothing
    smiling.slider.setSliderDown(True)
    smiling.slider.setSliderDown(False)
    assert w.session.slider("Smiling") == pytest.approx(4.95)
    # moving the slider takes the value back into its range, and the marks go
    smiling.slider.setValue(SLIDER_STEPS // 2)
    assert w.session.slider("Smiling") == pytest.approx(0.5) and smiling.spin.value() == pytest.approx(0.5)
    assert smiling.slider.beyond() == 0 and "beyond the slider's range" not in smiling.spin.toolTip()
    assert "beyond" not in smiling.slider.toolTip()
    assert smiling.spin.soft == (-1.0, 2.0)
    # undo shows the value beyond the range again
    w.undo_stack.undo()
    assert w.session.slider("Smiling") == pytest.approx(4.95) and smiling.spin.value() == pytest.approx(4.95)
    assert smiling.slider.beyond() == 1 and smiling.slider.value() == SLIDER_STEPS
    w.reset_all()
    assert smiling.spin.value() == w.session.own_slider("Smiling") and smiling.slider.beyond() == 0


def test_the_panels_reset_button_says_which_faces_it_resets(editor, qtbot, tmp_path, portrait_path):
    """The panel's button said "Reset all" but reset only the selected face (Edit ▸ Reset all
    faces resets every face). It says "Reset face" and resets the selected face; under All faces
    it says "Reset all faces" and resets every face, as Edit ▸ Reset face does there."""
    w = editor
    button = w.panel.reset_all_button
    assert button.text() == "Reset face" and "selected face" in button.toolTip()
    rgb = load_image(portrait_path)
    save_image(tmp_path / "two.png", np.concatenate([rgb, rgb[:, ::-1]], axis=1))
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(tmp_path / "two.png")
    assert len(w._photo.faces) == 2
    s = w.session
    for face in (0, 1):
        s.set_slider("Smiling", 1.5, faces=[face])
    s.select(1)
    assert button.text() == "Reset face"
    button.click()
    assert not s.is_modified(1) and s.is_modified(0)        # only the selected face
    assert w.undo_stack.undoText() == "Reset face 2"   # which one, with two in the photo
    w.undo_stack.undo()
    s.select(ALL_FACES)
    assert button.text() == "Reset all faces" and "every face" in button.toolTip()
    button.click()
    assert not s.is_modified(0) and not s.is_modified(1)    # every face
    s.select(0)
    assert button.text() == "Reset face"


def test_a_small_window_keeps_the_photo_in_view(editor, qtbot):
    """At 320x240 the panel (260 px at least, what its faders need) left the photo view ~10 px
    wide. A desktop photo editor keeps its photo view a usable size: the window's minimum size
    grows to hold the view and the panel. The panel cannot give the room itself (its rows need
    their 260 px); the photo view has a minimum size instead (MainWindow.__init__)."""
    w = editor
    try:
        w.resize(320, 240)
        qtbot.wait(100)
        assert w.panel.isVisible() and w.panel.width() >= w.panel.minimumWidth()
        assert w.canvas.width() >= 200 and w.canvas.height() >= 100, (w.canvas.width(), w.canvas.height())
    finally:
        w.resize(1100, 760)


def test_a_pasted_edit_with_weights_or_an_index_shows_on_the_faders(editor, qtbot):
    """A recipe may give an attribute of more than two values as a list of weights ("Hair":
    [0, 1, 0]) or the index of a pure value ("Hair": 2), and a two-valued one as two weights
    ("Male": [0.25, 0.75]): pasting them raised TypeError in the panel (the preview never came),
    and an index showed as strength 2 towards the face's own value. The faders show the move that
    reaches the value (combo: the value moved to; slider: how far), a mix that no such move
    reaches is shown as the nearest one and said so, and moving the fader goes on from there."""
    from core.attributes import towards
    w = editor
    hair, male = w.panel.row("Hair"), w.panel.row("Male")
    own = [float(x) for x in w.session.own[0]["Hair"]]
    other = next(j for j in range(3) if own[j] < 0.5)   # a value the face does not have
    before = preview(w)

    def paste(values) -> None:
        QGuiApplication.clipboard().setText(json.dumps({"format": "fader-recipe", "version": 1, "values": values}))
        w.act_paste_edit.trigger()
        assert not w.errors, w.errors
        qtbot.waitUntil(w.preview_current, timeout=TIMEOUT)

    pure = [1.0 if j == other else 0.0 for j in range(3)]
    paste({"Hair": pure, "Male": [0.25, 0.75]})
    assert hair.combo.currentIndex() == other and hair.spin.value() == pytest.approx(1.0)
    assert male.spin.value() == pytest.approx(0.75)
    assert "mix" not in hair.slider.toolTip()
    assert not np.array_equal(preview(w), before)

    paste({"Hair": other})                              # the index of the same pure value
    assert hair.combo.currentIndex() == other and hair.spin.value() == pytest.approx(1.0)

    half = towards(own, other, 0.5)                     # half-way there: reached exactly
    paste({"Hair": half})
    assert hair.combo.currentIndex() == other and hair.spin.value() == pytest.approx(0.5)
    assert "mix" not in hair.slider.toolTip()

    third = next(j for j in range(3) if j != other and own[j] < 0.5) if sum(x < 0.5 for x in own) > 1 else None
    mix = [0.2, 0.3, 0.5] if third is None else [0.0] * 3
    if third is not None:
        mix[other], mix[third] = 0.6, 0.4
    paste({"Hair": mix})                                # no single move reaches it: the nearest one
    assert "mix of its values" in hair.slider.toolTip()
    steps = w.undo_stack.count()
    assert w.session.slider("Hair") == tuple(mix)       # showing it wrote nothing
    hair.slider.setValue(SLIDER_STEPS // 4)             # moving the fader replaces the mix
    assert w.undo_stack.count() == steps + 1
    moved = w.session.slider("Hair")
    assert moved.target == hair.combo.currentIndex() and moved.strength == pytest.approx(0.25, abs=0.01)
    assert "mix" not in hair.slider.toolTip()


def test_a_value_typed_beyond_the_slider_is_taken_as_typed_and_the_arrows_stop_at_its_ends(editor, qtbot):
    """3 typed into Smiling's box (the slider goes -1 .. 2) was clamped to 2 without a word. It is
    now taken, as a pasted 3 is (up to value_limits), and shown beyond the slider's end; the box's
    arrows still stop at the slider's ends, and a value past what the model accepts cannot be typed."""
    from PySide6.QtCore import Qt
    w = editor
    row = w.panel.row("Smiling")
    box = row.spin.lineEdit()
    row.spin.setFocus()
    row.spin.selectAll()
    qtbot.keyClicks(box, "3")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: w.session.slider("Smiling") == pytest.approx(3.0), timeout=TIMEOUT)
    assert row.spin.value() == pytest.approx(3.0) and row.slider.beyond() == 1
    assert "is at 3.00, beyond the slider's range -1 … 2" in row.spin.toolTip()
    # the arrows from inside the range stop at its end
    row.spin.setValue(2.0)                  # the slider's end
    assert w.session.slider("Smiling") == pytest.approx(2.0)
    steps = w.undo_stack.count()
    row.spin.stepUp()
    assert row.spin.value() == pytest.approx(2.0) and w.session.slider("Smiling") == pytest.approx(2.0)
    assert w.undo_stack.count() == steps and "up to -10 … 11" in row.spin.toolTip()
    # past the accepted values the keystroke is refused (Qt's own validation)
    row.spin.selectAll()
    qtbot.keyClicks(box, "12")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert w.session.slider("Smiling") <= value_limits(row.attr)[1]
    # a value typed, then an arrow key: the step starts from what was typed (it started from the old value)
    row.spin.setValue(0.0)
    row.spin.selectAll()
    qtbot.keyClicks(box, "1.5")
    qtbot.keyClick(box, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: w.session.slider("Smiling") == pytest.approx(1.55), timeout=TIMEOUT)

