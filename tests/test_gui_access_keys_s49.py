"""The main window's questions ("Discard edits?", "Replace file?", "Open another model?", closing
during a sweep) answer to Alt+letter: their buttons had no access key, and a keyboard user had only
Tab and Esc (Esc is Cancel, so "Discard" needed Tab, Tab, Space)."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QKeySequence  # noqa: E402
from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from fader_desktop.main_window import ASK_OTHER, MainWindow  # noqa: E402
from fader_desktop.settings import Settings  # noqa: E402


@pytest.fixture
def window(qtbot, tmp_path):
    w = MainWindow(Settings(QSettings(str(tmp_path / "fader-desktop.ini"), QSettings.Format.IniFormat)), device="cpu")
    qtbot.addWidget(w)
    w.show()
    return w


def _ask_and_press(qtbot, w, key: str, *args, **kwargs):
    """Ask as the window asks, and answer by pressing Alt+`key` on the box; returns (answer, the
    box's buttons' texts)."""
    seen = {}

    def press() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, press)
            return
        if QApplication.activeWindow() is not box:   # a key goes to the active window only
            box.activateWindow()
            QTimer.singleShot(20, press)
            return
        seen["texts"] = [b.text() for b in box.buttons()]
        qtbot.keyClick(box.focusWidget() or box, getattr(Qt.Key, f"Key_{key}"), Qt.KeyboardModifier.AltModifier)
        try:   # a button's access key clicks it after a short animation
            qtbot.waitUntil(lambda: not box.isVisible(), timeout=2000)
        except Exception:   # the key pressed nothing: Esc, so that the test ends with a failure
            seen["unanswered"] = True
            box.reject()
    QTimer.singleShot(20, press)
    answer = w.ask_confirm(*args, **kwargs)
    return answer, seen


def test_discard_edits_answers_to_alt_keys(qtbot, window):
    args = ("Discard edits?", "The edits to me.jpg have not been exported. Export them first, or discard them?",
            "Discard")
    answer, seen = _ask_and_press(qtbot, window, "D", *args, other="Export…")
    assert not seen.get("unanswered") and answer is True, seen
    keys = {QKeySequence.mnemonic(t).toString() for t in seen["texts"]}
    assert keys == {"Alt+C", "Alt+E", "Alt+D"}, seen["texts"]
    answer, seen = _ask_and_press(qtbot, window, "E", *args, other="Export…")
    assert not seen.get("unanswered") and answer == ASK_OTHER, seen
    answer, seen = _ask_and_press(qtbot, window, "C", *args, other="Export…")
    assert not seen.get("unanswered") and answer is False, seen


def test_a_question_whose_answer_starts_like_cancel_gets_another_letter(qtbot, window):
    """"Close and discard" beside Cancel: both start with C; each gets its own key."""
    answer, seen = _ask_and_press(qtbot, window, "L", "Close Fader Desktop", "The sweep is still being made.",
                                  "Close and discard")
    assert not seen.get("unanswered") and answer is True, seen
    assert sorted(QKeySequence.mnemonic(t).toString() for t in seen["texts"]) == ["Alt+C", "Alt+L"], seen["texts"]


def test_an_answer_with_its_own_key_keeps_it_and_a_shown_ampersand_is_no_key():
    """A text given with its key ("&Export…") left its letter free, so "Exit" beside it was given
    Alt+E too; "Save && close" (a shown ampersand) was given no key at all."""
    from fader_desktop.plain_text import with_access_key
    taken = {"c"}
    texts = [with_access_key(t, taken) for t in ("&Export…", "Exit", "Save && close")]
    keys = [QKeySequence.mnemonic(t).toString() for t in texts]
    assert keys == ["Alt+E", "Alt+X", "Alt+S"], texts
