"""While a photo or a model loads (or a face is taken off), the actions that change the photo's
edit wait: Reset face, Paste edit, Reset all faces, Erase edit everywhere, Clear edit brush, Undo
and Redo are greyed as the Faders panel is, and come back when the job ends, a failed one too; a
recipe dropped meanwhile is refused in the status bar. The real MainWindow, the tiny test models,
real photos; a job is held in flight by the job queue's own hold()."""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent, QGuiApplication  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

from core.recipe import make_recipe  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

EDIT_ACTIONS = ("act_reset_face", "act_paste_edit", "act_reset_all", "act_erase_everywhere", "act_clear_brush",
                "act_undo")


def _settle(w, qtbot):
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled() and w.jobs.is_idle(), timeout=TIMEOUT)


def _edited(w, qtbot, tmp_path):
    """Smiling moved to its other end, a brush stroke's mask on the face, and another Smiling value
    on the clipboard as a copied edit: every edit action has something to do."""
    spin = w.panel.row("Smiling").spin
    own = spin.value()
    spin.setValue(2.0 if own < 1 else -1.0)
    f = w._photo.faces[0]
    x0, y0, x1, y1 = f.box
    w._on_brush_stroke([((x0 + x1) / 2, (y0 + y1) / 2)], 4.0, True, True)
    assert w.session.masks[0] is not None
    QGuiApplication.clipboard().setText(json.dumps(make_recipe({"Smiling": 0.25}, w._model.name)))
    _settle(w, qtbot)
    for name in EDIT_ACTIONS:
        assert getattr(w, name).isEnabled(), name
    return own, spin.value()


def _state(w):
    return w.session.snapshot(), w.undo_stack.count(), w.undo_stack.index()


def _greyed_and_inert(w):
    """Each edit action greyed, and triggering it (its shortcut would) changes nothing."""
    before = _state(w)
    for name in EDIT_ACTIONS:
        assert not getattr(w, name).isEnabled(), f"{name} is enabled while '{w.statusBar().currentMessage()}'"
        getattr(w, name).trigger()
    assert _state(w) == before


def _drop(w, *paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    w.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier))


def test_edit_actions_wait_while_a_photo_opens_and_come_back_when_it_fails(editor, qtbot, tmp_path, portrait_path):
    """Reset face, Paste edit, Reset all faces, Erase edit everywhere, Clear edit brush and Undo
    stayed enabled while the next photo was being opened: what they did went to the photo being
    replaced. They are greyed until the open ends; where it fails, the photo still on show has
    them back, its edit as it was."""
    w = editor
    own, moved = _edited(w, qtbot, tmp_path)
    cut = tmp_path / "cut.jpg"   # its header reads (no question refuses it): it fails once opened
    data = portrait_path.read_bytes()
    cut.write_bytes(data[:len(data) // 3])
    w.errors.clear()
    with w.jobs.hold():
        w.open_photo(cut)
        assert w._busy and not w.panel.isEnabled()
        _greyed_and_inert(w)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    _settle(w, qtbot)
    assert "truncated" in w.errors[-1][1] and w._photo.path == portrait_path
    assert w.panel.row("Smiling").spin.value() == pytest.approx(moved)
    for name in EDIT_ACTIONS:
        assert getattr(w, name).isEnabled(), name
    w.act_reset_face.trigger()
    assert w.panel.row("Smiling").spin.value() == pytest.approx(own)
    w.act_undo.trigger()
    assert w.panel.row("Smiling").spin.value() == pytest.approx(moved)


def test_edit_actions_wait_while_a_model_loads_and_come_back_when_it_fails_or_ends(
        editor, qtbot, tmp_path, tiny_model_path, tiny_model_path_b):
    """The same while a model loads (the photo is encoded again with it, the edit carried over as
    it was when the load was asked for): greyed until the load ends, back where it fails (a damaged
    model file) and on the new model where it loads."""
    w = editor
    own, moved = _edited(w, qtbot, tmp_path)
    damaged = tmp_path / "damaged.fader"   # the same attributes and size: loaded without a question
    data = bytearray(tiny_model_path.read_bytes())
    data[-100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    w.errors.clear()
    with w.jobs.hold():
        w.load_model(damaged)
        assert w._busy
        _greyed_and_inert(w)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    _settle(w, qtbot)
    assert "damaged" in w.errors[-1][1] and w._model.path == tiny_model_path
    for name in EDIT_ACTIONS:
        assert getattr(w, name).isEnabled(), name
    w.act_reset_face.trigger()
    assert w.panel.row("Smiling").spin.value() == pytest.approx(own)
    # another model: greyed while it loads, the faders of its attributes editable once it has
    w.undo_stack.setClean()
    with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
        with w.jobs.hold():
            w.load_model(tiny_model_path_b)
            assert not w.act_reset_face.isEnabled() and not w.act_undo.isEnabled()
    _settle(w, qtbot)
    assert w._model.path == tiny_model_path_b and w._photo.faces
    assert w.act_reset_face.isEnabled() and w.act_reset_all.isEnabled() and w.act_paste_edit.isEnabled()


def test_a_recipe_dropped_while_a_photo_opens_or_a_face_is_taken_off_is_refused_in_the_status_bar(
        editor, qtbot, tmp_path, portrait_path):
    """A recipe dropped alone while the next photo opened was applied to the photo being
    replaced (lost with it), and while Not a face ran, to the faces as they were. It is refused
    now, saying so in the status bar beside the job's busy text; dropped again once the job
    is done, it applies."""
    w = editor
    spin = w.panel.row("Smiling").spin
    own = spin.value()
    target = 1.75 if own < 0.5 else -0.75
    recipe = tmp_path / "smile.json"
    recipe.write_text(json.dumps(make_recipe({"Smiling": target}, w._model.name)))
    again = tmp_path / "again.jpg"
    shutil.copyfile(portrait_path, again)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        with w.jobs.hold():
            w.open_photo(again)
            _drop(w, recipe)
            qtbot.waitUntil(lambda: "smile.json not applied" in w.statusBar().currentMessage(), timeout=5000)
            assert "Opening again.jpg" in w.statusBar().currentMessage()
            assert w.undo_stack.count() == 0 and spin.value() == pytest.approx(own)
    _settle(w, qtbot)
    assert w._photo.path == again and spin.value() == pytest.approx(own) and w.undo_stack.count() == 0
    _drop(w, recipe)   # the job done: it applies
    qtbot.waitUntil(lambda: spin.value() == pytest.approx(target), timeout=TIMEOUT)
    assert "Applied smile.json" in w.statusBar().currentMessage()
    # while View ▸ Not a face takes the face off
    w.act_undo.trigger()
    assert spin.value() == pytest.approx(own)
    steps = w.undo_stack.count()
    with w.jobs.hold():
        w.act_not_face.trigger()
        _drop(w, recipe)
        qtbot.waitUntil(lambda: "smile.json not applied" in w.statusBar().currentMessage(), timeout=5000)
        assert spin.value() == pytest.approx(own) and w.undo_stack.count() == steps
    _settle(w, qtbot)
    assert not w._photo.faces and "Not a face" in w.act_undo.text()
