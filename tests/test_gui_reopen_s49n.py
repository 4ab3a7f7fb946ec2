"""A photo the newly loaded model cannot open (its re-encoding fails: a decoder that overflows),
driven as a user meets it (the real MainWindow, the tiny test models; nothing of ours is mocked):
the window kept the photo's faces and faders after the "Cannot open the photo with the new model"
box, while the worker had dropped its document, so every fader move rendered nothing. The photo
now stays on show with no face to edit, saying why, until a model that reads it is loaded."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401
from test_gui_review_s49l import _back_to_tiny, _big_edited_photo, _overflowing_model  # noqa: E402
from test_gui_s49f import _drop, _settle  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _no_dead_faders(w, qtbot, name):
    """Every fader greyed, the panel saying why, and a key pressed on a fader changes nothing: no
    edit is made that nothing renders."""
    rows = [w.panel.row(a.name) for a in w._attrs]
    assert rows and not any(r.isEnabled() for r in rows)
    notice = w.panel.notice.text()
    assert w.panel.notice.isVisible() and f"could not read the faces of {name}" in notice, notice
    assert "decoded NaN" in notice and "Recent Models" in notice
    spin = w.panel.row("Smiling").spin
    was = spin.value()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    qtbot.wait(50)
    assert spin.value() == was and not w.isWindowModified() and not w.session.is_modified()
    assert not w.act_undo.isEnabled() and not w.act_mark_face.isEnabled()
    assert w.act_export.isEnabled()   # the photo as it is can still be exported


def _editable_again(w, qtbot, tiny_model_path):
    """Back to the tiny model: the photo's faces come back and a fader move is rendered."""
    _back_to_tiny(w, qtbot, tiny_model_path)
    assert w._photo.faces and w.panel.row("Smiling").isEnabled()
    assert "could not read" not in w.panel.notice.text()
    spin = w.panel.row("Smiling").spin
    spin.setFocus()
    with qtbot.waitSignal(w.previewUpdated, timeout=TIMEOUT):
        qtbot.keyClick(spin, Qt.Key.Key_Up if spin.value() < 1 else Qt.Key.Key_Down)
    assert w.session.is_modified()


def test_a_model_switch_that_cannot_open_the_photo_leaves_no_fader_that_renders_nothing(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path):
    w = editor
    bad = _overflowing_model(tiny_model_path, tmp_path / "overflowing.fader")
    try:
        _big_edited_photo(w, qtbot, tmp_path, portrait_path)
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            w.load_model(bad)
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == ["Cannot open the photo with the new model"], w.errors
        assert w._photo.path.name == "big.png"
        _no_dead_faders(w, qtbot, "big.png")
        _editable_again(w, qtbot, tiny_model_path)
    finally:
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_a_model_dropped_with_a_photo_that_fails_leaves_no_fader_that_renders_nothing(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path):
    w = editor
    bad = _overflowing_model(tiny_model_path, tmp_path / "overflowing.fader")
    try:
        _big_edited_photo(w, qtbot, tmp_path, portrait_path)
        cut = tmp_path / "cut.jpg"   # its header reads (the edit is discarded for it), it fails once opened
        data = portrait_path.read_bytes()
        cut.write_bytes(data[:len(data) // 3])
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            _drop(w, bad, cut)
        qtbot.waitUntil(lambda: len(w.errors) >= 2, timeout=TIMEOUT)
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == ["Cannot open photo", "Cannot open the photo with the new model"], w.errors
        assert w._photo.path.name == "big.png"
        _no_dead_faders(w, qtbot, "big.png")
        _editable_again(w, qtbot, tiny_model_path)
    finally:
        _back_to_tiny(w, qtbot, tiny_model_path)
