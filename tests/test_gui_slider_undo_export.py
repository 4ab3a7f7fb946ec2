"""Defects a QA walk of the real window found, driven as a user meets them (the real MainWindow, the
tiny test model, the vendored portrait; nothing of ours is mocked):

- every arrow-key step on a focused fader was its own undo step (40 steps, 40 Ctrl+Z);
- the Export dialog said nothing about dropping transparency or 16 bits: the status bar said it
  once the file was written;
- with no face found, the greyed-out faders still showed their groove filled in the highlight
  colour, and the greyed-out Show face boxes tool still looked pressed.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QToolBar  # noqa: E402

from core.attributes import Attribute  # noqa: E402
from fader_desktop import fader_panel  # noqa: E402
from fader_desktop.dialogs import ExportDialog  # noqa: E402
from fader_desktop.fader_panel import FaderPanel  # noqa: E402
from fader_desktop.workers import qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the window fixtures and helpers of tests/test_gui.py
from test_gui import TIMEOUT, editor, original, preview, shared_window  # noqa: E402,F401


def away_from_end(slider):
    """(the arrow key, the page key) that move `slider` away from its nearer end."""
    up = slider.value() < (slider.minimum() + slider.maximum()) / 2
    return (Qt.Key.Key_Right, Qt.Key.Key_PageUp) if up else (Qt.Key.Key_Left, Qt.Key.Key_PageDown)


# -- 1. keyboard steps on a fader: one undo step per run ------------------------------------------

def test_a_run_of_arrow_key_steps_on_a_fader_is_one_undo_step(editor, qtbot):
    """QA: holding an arrow key on a fader for 40 steps took 40 Ctrl+Z. Steps on one fader with no
    pause longer than STEP_MERGE_SECONDS (and no other edit) are one undo step, as a drag is."""
    w = editor
    orig = original(w)
    row = w.panel.row("Smiling")
    slider = row.slider
    start, value = slider.value(), row.spin.value()
    arrow, page = away_from_end(slider)
    slider.setFocus()
    for key in [arrow] * 6 + [page]:
        qtbot.keyClick(slider, key)
    assert slider.value() != start
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    assert (w.undo_stack.count(), w.undo_stack.index()) == (1, 1)
    w.act_undo.trigger()   # one Ctrl+Z
    assert slider.value() == start and row.spin.value() == value
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w), orig), timeout=TIMEOUT)
    assert not w.session.is_modified()
    # the number box's arrow keys are steps of the same fader
    key = Qt.Key.Key_Up if value < 1.5 else Qt.Key.Key_Down
    row.spin.setFocus()
    for _ in range(4):
        qtbot.keyClick(row.spin, key)
    assert row.spin.value() == pytest.approx(value + (0.2 if key == Qt.Key.Key_Up else -0.2), abs=1e-6)
    assert (w.undo_stack.count(), w.undo_stack.index()) == (1, 1)
    w.act_undo.trigger()
    assert row.spin.value() == value and slider.value() == start


def test_a_step_on_another_fader_or_after_a_pause_is_its_own_undo_step(editor, qtbot, monkeypatch):
    """The run of steps ends with a step on another fader, an edit in between, or a pause: each
    of those is an undo step of its own, and Ctrl+Z goes back through them one at a time."""
    w = editor
    smiling, male = w.panel.row("Smiling").slider, w.panel.row("Male").slider
    s_key, _ = away_from_end(smiling)
    m_key, _ = away_from_end(male)
    s0, m0 = smiling.value(), male.value()
    qtbot.keyClick(smiling, s_key)
    qtbot.keyClick(smiling, s_key)
    assert w.undo_stack.count() == 1
    qtbot.keyClick(male, m_key)            # another fader
    assert w.undo_stack.count() == 2
    qtbot.keyClick(smiling, s_key)         # back on the first, its run ended by the edit between
    assert w.undo_stack.count() == 3
    s3 = smiling.value()
    window = fader_panel.STEP_MERGE_SECONDS
    monkeypatch.setattr(fader_panel, "STEP_MERGE_SECONDS", 0.2)   # not to wait a whole second
    qtbot.wait(300)                        # a pause longer than the merge window
    qtbot.keyClick(smiling, s_key)
    assert w.undo_stack.count() == 4
    monkeypatch.setattr(fader_panel, "STEP_MERGE_SECONDS", window)
    qtbot.keyClick(smiling, s_key)         # ... and a run again after it
    assert w.undo_stack.count() == 4
    w.act_undo.trigger()
    assert smiling.value() == s3
    w.act_undo.trigger()
    assert smiling.value() == s0 + (20 if s_key == Qt.Key.Key_Right else -20)
    w.act_undo.trigger()
    assert male.value() == m0
    w.act_undo.trigger()
    assert (smiling.value(), male.value()) == (s0, m0) and not w.session.is_modified()


# -- 2. the Export dialog says what the format cannot keep, before writing ------------------------

def export_dialog_notes(w, formats) -> dict:
    """File ▸ Export…, the formats chosen in turn, then Cancel: {format: (note shown, its text,
    the path the dialog would write)}."""
    seen = {}

    def drive():
        d = QApplication.activeModalWidget()
        if not isinstance(d, ExportDialog):
            QTimer.singleShot(20, drive)
            return
        try:
            for fmt in formats:
                d.format_combo.setCurrentIndex(d.format_combo.findText(fmt))
                note = getattr(d, "loss_note", None)
                seen[fmt] = (note is not None and note.isVisibleTo(d), note.text() if note is not None else "",
                             d.result_path())
        finally:
            d.reject()   # Cancel
    QTimer.singleShot(20, drive)
    w.act_export.trigger()
    return seen


def open_photo(w, qtbot, path) -> None:
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    qtbot.waitUntil(lambda: not w._busy, timeout=TIMEOUT)


def faceless_png(path, alpha: bool = True, deep: bool = False):
    """A small PNG with no face: a colour ramp, its top rows transparent (`alpha`), 16 bits a
    channel (`deep`)."""
    import cv2
    y, x = np.mgrid[0:96, 0:128]
    bgr = np.dstack([x * 2, y * 2, (x + y)]).astype(np.uint8)
    img = np.dstack([bgr, np.where(y < 20, 0, 255).astype(np.uint8)]) if alpha else bgr
    cv2.imwrite(str(path), img.astype(np.uint16) * 257 if deep else img)
    return path


def test_the_export_dialog_says_before_writing_what_the_format_cannot_keep(editor, qtbot, tmp_path):
    """QA: a transparent PNG exported as JPEG said "transparency dropped" in the status bar only
    after the file was written. The dialog says it under the format, for the format chosen (PNG
    keeps it: no word), and Cancel then writes nothing."""
    w = editor
    folder = tmp_path / "photos"
    folder.mkdir()
    open_photo(w, qtbot, faceless_png(folder / "cutout.png"))
    seen = export_dialog_notes(w, ["JPEG", "PNG", "BMP", "JPEG"])
    shown, text, jpeg_path = seen["JPEG"]
    assert shown and "transparency dropped (JPEG has none: transparent parts are white)" in text, seen
    assert "transparency dropped (BMP has none: transparent parts are white)" in seen["BMP"][1]
    assert seen["PNG"][0] is False, seen   # nothing lost: no note
    assert jpeg_path.suffix == ".jpg"
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    assert sorted(p.name for p in folder.iterdir()) == ["cutout.png"]   # cancelled: nothing written
    assert not jpeg_path.exists()
    # 16 bits: no export writes more than 8 (said for every format), but an unedited PNG
    # exported as PNG is the file itself, copied
    open_photo(w, qtbot, faceless_png(folder / "deep.png", alpha=False, deep=True))
    seen = export_dialog_notes(w, ["JPEG", "PNG"])
    assert seen["JPEG"][0] and "more than 8 bits per channel, written with 8" in seen["JPEG"][1], seen
    assert seen["PNG"][0] is False, seen
    # QA: "A PNG file cannot keep all of this photo: more than 8 bits…" blamed the format for what
    # the app does; and a BMP's notes each said "(a BMP export cannot keep it)"
    assert seen["JPEG"][1].startswith("⚠ This export does not keep all of the photo: "), seen


def test_the_notes_a_format_cannot_keep_are_said_once():
    from fader_desktop.dialogs import loss_text
    notes = ["transparency dropped (BMP has none: transparent parts are white)",
             "EXIF metadata dropped (a BMP export cannot keep it)", "colour profile dropped (a BMP export cannot keep it)"]
    assert loss_text(notes) == ("transparency dropped (BMP has none: transparent parts are white); "
                                "EXIF metadata, colour profile dropped (a BMP export cannot keep them)")
    assert loss_text(notes[1:2]) == notes[1]


# -- 3. greyed out looks greyed out -----------------------------------------------------------------

def saturated(img) -> int:
    """How many pixels of a grab are coloured (the highlight), not grey."""
    rgb = qimage_to_numpy(img.toImage()).astype(int)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).sum())


def test_a_disabled_fader_shows_no_filled_groove(qtbot):
    """QA: with no face found the faders are greyed out, but their groove was still filled up to the
    handle in the highlight colour (the app's dark palette has the same blue for disabled), so
    they looked live."""
    from fader_desktop.app import dark_palette
    style = QApplication.style().name()
    QApplication.setStyle("Fusion")     # the app's own style and palette (make_application)
    try:
        panel = FaderPanel()
        qtbot.addWidget(panel)
        panel.setPalette(dark_palette())
        panel.set_attributes([Attribute("Smiling", ("no", "yes"), (-1.0, 2.0))])
        panel.resize(300, 400)
        panel.show()
        row = panel.row("Smiling")
        slider = row.slider
        assert not row.isEnabled() and slider.value() > 200   # no face: the groove has a part to fill
        disabled = slider.grab()
        row.setEnabled(True)
        enabled = slider.grab()
        assert saturated(enabled) > 20, "the enabled fader's filled groove should be seen"
        assert saturated(disabled) == 0, saturated(disabled)
    finally:
        QApplication.setStyle(style)


def test_show_face_boxes_is_not_shown_on_while_there_is_no_face(editor, qtbot, tmp_path, portrait_path):
    """QA: with no face found, Show face boxes was greyed out but still looked pressed. It shows
    off while there is nothing to outline; the user's choice comes back with the next face."""
    w = editor
    tool = w.findChild(QToolBar, "main_toolbar").widgetForAction(w.act_boxes)
    w.set_show_boxes(True)
    w.act_boxes.setChecked(True)
    assert w.act_boxes.isEnabled() and tool.isChecked()
    open_photo(w, qtbot, faceless_png(tmp_path / "wall.png", alpha=False))
    assert not w._photo.faces and not w.panel.row("Smiling").isEnabled()
    assert not w.act_boxes.isEnabled()
    assert not tool.isChecked() and not w.act_boxes.isChecked()
    assert w.settings.show_boxes   # the user's choice is kept
    open_photo(w, qtbot, portrait_path)
    assert w.act_boxes.isEnabled() and w.act_boxes.isChecked() and tool.isChecked()
