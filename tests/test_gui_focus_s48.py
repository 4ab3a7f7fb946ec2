"""Keyboard focus, as a keyboard-only QA walk met it: a job that greys out the Faders panel (View ▸
Find more faces, a device switch) left the focus on nothing, so the arrow keys did nothing; and a
fader focused by a click, or again after a dialog closed, showed no focus ring while the next
arrow key moved it. The real window and the tiny model."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_fader_keeps_the_focus_through_a_job_that_greys_the_panel(editor, qtbot):
    w = editor
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=TIMEOUT)
    slider = w.panel.row("Smiling").slider
    slider.setFocus(Qt.FocusReason.TabFocusReason)
    qtbot.waitUntil(slider.hasFocus, timeout=TIMEOUT)
    w.find_more_faces()
    qtbot.waitUntil(lambda: not w.panel.isEnabled(), timeout=TIMEOUT)
    qtbot.waitUntil(lambda: w.panel.isEnabled(), timeout=TIMEOUT)
    assert QApplication.focusWidget() is slider
    before = slider.value()
    qtbot.keyClick(slider, Qt.Key.Key_Right)
    assert slider.value() != before   # the keys reach the fader again


def test_a_focused_fader_shows_it_however_the_focus_came(editor, qtbot):
    w = editor
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=TIMEOUT)
    slider = w.panel.row("Male").slider
    w.canvas.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(lambda: not slider.hasFocus(), timeout=TIMEOUT)
    unfocused = slider.grab().toImage()
    slider.setFocus(Qt.FocusReason.MouseFocusReason)   # a click, or the focus given back after a dialog
    qtbot.waitUntil(slider.hasFocus, timeout=TIMEOUT)
    focused = slider.grab().toImage()
    assert focused != unfocused


def test_the_training_window_opens_with_the_focus_on_a_field(qtbot):
    """It opened with the focus on its scroll area, which shows none (also its first Tab stop)."""
    from PySide6.QtWidgets import QAbstractScrollArea

    from fader_desktop.training_dialog import TrainingDialog
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.show()
    d.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None, timeout=TIMEOUT)
    assert not isinstance(QApplication.focusWidget(), QAbstractScrollArea), QApplication.focusWidget()


def test_the_model_cards_explanations_take_the_themes_quiet_colour(qtbot, tmp_path):
    """A fixed #777 read at about 3.2:1 on a dark theme's base (small text needs 4.5:1)."""
    from PySide6.QtGui import QColor, QPalette

    from core.model_file import load_model, model_summary
    from fader_desktop.dialogs import ModelCardDialog
    from resources import default_model_path
    summary = model_summary(load_model(default_model_path()))
    d = ModelCardDialog(summary, default_model_path())
    qtbot.addWidget(d)
    quiet = d.browser.palette().color(QPalette.ColorRole.PlaceholderText).name()
    text = d.browser.toHtml()
    assert quiet != "#777777" and quiet in text and "#777777" not in text.lower()
    assert QColor(quiet).isValid()
