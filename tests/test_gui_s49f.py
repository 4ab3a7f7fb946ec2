"""Window QA (s49f), driven as a user meets it (the real MainWindow, the tiny test models, the real
job queue; nothing of ours is mocked): View ▸ Not a face is an undo step (Ctrl+Z puts the face
back with its edit, Ctrl+Y takes it off again), a model dropped with photos goes straight to them
without encoding the photo they replace, and a failure in the window is one line in the log file."""
from __future__ import annotations

import logging
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from test_gui import TIMEOUT, editor, export, original, preview, shared_window  # noqa: E402,F401
from test_startup_s48 import open_a_text_file_named_jpg  # noqa: E402

from core.image_io import load_image  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _two_faces(w, qtbot, tmp_path, portrait_path):
    """A photo of the portrait beside its mirror image (two faces the first search finds), open."""
    p = load_image(portrait_path)
    s = 256 / p.shape[0]
    up = cv2.resize(p, (round(p.shape[1] * s), 256), interpolation=cv2.INTER_AREA)
    photo = np.ascontiguousarray(np.concatenate([up, up[:, ::-1]], axis=1))
    path = tmp_path / "two.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    _settle(w, qtbot)
    assert len(w._photo.faces) == 2
    return up.shape[1]


def _settle(w, qtbot):
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled() and w.jobs.is_idle(), timeout=TIMEOUT)


def _step(w, qtbot, action):
    """Trigger an action that opens the photo again (Not a face, its undo or redo) and wait."""
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        action.trigger()
    _settle(w, qtbot)


def _other_end(w, name="Smiling"):
    spin = w.panel.row(name).spin
    spin.setValue(2.0 if spin.value() < 1 else -1.0)
    return spin.value()


def _shown(w, qtbot):
    qtbot.waitUntil(lambda: w.preview_current(), timeout=TIMEOUT)
    return preview(w)


def test_not_a_face_is_undone_with_its_edit_and_redone_without_a_question(editor, qtbot, tmp_path, portrait_path,
                                                                          monkeypatch):
    """Not a face asked "cannot be undone" first and took the face's edit with it for good: Ctrl+Z
    now puts the face back with its faders, its corrected reading and its edit; Ctrl+Y takes it
    off again; the title's * and the export follow."""
    w = editor
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: asked.append(a) or True)
    half = _two_faces(w, qtbot, tmp_path, portrait_path)
    orig = original(w)
    right = next(i for i, f in enumerate(w._photo.faces) if f.box[0] >= half)
    w.panel.select_face(right)
    smiling = _other_end(w)
    young = "Male"
    corrected = 0.0 if w.session.own_slider(young, right) >= 0.5 else 1.0
    assert w.session.set_own(young, corrected)   # the reading corrected (right-click on the fader)
    edited = _shown(w, qtbot)
    assert not np.array_equal(edited[:, half:], orig[:, half:])
    export(w, qtbot, tmp_path / "exported.png")
    assert not w.isWindowModified()
    steps = w.undo_stack.count()

    _step(w, qtbot, w.act_not_face)
    assert not asked, asked                                   # no "cannot be undone" question
    assert len(w._photo.faces) == 1 and w._photo.faces[0].box[0] < half
    assert w.isWindowModified()                               # the edited face went: pixels changed
    assert np.array_equal(_shown(w, qtbot)[:, half:], orig[:, half:])
    assert w.act_undo.isEnabled() and "Not a face" in w.act_undo.text()

    _step(w, qtbot, w.act_undo)                               # Ctrl+Z: the face back, with its edit
    assert len(w._photo.faces) == 2 and w.session.selected == right
    assert w.session.values(right)["Smiling"] == pytest.approx(smiling)
    assert w.session.own_slider(young, right) == corrected    # the corrected reading too
    assert w.panel.row("Smiling").spin.value() == pytest.approx(smiling)   # the Faders panel shows it
    assert np.array_equal(_shown(w, qtbot), edited)
    assert not w.isWindowModified()                           # as exported
    assert w.undo_stack.count() == steps + 1 and w.act_redo.isEnabled()

    _step(w, qtbot, w.act_redo)                               # Ctrl+Y: off again
    assert len(w._photo.faces) == 1 and w.isWindowModified()
    assert np.array_equal(_shown(w, qtbot)[:, half:], orig[:, half:])
    export(w, qtbot, tmp_path / "without.png")
    assert np.array_equal(load_image(tmp_path / "without.png")[:, half:], orig[:, half:])

    _step(w, qtbot, w.act_undo)
    assert w.isWindowModified()                               # the last export has it off
    export(w, qtbot, tmp_path / "with.png")
    assert np.array_equal(load_image(tmp_path / "with.png"), edited)
    # the steps before it undo on the faces they were made on
    w.act_undo.trigger()
    assert w.session.own_slider(young, right) != corrected
    assert w.session.values(right)["Smiling"] == pytest.approx(smiling)
    w.act_undo.trigger()
    assert not w.session.is_modified()
    assert np.array_equal(_shown(w, qtbot), orig)


def test_an_unedited_face_taken_off_leaves_the_photo_as_exported_and_a_search_keeps_the_history(
        editor, qtbot, tmp_path, portrait_path):
    w = editor
    half = _two_faces(w, qtbot, tmp_path, portrait_path)
    left = next(i for i, f in enumerate(w._photo.faces) if f.box[0] < half)
    right = 1 - left
    w.panel.select_face(left)
    smiling = _other_end(w)
    _shown(w, qtbot)
    export(w, qtbot, tmp_path / "left_smiling.png")
    w.panel.select_face(right)
    box = w._photo.faces[right].box
    _step(w, qtbot, w.act_not_face)
    # no pixel changed: nothing unsaved (closing asked "Discard edits?" for the same pixels)
    assert len(w._photo.faces) == 1 and not w.isWindowModified() and not w.has_unsaved_edits()
    assert w.act_undo.text() == "&Undo Not a face (face 2)" and right == 1   # Edit ▸ Undo names it
    _other_end(w, "Male")
    assert w.isWindowModified()
    # Mark a missed face brings it back (unedited); the history stays undoable on the face left
    from test_gui_more_faces import _draw
    w.act_mark_face.trigger()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        _draw(w, qtbot, box)
    _settle(w, qtbot)
    assert len(w._photo.faces) == 2 and not w.errors, w.errors
    left = next(i for i, f in enumerate(w._photo.faces) if f.box[0] < half)
    w.act_undo.trigger()                                      # Male
    assert not w.session.is_modified(left, "Male") and w.session.values(left)["Smiling"] == pytest.approx(smiling)
    assert not w.isWindowModified()                           # back at what was exported
    w.act_undo.trigger()                                      # Smiling: Not a face became final with the search
    assert not w.session.is_modified() and not w.act_undo.isEnabled()


def _drop(w, *paths):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    w.dropEvent(QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                           Qt.KeyboardModifier.NoModifier))


def test_a_model_dropped_with_a_photo_goes_straight_to_it_without_encoding_the_photo_it_replaces(
        editor, qtbot, tiny_model_path, tiny_model_path_b, portrait_path, tmp_path):
    """The photo on show was found and encoded again with the dropped model first (seconds on a
    large photo, "Finding faces in old.jpg…" on the status bar), then thrown away. Where the
    photos dropped do not open, the photo on show is edited with the new model."""
    w = editor
    said = []

    def record(_busy, text):
        said.append(text)
    w.jobs.busyChanged.connect(record)
    try:
        photo = tmp_path / "another.jpg"
        shutil.copy(portrait_path, photo)
        with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
            _drop(w, tiny_model_path_b, photo)
        _settle(w, qtbot)
        assert w._photo.path == photo and w._model.path == tiny_model_path_b and w._photo.faces
        assert [t for t in said if portrait_path.name in t] == [], said
        assert f"Finding faces in {photo.name}…" in said

        # a photo that does not open: the one on show comes back with the model dropped
        said.clear()
        notes = tmp_path / "notes.jpg"
        notes.write_text("shopping: milk, eggs\n")
        with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
            _drop(w, tiny_model_path, notes)
        _settle(w, qtbot)
        assert [t for t, _m in w.errors] == ["Cannot open photo"], w.errors
        assert w._photo.path == photo and w._model.path == tiny_model_path and w._photo.faces
        assert "Smiling" in w.panel.attribute_names()
        orig = original(w)
        _other_end(w)
        qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
        export(w, qtbot, tmp_path / "edited.png")
    finally:
        w.jobs.busyChanged.disconnect(record)


def test_a_failure_in_the_window_is_one_line_in_the_log_file_naming_the_job(qtbot, tmp_path, capfd, monkeypatch):
    """Opening a text file named .jpg wrote 'INFO … Opening notes.jpg… failed: …' and 'WARNING …
    Cannot open photo: …' to the log file for the one failure; stderr had the warning alone."""
    from fader_desktop import app

    log_file = tmp_path / "logs" / "fader-desktop.log"
    monkeypatch.setattr(app, "log_path", lambda: log_file)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    app.setup_logging("fader-desktop")
    try:
        w, titled = open_a_text_file_named_jpg(qtbot, tmp_path)
        boxes = [text for _title, text in titled]
        w.close()
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
                h.close()
        root.setLevel(level)
    lines = [line for line in log_file.read_text(encoding="utf-8").splitlines() if "notes.jpg" in line]
    assert len(lines) == 1, lines
    assert " WARNING " in lines[0] and "Opening notes.jpg…" in lines[0], lines
    assert lines[0].endswith(f"Cannot open photo: {boxes[0]}"), (lines, boxes)
    err = [line for line in capfd.readouterr().err.splitlines() if "notes.jpg" in line]
    assert err == [f"fader-desktop: WARNING: Cannot open photo: {boxes[0]}"], err
