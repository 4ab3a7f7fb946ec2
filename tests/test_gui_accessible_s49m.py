"""What a screen reader (Orca, Narrator) says of the window and the dialogs, read from Qt's own
accessibility tree (QAccessible), as the platforms' bridges read it.

Found: each fader's number box, the Hair fader's value combo, the ↺ reset buttons ("↺"), the
photo view, the Export dialog's quality slider and box, the sweep's "to" and "steps" boxes, the
batch recipe's field and the training dialog's steps and processes boxes had no name (a bare number
was read); a fader said its raw position (667 of 1000) and its tooltip's markup
("<div style=…>"), never "yes" or "no" or the value its box shows."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")
from conftest import app_dialogs  # noqa: E402

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QAccessible  # noqa: E402
from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QComboBox,  # noqa: E402
                               QLineEdit, QPlainTextEdit, QScrollBar, QTextEdit, QWidget)
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

from fader_desktop.canvas import PhotoCanvas  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAME, DESCRIPTION, VALUE = QAccessible.Text.Name, QAccessible.Text.Description, QAccessible.Text.Value
KINDS = (QAbstractButton, QAbstractSlider, QLineEdit, QComboBox, QAbstractSpinBox, QTextEdit, QPlainTextEdit,
         PhotoCanvas)


def _read(w, text) -> str:
    return QAccessible.queryAccessibleInterface(w).text(text)


def _label_relations(w) -> list:
    """The labels a screen reader takes from a widget's "labelled by" relation (its buddy labels)."""
    return [other.text(NAME) for other, rel in QAccessible.queryAccessibleInterface(w).relations()
            if rel & QAccessible.RelationFlag.Label]


def _interactive(top) -> list:
    """The enabled widgets of `top` a user works with. Left out: a spin box's or combo box's own
    line edit (read as the box), a scroll area's scroll bar (read by its role), and the toolbar's
    extension button Qt adds itself (see the report: it is made in main_window)."""
    found = []
    for w in top.findChildren(QWidget):
        if not isinstance(w, KINDS) or not w.isVisibleTo(top) or not w.isEnabled() or w.window() is not top:
            continue
        if isinstance(w, QScrollBar) or w.objectName() == "qt_toolbar_ext_button":
            continue
        if isinstance(w, QLineEdit) and isinstance(w.parent(), (QAbstractSpinBox, QComboBox)):
            continue
        found.append(w)
    return found


def _unnamed(top) -> list:
    """Widgets a screen reader names with nothing. A combo box's Name is its current value on
    Linux (Qt reads the label from the buddy relation there): it needs a buddy label."""
    missing = []
    for w in _interactive(top):
        if isinstance(w, QComboBox):
            if not [t for t in _label_relations(w) if t.strip()]:
                missing.append(f"{type(w).__name__} showing {w.currentText()!r}: no label")
        elif not _read(w, NAME).strip():
            missing.append(f"{type(w).__name__} {w.objectName()!r} (value {_read(w, VALUE)!r}, "
                           f"tooltip {w.toolTip()[:40]!r})")
    return missing


def test_every_control_of_the_window_with_a_photo_open_is_named(editor):
    w = editor
    found = _interactive(w)
    assert w.canvas in found and w.panel.row("Smiling").slider in found, [type(x).__name__ for x in found]
    assert not _unnamed(w), _unnamed(w)


def test_each_faders_parts_say_their_attribute_and_the_photo_view_what_it_shows(editor):
    w = editor
    for name in ("Smiling", "Male", "Hair"):
        row = w.panel.row(name)
        assert _read(row.slider, NAME) == name
        assert name in _read(row.spin, NAME), _read(row.spin, NAME)
        assert _read(row.reset_button, NAME) == f"Reset {name}", _read(row.reset_button, NAME)
        for part in (row.slider, row.spin, row.reset_button):   # words, not the tooltip's markup
            assert "<" not in _read(part, DESCRIPTION), _read(part, DESCRIPTION)
    hair = w.panel.row("Hair").combo
    assert "towards" in _label_relations(hair) and "Hair" in hair.accessibleName()
    assert _label_relations(w.panel.face_combo) == ["Face"]
    assert _read(w.canvas, NAME) == "Photo"
    h, wd = w._photo.height, w._photo.width
    assert _read(w.canvas, DESCRIPTION).startswith(f"{w._photo.path.name}, {wd} by {h} pixels; 1 face found"), _read(w.canvas, DESCRIPTION)
    w.canvas.set_split(True)
    try:
        assert "before/after split" in _read(w.canvas, DESCRIPTION)
    finally:
        w.canvas.set_split(False)
    assert "split" not in _read(w.canvas, DESCRIPTION)


def test_moving_a_fader_changes_what_is_read_in_the_faders_own_words(editor, qtbot):
    """The description says the value as the box shows it, and as the ends say it (no / yes)."""
    w = editor
    row = w.panel.row("Smiling")
    no, yes = row.attr.values
    slider = row.slider
    slider.setFocus()
    before = (_read(slider, NAME), _read(slider, VALUE), _read(slider, DESCRIPTION))
    assert before[2].startswith(f"{row.spin.text()}, "), before
    assert f"{no} at 0, {yes} at 1" in before[2], before
    qtbot.keyClick(slider, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: row.spin.text() == "2.00", timeout=TIMEOUT)
    end = _read(slider, DESCRIPTION)
    assert end != before[2] and end.startswith(f"2.00, past {yes}."), end
    assert _read(slider, VALUE) != before[1] and _read(slider, NAME) == "Smiling"
    assert _read(row.spin, DESCRIPTION).startswith(f"2.00, past {yes}.")
    row.spin.setValue(1.0)   # typed in the box: the slider says it too
    qtbot.waitUntil(lambda: _read(slider, DESCRIPTION).startswith(f"1.00, {yes}."), timeout=TIMEOUT)
    row.spin.setValue(0.4)
    qtbot.waitUntil(lambda: _read(slider, DESCRIPTION).startswith(f"0.40, between {no} and {yes}."),
                    timeout=TIMEOUT)
    hair = w.panel.row("Hair")
    hair.combo.setCurrentIndex((hair.combo.currentIndex() + 1) % hair.combo.count())
    target = hair.combo.currentText()
    qtbot.waitUntil(lambda: _read(hair.slider, DESCRIPTION).startswith(f"{hair.spin.text()} towards {target}"),
                    timeout=TIMEOUT)


@pytest.fixture
def dialogs(qtbot, tmp_path, tiny_model_path):
    """Every dialog, built as the app builds it."""
    with app_dialogs(qtbot, tmp_path, tiny_model_path, info=True) as made:
        yield made


def test_every_field_of_every_dialog_is_named(dialogs):
    for name, d in dialogs.items():
        assert _interactive(d), name
        assert not _unnamed(d), (name, _unnamed(d))
    export, sweep = dialogs["export"], dialogs["sweep"]
    assert _read(export.quality_spin, NAME) == _read(export.quality_slider, NAME) == "Quality"
    assert [_read(b, NAME) for b in (sweep.lo, sweep.hi, sweep.steps)] == \
        ["Values from", "Values to", "Number of steps"]
    training = dialogs["training"]
    assert _read(training.log_view, NAME) == "Training log" and _read(training.loss_plot, NAME) == "Training losses"


def test_the_toolbars_more_tools_button_of_a_narrow_window_is_named(editor, qtbot):
    """Qt's own "»" button (the tools a narrow window cannot show) had no text, so no name."""
    w = editor
    size = w.size()
    try:
        w.resize(360, size.height())
        more = w.findChild(QAbstractButton, "qt_toolbar_ext_button")
        qtbot.waitUntil(lambda: more.isVisible(), timeout=TIMEOUT)
        assert _read(more, NAME) == "More tools", _read(more, NAME)
    finally:
        w.resize(size)
