"""Window review (s49l), driven as a user meets it (the real MainWindow, the tiny test models, the
real job queue held by its own hold(); nothing of ours is mocked): Undo and Redo stay greyed while
a Not a face step is undone or redone, and a photo the newly loaded model cannot open says so
rather than "Cannot load model"."""
from __future__ import annotations

import cv2
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401
from test_gui_keys_s49c import _focused_canvas  # noqa: E402  (as a user pressing Ctrl+Z has it)
from test_gui_s49f import _drop, _other_end, _settle, _step, _two_faces  # noqa: E402

from core.image_io import load_image  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CTRL = Qt.KeyboardModifier.ControlModifier


def _keys_do_nothing(w, qtbot, canvas, index):
    """Undo and Redo greyed, and Ctrl+Z / Ctrl+Y pressed meanwhile change nothing."""
    assert w._busy
    assert not w.act_undo.isEnabled() and not w.act_redo.isEnabled()
    for key in (Qt.Key.Key_Z, Qt.Key.Key_Y, Qt.Key.Key_Z):
        qtbot.keyClick(canvas, key, CTRL)
        assert w.undo_stack.index() == index and not w.errors, w.errors
        assert not w.act_undo.isEnabled() and not w.act_redo.isEnabled()


def test_undo_and_redo_wait_while_not_a_face_is_undone_or_redone(editor, qtbot, tmp_path, portrait_path):
    """Ctrl+Z on Not a face greyed Undo and Redo, and the undo stack enabled them again at once:
    a second Ctrl+Z while the face was being put back undid the step before it on the one-face
    photo (an exception, the history moved anyway), and Ctrl+Z then Ctrl+Y said "Cannot redo Not
    a face: … the photo or the model changed". They stay greyed until the photo is open again."""
    w = editor
    half = _two_faces(w, qtbot, tmp_path, portrait_path)
    right = next(i for i, f in enumerate(w._photo.faces) if f.box[0] >= half)
    w.panel.select_face(right)
    smiling = _other_end(w)                       # the step before Not a face, on face 2
    _step(w, qtbot, w.act_not_face)
    assert len(w._photo.faces) == 1 and w.act_undo.isEnabled()
    canvas = _focused_canvas(w, qtbot)
    w.errors.clear()
    taken_off = w.undo_stack.index()

    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        with w.jobs.hold():                       # the face step waits behind it
            qtbot.keyClick(canvas, Qt.Key.Key_Z, CTRL)
            assert w.undo_stack.index() == taken_off - 1
            _keys_do_nothing(w, qtbot, canvas, taken_off - 1)
    _settle(w, qtbot)
    assert not w.errors, w.errors
    assert len(w._photo.faces) == 2 and w.undo_stack.index() == taken_off - 1
    assert w.session.values(right)["Smiling"] == pytest.approx(smiling)   # its edit back, not undone
    assert w.act_undo.isEnabled() and w.act_redo.isEnabled()

    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        with w.jobs.hold():
            qtbot.keyClick(canvas, Qt.Key.Key_Y, CTRL)   # Not a face again
            assert w.undo_stack.index() == taken_off
            _keys_do_nothing(w, qtbot, canvas, taken_off)
    _settle(w, qtbot)
    assert not w.errors, w.errors
    assert len(w._photo.faces) == 1 and w.undo_stack.index() == taken_off
    assert w.act_undo.isEnabled() and not w.act_redo.isEnabled()
    w.act_undo.trigger()                          # and the history still walks back as it was made
    _settle(w, qtbot)
    w.act_undo.trigger()
    assert len(w._photo.faces) == 2 and not w.session.is_modified() and not w.errors, w.errors


def _overflowing_model(tiny_model_path, path):
    """A model file that loads (every weight finite) but whose decoder overflows to NaN once it
    runs: the engine refuses what it decodes (a damaged or badly trained file)."""
    import torch
    from core.model_file import load_model, save_model
    model = load_model(tiny_model_path)
    with torch.no_grad():
        for name, t in model.autoencoder.named_parameters():
            if name.startswith("dec_layers") and t.dim() > 1:
                t.mul_(1e15)
    save_model(model, path)
    return path


def _big_photo(w, qtbot, tmp_path, portrait_path):
    """A photo larger than the view open (its first render comes with the open, at the edit a
    model switch carries over); returns its path."""
    big = tmp_path / "big.png"
    p = load_image(portrait_path)
    cv2.imwrite(str(big), cv2.cvtColor(cv2.resize(p, (1400, 1400), interpolation=cv2.INTER_CUBIC),
                                       cv2.COLOR_RGB2BGR))
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(big)
    _settle(w, qtbot)
    return big


def _big_edited_photo(w, qtbot, tmp_path, portrait_path):
    """_big_photo, edited."""
    _big_photo(w, qtbot, tmp_path, portrait_path)
    _other_end(w)
    w.errors.clear()


def _back_to_tiny(w, qtbot, tiny_model_path):
    if w._model is not None and w._model.path != tiny_model_path:
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            w.load_model(tiny_model_path)
        _settle(w, qtbot)


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
    # the edit made before is set aside, unsaved (the title's *), until a model reads the faces
    assert w.isWindowModified() and w.has_unsaved_edits()
    qtbot.keyClick(spin, Qt.Key.Key_Up)
    qtbot.wait(50)
    assert spin.value() == was and not w.session.is_modified()
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


def _shown_without_faces_until_a_model_reads_it(w, qtbot, tiny_model_path):
    """The photo stays on show with no face to edit, saying why, until a model reads it (its
    faders moved and rendered nothing: the worker had dropped its document)."""
    assert w._photo.path.name == "big.png"
    _no_dead_faders(w, qtbot, "big.png")
    _editable_again(w, qtbot, tiny_model_path)


def test_a_model_switch_the_photo_cannot_be_opened_with_is_not_said_to_be_a_model_that_did_not_load(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path):
    """The model loaded (its name in the status bar), but the photo on show could not be opened
    again with it: the box said "Cannot load model"."""
    w = editor
    bad = _overflowing_model(tiny_model_path, tmp_path / "overflowing.fader")
    try:
        _big_edited_photo(w, qtbot, tmp_path, portrait_path)
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            w.load_model(bad)
        _settle(w, qtbot)
        assert w._model.path == bad              # it did load
        assert [t for t, _m in w.errors] == ["Cannot open the photo with the new model"], w.errors
        assert "decoded NaN" in w.errors[0][1]
        _shown_without_faces_until_a_model_reads_it(w, qtbot, tiny_model_path)
    finally:
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_a_model_dropped_with_a_photo_that_fails_says_the_photo_on_show_could_not_be_opened_with_it(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path):
    """A model dropped with a photo that does not open: the photo on show is opened with the
    model then (_reopen_stale), and where that failed the box said "Cannot load model"."""
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
        assert w._model.path == bad
        assert [t for t, _m in w.errors] == ["Cannot open photo", "Cannot open the photo with the new model"], w.errors
        assert "decoded NaN" in w.errors[1][1]
        _shown_without_faces_until_a_model_reads_it(w, qtbot, tiny_model_path)
    finally:
        _back_to_tiny(w, qtbot, tiny_model_path)
