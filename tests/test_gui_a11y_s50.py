"""What a screen reader (Orca, Narrator) gets, read from Qt's accessibility tree as the platforms'
bridges read it: the words of a tooltip rather than its markup, a fader's value rather than its
slider's raw position, and the photo view's file name.

Found: a widget without a description of its own gave its tooltip as description, and a literal
tooltip is markup ("<div style=…>"): the fader's title, its "reading unsure" note and its ends
("← no"), the training dialog's classifier field and note and its Open result button. A fader's
value was its slider's position (667 of 0 … 1000), never the 0.40 its box shows. The photo view
said the photo's size but not which photo."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QProcess, Qt  # noqa: E402
from PySide6.QtGui import QAccessible, QImage  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from core.attributes import Attribute  # noqa: E402
from core.edit_session import EditSession  # noqa: E402
from fader_desktop.canvas import PhotoCanvas  # noqa: E402
from fader_desktop.fader_panel import FaderPanel  # noqa: E402
from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

NAME, DESCRIPTION, VALUE = QAccessible.Text.Name, QAccessible.Text.Description, QAccessible.Text.Value
ATTRS = [Attribute("Smiling", ("no", "yes"), (-1.0, 2.0)), Attribute("Hair", ("black", "blond", "brown"), (0.0, 1.0))]


def _read(w, text) -> str:
    return QAccessible.queryAccessibleInterface(w).text(text)


def _markup_read(top) -> list:
    """The widgets of `top` whose description, as a screen reader gets it, holds markup."""
    return [f"{type(w).__name__} {_read(w, NAME)!r}: {_read(w, DESCRIPTION)[:50]!r}"
            for w in [top] + top.findChildren(QWidget) if "<div" in _read(w, DESCRIPTION)]


@pytest.fixture
def panel(qtbot):
    """The fader panel showing one face, whose Smiling the classifier read as "no", unsure (0.6)."""
    p = FaderPanel()
    qtbot.addWidget(p)
    p.set_attributes(ATTRS)
    session = EditSession(ATTRS, [{"Smiling": 0.0, "Hair": [1.0, 0.0, 0.0]}], certainty=[{"Smiling": 0.6}])
    p.set_session(session)
    p.resize(320, 500)
    p.show()
    return p


def test_a_faders_notes_and_labels_give_their_words_not_the_tooltips_markup(panel):
    row = panel.row("Smiling")
    assert row.unsure_label.isVisible()
    said = _read(row.unsure_label, DESCRIPTION)
    assert said.startswith("The model reads this face as no (60% sure): unsure, so check it"), said
    assert _read(row.title, DESCRIPTION) == "Smiling: values no, yes; slider range -1 to 2"
    assert not _markup_read(panel), _markup_read(panel)
    # the slider keeps its own description, the value in words
    assert _read(row.slider, DESCRIPTION).startswith("0.00, no."), _read(row.slider, DESCRIPTION)


def test_a_faders_value_is_the_faders_not_the_sliders_position(panel, qtbot):
    row = panel.row("Smiling")
    iface = QAccessible.queryAccessibleInterface(row.slider)
    assert _read(row.slider, NAME) == "Smiling"
    assert iface.role() == QAccessible.Role.Slider
    row.spin.setValue(0.4)   # typed in the box
    assert _read(row.slider, VALUE) == "0.40, between no and yes"
    value = iface.valueInterface()
    assert value.currentValue() == pytest.approx(0.4)
    assert (value.minimumValue(), value.maximumValue()) == (-1.0, 2.0)
    assert value.minimumStepSize() == pytest.approx(0.03)   # an arrow key's step: a hundredth of -1 … 2
    row.slider.setFocus()
    qtbot.keyClick(row.slider, Qt.Key.Key_End)
    assert row.spin.text() == "2.00"
    assert _read(row.slider, VALUE) == "2.00, past yes" and value.currentValue() == pytest.approx(2.0)
    # a screen reader that sets the value (Orca's, Narrator's value field) edits the face
    value.setCurrentValue(1.0)
    assert row.spin.text() == "1.00" and panel.session.slider("Smiling", 0) == pytest.approx(1.0)
    assert _read(row.slider, VALUE) == "1.00, yes"
    hair = panel.row("Hair")
    hair.combo.setCurrentIndex(2)
    assert _read(hair.slider, VALUE).endswith("towards brown"), _read(hair.slider, VALUE)
    assert QAccessible.queryAccessibleInterface(hair.slider).valueInterface().currentValue() == \
        pytest.approx(hair.spin.value())


def test_set_literal_tip_keeps_a_description_of_the_widgets_own(qtbot):
    from fader_desktop.plain_text import set_literal_tip
    w = QWidget()
    qtbot.addWidget(w)
    set_literal_tip(w, "a <b>x</b>\nb … c")
    assert "<div" in w.toolTip() and _read(w, DESCRIPTION) == "a <b>x</b> b to c"
    set_literal_tip(w, "")
    assert w.toolTip() == "" and _read(w, DESCRIPTION) == ""
    w.setAccessibleDescription("its own words")
    set_literal_tip(w, "a tip")
    assert _read(w, DESCRIPTION) == "its own words" and "a tip" in w.toolTip()


def test_the_training_dialogs_fields_give_their_words_not_the_tooltips_markup(qtbot, tmp_path, tiny_model_path):
    import shutil
    t = TrainingDialog(None, str(tiny_model_path))
    qtbot.addWidget(t)
    t.show()
    t.extra_edit.setText("--classifier-steps 50")   # the field is not used: its tooltip says why
    assert not t.classifier_spin.isEnabled()
    said = _read(t.classifier_spin, DESCRIPTION)
    assert said.startswith("Not used: set in Options: --classifier-steps 50. Before the model"), said
    assert _read(t.classifier_note, DESCRIPTION) == said
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_model_path, run / "model.fader")
    t.out_edit.setText(str(run))
    t._finished(0, QProcess.ExitStatus.NormalExit)
    t.editor_closed()
    assert _read(t.open_button, DESCRIPTION).startswith("The editor window is closed: start Fader Desktop again")
    assert not _markup_read(t), _markup_read(t)
    t.jobs.shutdown()


def test_the_photo_view_says_which_photo_it_shows(qtbot):
    c = PhotoCanvas()
    qtbot.addWidget(c)
    photo = QImage(64, 48, QImage.Format.Format_RGB888)
    photo.fill(0)
    c.set_photo(photo, name="holiday 2019.jpg")
    assert _read(c, DESCRIPTION).startswith("holiday 2019.jpg, 64 by 48 pixels; no face found"), _read(c, DESCRIPTION)
    c.set_photo(photo)   # as before: no name given
    assert _read(c, DESCRIPTION).startswith("64 by 48 pixels"), _read(c, DESCRIPTION)
    c.set_photo(None)
    assert "holiday" not in _read(c, DESCRIPTION)


def test_a_new_value_in_words_is_announced_where_the_handle_does_not_move(panel, monkeypatch):
    """Qt announces each move of a slider's handle; the words change without one where the fader
    moves towards another value, or a value beyond the slider's end changes: the app announces
    those (and only those: each announcement is read aloud)."""
    told = []
    send = QAccessible.updateAccessibility
    monkeypatch.setattr(QAccessible, "updateAccessibility", staticmethod(
        lambda event: (told.append((event.type(), event.object())), send(event))))
    hair, smiling = panel.row("Hair"), panel.row("Smiling")
    hair.combo.setCurrentIndex(1)   # towards blond: the slider jumps to 1.00 (Qt's announcement)
    told.clear()
    hair.combo.setCurrentIndex(2)   # towards brown: the handle stays at 1.00
    assert (QAccessible.Event.ValueChanged, hair.slider) in told, told
    told.clear()
    smiling.spin.setValue(0.4)   # the handle moves: Qt says it
    assert (QAccessible.Event.ValueChanged, smiling.slider) not in told, told
    smiling.spin.setValue(3.0)   # beyond the slider's end (2): the handle stops there
    told.clear()
    smiling.spin.setValue(4.0)
    assert (QAccessible.Event.ValueChanged, smiling.slider) in told, told
    assert _read(smiling.slider, VALUE) == "4.00, past yes"
