"""An edit a newly loaded model cannot open (s50), driven as a user meets it (the real MainWindow,
the tiny test models, a model whose decoder overflows; nothing of ours is mocked): a model with
the same attributes and size is opened without a question since the edit carries over, but where
that model could not read the photo's faces the edit was gone (fresh history, "Discard edits?"
never asked again, the previous model back at the faces' own values). It is now set aside: the
window still has unsaved edits, and the next model that reads the faces puts it back."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_gui import TIMEOUT, editor, export, shared_window  # noqa: E402,F401
from test_gui_review_s49l import _back_to_tiny, _big_photo, _overflowing_model  # noqa: E402
from test_gui_s49f import _other_end, _settle  # noqa: E402

from core.image_io import load_image  # noqa: E402
from fader_desktop.main_window import REOPEN_FAILED  # noqa: E402
from fader_desktop.workers import qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _shown(w) -> np.ndarray:
    """What the view shows now (zoomed out: the preview at its scale)."""
    return qimage_to_numpy(w.canvas.shown_preview()[0]).astype(np.int16)


def _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path):
    """A photo larger than the view (its first frame is rendered with the open) edited, then a
    model with the same attributes and size that cannot read its faces loaded (no question is
    asked for it). Returns (photo path, Smiling value, the view unedited, the view edited)."""
    big = _big_photo(w, qtbot, tmp_path, portrait_path)
    qtbot.waitUntil(w.preview_current, timeout=TIMEOUT)
    unedited = _shown(w)
    smiling = _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(_shown(w), unedited), timeout=TIMEOUT)
    edited = _shown(w)
    w.errors.clear()
    bad = _overflowing_model(tiny_model_path, tmp_path / "overflowing.fader")
    with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
        w.load_model(bad)
    _settle(w, qtbot)
    assert w._model.path == bad and not w._photo.faces
    assert [t for t, _m in w.errors] == [REOPEN_FAILED], w.errors
    return big, smiling, unedited, edited


def _asking(w, monkeypatch, answer):
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda title, text, *a, **k: asked.append((title, text)) or answer)
    return asked


def test_an_edit_the_new_model_cannot_open_is_kept_and_comes_back_with_a_model_that_reads_the_faces(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    w = editor
    try:
        big, smiling, unedited, edited = _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path)
        # the window still holds an unexported edit: the title's *, and the panel says it is kept
        assert w.has_unsaved_edits() and w.isWindowModified()
        notice = w.panel.notice.text()
        assert "could not read the faces of big.png" in notice and "edit is kept" in notice, notice
        # closing and opening another photo ask first (answered Cancel: nothing happens)
        asked = _asking(w, monkeypatch, False)
        w.close()
        assert w.isVisible() and [t for t, _m in asked] == ["Discard edits?"], asked
        assert "big.png" in asked[0][1] and "Export" not in asked[0][1]
        w.open_photo(portrait_path)
        assert [t for t, _m in asked] == ["Discard edits?"] * 2 and w._photo.path == big and w._opening is None

        # the model before (same attributes, same size: no question) reads the faces: the edit is back,
        # on show from the first frame, unsaved, and exported
        first = []
        w.photoOpened.connect(lambda _info: first.append(_shown(w)))
        try:
            with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
                w.load_model(tiny_model_path)
        finally:
            w.photoOpened.disconnect()
        _settle(w, qtbot)
        assert len(asked) == 2 and not w.errors[1:], (asked, w.errors)
        assert w._photo.faces and w.panel.row("Smiling").isEnabled()
        assert w.panel.row("Smiling").spin.value() == pytest.approx(smiling)
        assert w.has_unsaved_edits() and w.isWindowModified()
        shown = first[0]   # a frame at the faces' own values (or the whole photo unscaled) until a render came
        assert shown.shape == edited.shape and np.abs(shown - edited).mean() < np.abs(shown - unedited).mean(), \
            "the first frame with the model before did not show the edit"
        out = tmp_path / "big_out.png"
        export(w, qtbot, out)
        x0, y0, x1, y1 = (int(v) for v in w._photo.faces[0].box)
        face_out = load_image(out)[y0:y1, x0:x1].astype(np.int16)
        face_in = load_image(big)[y0:y1, x0:x1].astype(np.int16)
        assert np.abs(face_out - face_in).mean() > 1.0
        assert not w.has_unsaved_edits()
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_a_model_with_other_attributes_asks_before_discarding_an_edit_set_aside(
        editor, qtbot, tmp_path, tiny_model_path, tiny_model_path_b, portrait_path, monkeypatch):
    w = editor
    try:
        _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path)
        bad = w._model.path
        asked = _asking(w, monkeypatch, False)
        w.load_model(tiny_model_path_b)           # refused in the question: nothing happens
        assert len(asked) == 1 and asked[0][0] == "Open another model?", asked
        assert "tiny_b.fader has other attributes" in asked[0][1] and "discarded" in asked[0][1]
        assert w._model.path == bad and w.has_unsaved_edits()
        # answered Open model: the edit goes with it, and the model before no longer brings it back
        asked = _asking(w, monkeypatch, True)
        with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
            w.load_model(tiny_model_path_b)
        _settle(w, qtbot)
        assert len(asked) == 1 and not w.has_unsaved_edits()
        _back_to_tiny(w, qtbot, tiny_model_path)
        assert w._photo.faces and not w.session.is_modified() and not w.has_unsaved_edits()
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_another_photo_asks_and_then_drops_an_edit_set_aside(editor, qtbot, tmp_path, tiny_model_path,
                                                             portrait_path, monkeypatch):
    w = editor
    try:
        big = _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path)[0]
        asked = _asking(w, monkeypatch, True)     # Discard
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            w.open_photo(portrait_path)
        _settle(w, qtbot)
        assert [t for t, _m in asked] == ["Discard edits?"] and not w.has_unsaved_edits()
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            w.open_photo(big)
        _back_to_tiny(w, qtbot, tiny_model_path)   # the photo opened afresh: nothing of the edit comes back
        assert w._photo.path == big and w._photo.faces
        assert not w.session.is_modified() and not w.has_unsaved_edits() and len(asked) == 1
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_a_photo_shown_at_100_percent_is_set_aside_too_and_its_faders_make_no_failing_previews(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    """Found in the session's walk: a photo shown unscaled reopens without a first frame, which is
    what found the model that cannot decode it. Its faders stayed on at the edit, the photo showed
    unedited, and each move said "Preview failed"; closing offered Export…, which ran that model."""
    w = editor
    try:
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            w.open_photo(portrait_path)
        _settle(w, qtbot)
        w.canvas.actual_size()
        assert w.canvas.preview_scale_for(keep_view=True)(w._photo.width, w._photo.height) == 1.0
        smiling = _other_end(w)
        qtbot.waitUntil(w.preview_current, timeout=TIMEOUT)
        w.errors.clear()
        bad = _overflowing_model(tiny_model_path, tmp_path / "overflowing.fader")
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            w.load_model(bad)
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == [REOPEN_FAILED], w.errors
        assert not w._photo.faces and not w.panel.row("Smiling").isEnabled()
        assert w.has_unsaved_edits() and "edit is kept" in w.panel.notice.text(), w.panel.notice.text()
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            w.load_model(tiny_model_path)
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == [REOPEN_FAILED], w.errors
        assert w.panel.row("Smiling").spin.value() == pytest.approx(smiling) and w.has_unsaved_edits()
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_the_panels_notice_reads_as_sentences(editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    """The reason the model could not read the faces ran into "Your edit is kept" without a full stop."""
    w = editor
    try:
        _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path)
        notice = w.panel.notice.text()
        assert "properly.<br>Your edit is kept" in notice, notice
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_an_export_without_the_edit_running_does_not_discard_the_edit_set_aside(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    """The export running writes the photo without the edit: another photo opened meanwhile asked
    nothing (an export of what the window shows counted as writing the edit) and the edit was gone."""
    w = editor
    try:
        _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path)
        _asking(w, monkeypatch, True)
        assert w.export_to(tmp_path / "without.png")   # "Export without edits", not waited for
        asked = _asking(w, monkeypatch, False)
        w.open_photo(portrait_path)
        assert [t for t, _m in asked] == ["Discard edits?"], asked
        _settle(w, qtbot)
        assert w._set_aside is not None and w.has_unsaved_edits() and w._photo.path.name == "big.png"
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _settle(w, qtbot)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_an_unedited_photo_zoomed_out_is_not_read_by_a_model_that_cannot_decode_it(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    """Its first frame, at the faces' own values, decodes nothing: the model loaded with the faces
    on and the first fader move said "Preview failed"."""
    w = editor
    try:
        _big_photo(w, qtbot, tmp_path, portrait_path)
        assert w.canvas.preview_scale_for(keep_view=True)(w._photo.width, w._photo.height) < 1.0
        w.errors.clear()
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            w.load_model(_overflowing_model(tiny_model_path, tmp_path / "overflowing.fader"))
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == [REOPEN_FAILED], w.errors
        assert not w._photo.faces and not w.panel.row("Smiling").isEnabled()
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def test_a_corrected_reading_is_set_aside_too(editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    """A reading corrected with no fader moved changes no pixel, and was lost to a model that could
    not read the faces: the model before read the face as it had, not as the user said."""
    w = editor
    try:
        _big_photo(w, qtbot, tmp_path, portrait_path)
        row = w.panel.row("Smiling")
        said = w.session.own[0]["Smiling"]
        row.own_action.trigger()
        corrected = w.session.own[0]["Smiling"]
        assert corrected != said and w.session.corrected(0) == ["Smiling"]
        w.errors.clear()
        with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
            w.load_model(_overflowing_model(tiny_model_path, tmp_path / "overflowing.fader"))
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == [REOPEN_FAILED] and w._set_aside is not None, w.errors
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            w.load_model(tiny_model_path)
        _settle(w, qtbot)
        assert w.session.own[0]["Smiling"] == corrected and w.session.corrected(0) == ["Smiling"]
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)
