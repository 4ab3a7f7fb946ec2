"""The training window's Start refusal names what is wrong with the options: an option a field of
the form owns reads well, so it is not called options that "cannot be read" (it was: "Cannot read
the options: set --steps with the Steps field, not in Options"); unbalanced quotes still are."""
from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from test_gui_walkthrough import training_dialog


def test_an_option_the_form_owns_is_refused_in_its_own_words(qtbot, tmp_path, monkeypatch):
    said = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: said.append(text))
    d = training_dialog(qtbot, tmp_path, "photos", "--steps 5")
    d.start()
    assert not d.is_running()
    assert said[-1].startswith("Set --steps with the Steps field"), said[-1]
    assert "cannot read" not in said[-1].lower(), said[-1]
    assert d.phase_label.text().startswith("Not started: set --steps with the Steps field"), d.phase_label.text()

    d.extra_edit.setText("--exclude 'held.txt")
    d.start()
    assert not d.is_running() and said[-1].startswith("Cannot read the options: No closing quotation"), said[-1]
