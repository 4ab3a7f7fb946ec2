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


def _active(w, qtbot):
    """The window shown and active (the focus goes where keys go only in an active window)."""
    w.show()
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=TIMEOUT)
    return w


def test_the_fader_keeps_the_focus_through_a_job_that_greys_the_panel(editor, qtbot):
    w = _active(editor, qtbot)
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
    w = _active(editor, qtbot)
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


def test_the_shortcuts_list_names_the_fader_keys_and_they_do_what_it_says(editor, qtbot):
    """Help ▸ Keyboard shortcuts listed the menus and the photo's keys, not the faders' (the
    arrows, Page Up/Down, Home/End, Shift+F10 for the reading's correction)."""
    import html
    import re
    w = editor
    w.show_shortcuts()
    try:
        rows = dict((html.unescape(k), html.unescape(t)) for k, t in
                    re.findall(r"<tr><td><code>(.*?)</code></td><td>(.*?)</td></tr>", w._shortcuts_dialog.html))
        assert "In the Faders panel" in w._shortcuts_dialog.html
        assert "Shift+F10, Menu key" in rows and "Page Down / Page Up" in rows and "Home / End" in rows
    finally:
        w._shortcuts_dialog.close()
    slider = w.panel.row("Smiling").slider
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_Home)
    low = w.panel.row("Smiling").spin.value()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    lo, hi = w.panel.row("Smiling").attr.range
    assert abs(w.panel.row("Smiling").spin.value() - (low + (hi - lo) / 10)) < 0.011   # a tenth of its range
    qtbot.keyClick(slider, Qt.Key.Key_End)
    assert abs(w.panel.row("Smiling").spin.value() - hi) < 0.011


def test_check_boxes_and_empty_fields_show_on_the_apps_dark_theme(tmp_path):
    """On the app's own dark theme an unchecked box, a radio button and an empty text field were
    outlined in the window's colour darkened: about 1.2:1 against the window, next to invisible.
    The app as it starts (make_application: its style and palette), in a process of its own."""
    import json
    import os
    import subprocess
    import sys
    code = r'''
import json
import numpy as np
from PySide6.QtWidgets import QCheckBox, QLineEdit, QRadioButton, QWidget, QVBoxLayout
from fader_desktop.app import make_application
app = make_application()
w = QWidget(); lay = QVBoxLayout(w)
widgets = [QCheckBox("aligned"), QRadioButton("recipe"), QLineEdit()]
for x in widgets:
    lay.addWidget(x)
w.resize(300, 120); w.show(); app.processEvents()
window = app.palette().color(app.palette().ColorRole.Window).lightness()
out = []
for x in widgets:
    img = x.grab().toImage().convertToFormat(x.grab().toImage().Format.Format_RGB32)
    a = np.frombuffer(bytes(img.constBits()), np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    part = a[:, :20, :3] if not isinstance(x, QLineEdit) else a[:, :, :3]
    out.append(int(part.max(axis=2).max()) - window if not isinstance(x, QLineEdit) else int(np.percentile(part.max(axis=2), 99)) - window)
print(json.dumps(out))
'''
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    lift = json.loads(r.stdout.strip().splitlines()[-1])
    # the outline is some 60-80 levels above the window's grey (it was 36, 1 and -13 levels)
    assert all(d >= 50 for d in lift), lift
