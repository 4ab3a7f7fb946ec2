"""Ctrl+C and Ctrl+V with the focus in a fader's number box, as QA met them: right after a typed
value, Ctrl+C copied nothing at all (the box kept the key, with no text selected to copy) where
the window's Copy image was meant. The box keeps the clipboard keys where they have text to work
on (a selected number, text on the clipboard); otherwise they are the window's."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QStandardPaths, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage  # noqa: E402
from PySide6.QtWidgets import QLineEdit  # noqa: E402

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

from fader_desktop.main_window import pasted_folder  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _typed(w, qtbot, text="1.5"):
    """The Smiling box with `text` typed into it and Return pressed, the focus left in it."""
    spin = w.panel.row("Smiling").spin
    box = spin.findChild(QLineEdit)
    w.activateWindow()
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=TIMEOUT)
    box.selectAll()
    qtbot.keyClicks(box, text)
    qtbot.keyClick(box, Qt.Key.Key_Return)
    box.deselect()
    return spin, box


def test_ctrl_c_after_a_typed_value_copies_the_edited_photo(editor, qtbot):
    w = editor
    spin, box = _typed(w, qtbot)
    assert spin.value() == pytest.approx(1.5) and box.hasFocus() and not box.hasSelectedText()
    QGuiApplication.clipboard().clear()
    with qtbot.waitSignal(w.imageCopied, timeout=TIMEOUT):
        qtbot.keyClick(box, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert not QGuiApplication.clipboard().image().isNull()


def test_ctrl_c_on_a_selected_value_copies_the_number(editor, qtbot):
    w = editor
    spin, box = _typed(w, qtbot)
    copied = []
    w.imageCopied.connect(lambda: copied.append(1))
    box.selectAll()
    qtbot.keyClick(box, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QGuiApplication.clipboard().text() == box.text()
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    qtbot.wait(50)
    assert not copied


def test_ctrl_v_with_an_image_on_the_clipboard_opens_it_and_with_text_pastes_into_the_box(editor, qtbot, portrait_path):
    w = editor
    spin, box = _typed(w, qtbot)
    QGuiApplication.clipboard().setText("0.25")
    box.selectAll()
    qtbot.keyClick(box, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert box.text().startswith("0.25")
    w.undo_stack.setClean()   # nothing to ask about before the pasted photo replaces this one
    QGuiApplication.clipboard().setImage(QImage(str(portrait_path)))
    QStandardPaths.setTestModeEnabled(True)     # the data folder under ~/.qttest, not the user's
    try:
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            qtbot.keyClick(box, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
        pasted = w._photo.path
        assert pasted.parent == pasted_folder() and pasted.name.startswith("Pasted ")
        pasted.unlink()
    finally:
        QStandardPaths.setTestModeEnabled(False)
