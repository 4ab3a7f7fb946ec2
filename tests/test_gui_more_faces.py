"""View ▸ Find more faces, driven as a user meets it (the real MainWindow, the tiny test model;
nothing of ours is mocked): a person lying beside one sitting up is missed by the first search;
asked, the window finds them, keeps the edit made on the face it had, selects the new face and
edits and exports it. Where there is nothing more, it says so and nothing changes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_faces_more import lying_beside_upright  # noqa: E402
from test_gui import TIMEOUT, editor, export, original, preview, shared_window  # noqa: E402,F401

from core.image_io import load_image  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _box(face):
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    return slice(max(0, y0), y1), slice(max(0, x0), x1)


def _open(w, qtbot, photo, path):
    """Write `photo` (RGB) as a PNG at `path` and open it in the window, waiting until it is shown."""
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled(), timeout=TIMEOUT)
    return path


def _trigger(w, qtbot, action):
    """Trigger a menu action that opens the photo again (Find more faces, Not a face) and wait."""
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        action.trigger()
    qtbot.waitUntil(lambda: not w._busy, timeout=TIMEOUT)


def _batch_without_and_with(qtbot, tmp_path, src, model):
    """Yield (find more faces?, the batch dialog after its run) for the folder `src` edited with
    Smiling 2 into tmp_path/out_False, then with the Find more faces box ticked into out_True."""
    from test_gui_s45c import _run

    from fader_desktop.batch_dialog import BatchDialog
    for more in (False, True):
        dlg = BatchDialog(None, model, "cpu", {"Smiling": 2.0})
        qtbot.addWidget(dlg)
        dlg.in_edit.setText(str(src))
        dlg.out_edit.setText(str(tmp_path / f"out_{more}"))
        dlg.more_faces_check.setChecked(more)
        _run(dlg)
        dlg.summary_box.close()
        yield more, dlg


def _other_end(w, name="Smiling"):
    spin = w.panel.row(name).spin
    spin.setValue(2.0 if spin.value() < 1 else -1.0)
    return spin.value()


def test_find_more_faces_finds_the_lying_person_and_keeps_the_edit_made(editor, qtbot, tmp_path, portrait_path):
    w = editor
    photo, x_lying = lying_beside_upright(portrait_path)
    path = _open(w, qtbot, photo, tmp_path / "lying.png")
    assert len(w._photo.faces) == 1 and w.act_more_faces.isEnabled()
    first = w._photo.faces[0]
    orig = original(w)
    smiling = _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    edited = preview(w)
    assert w.undo_stack.count() == 1 and w.isWindowModified()

    _trigger(w, qtbot, w.act_more_faces)
    faces = w._photo.faces
    assert len(faces) == 2
    kept = next(i for i, f in enumerate(faces) if f.box == first.box)
    new = 1 - kept
    assert faces[new].box[0] >= x_lying - 10            # the lying person, on the right
    s = w.session
    assert s.values(kept)["Smiling"] == pytest.approx(smiling)   # the edit made stays on its face
    assert not s.is_modified(new) and s.selected == new          # the new face is selected, unedited
    assert w.isWindowModified() and w.undo_stack.count() == 1    # still unsaved; the history carried over
    assert not w.act_more_faces.isEnabled()                     # searched so: nothing more to ask
    assert "done for this photo" in w.act_more_faces.text()     # ... and the menu says why it is greyed
    assert "No search looks for faces under 40 px" in w.panel.notice.text()
    assert "Found 1 more face" in w.statusBar().currentMessage()
    # the preview still shows that edit, exactly, and nothing on the new face yet
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w), edited), timeout=TIMEOUT)

    # the new face edits and exports like any other
    _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), edited), timeout=TIMEOUT)
    out = tmp_path / "lying_edited.png"
    export(w, qtbot, out)
    written = load_image(out)
    for face in faces:
        box = _box(face)
        assert np.abs(written[box].astype(int) - orig[box]).mean() > 0.5, f"face {face.index + 1} is not edited"
    assert load_image(path).tobytes() == photo.tobytes()         # the photo itself is untouched


def test_find_more_faces_where_there_is_none_says_so_and_changes_nothing(editor, qtbot):
    w = editor
    orig = original(w)
    _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    edited, before, boxes = preview(w), w.session.snapshot(), [f.box for f in w._photo.faces]
    w.act_more_faces.trigger()
    qtbot.waitUntil(lambda: "No more faces found" in w.statusBar().currentMessage(), timeout=TIMEOUT)
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    assert [f.box for f in w._photo.faces] == boxes and w.session.snapshot() == before
    assert w.undo_stack.count() == 1 and w.isWindowModified()   # the edit and its history stay
    assert not w.act_more_faces.isEnabled()
    assert np.array_equal(preview(w), edited)
    w.act_undo.trigger()   # undo still works on the same faces
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w), orig), timeout=TIMEOUT)


def test_a_photo_with_no_face_points_to_find_more_faces(editor, qtbot, tmp_path):
    w = editor
    rng = np.random.default_rng(1)
    blank = cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8), (0, 0), 3)
    path = tmp_path / "no_face.png"
    cv2.imwrite(str(path), blank)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    qtbot.waitUntil(lambda: not w._busy, timeout=TIMEOUT)
    assert not w._photo.faces and "Find more faces" in w.panel.notice.text()
    w.act_more_faces.trigger()
    qtbot.waitUntil(lambda: "No face either found" in w.statusBar().currentMessage(), timeout=TIMEOUT)
    assert "found none either" in w.panel.notice.text() and not w.act_more_faces.isEnabled()


def test_the_batch_dialog_finds_more_faces_when_asked(qtbot, tmp_path, portrait_path, tiny_model_path):
    photo, x_lying = lying_beside_upright(portrait_path)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "lying.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    faces = {}
    for more, dlg in _batch_without_and_with(qtbot, tmp_path, src, tiny_model_path):
        faces[more] = [(i.faces, i.changed) for i in dlg.report.items]
        written = load_image(tmp_path / f"out_{more}" / "lying.png")
        lying = np.abs(written[:, x_lying:].astype(int) - photo[:, x_lying:]).mean()
        assert (lying > 0.5) == more, (more, lying)
    assert faces == {False: [(1, 1)], True: [(2, 2)]}
    # aligned crops are not searched: the box greys out beside it
    dlg.aligned_check.setChecked(True)
    assert not dlg.more_faces_check.isEnabled() and not dlg.options().find_more_faces


def _open_lying(w, qtbot, tmp_path, portrait_path):
    """The lying-beside-upright photo open in the window, Smiling moved on its one face found."""
    photo, x_lying = lying_beside_upright(portrait_path)
    _open(w, qtbot, photo, tmp_path / "lying.png")
    assert len(w._photo.faces) == 1
    orig = original(w)
    smiling = _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    return photo, x_lying, smiling


def _draw(w, qtbot, photo_box):
    """A left drag on the photo view from one corner of `photo_box` (photo pixels) to the other."""
    from PySide6.QtCore import QPoint, QPointF, Qt
    a = w.canvas.to_widget(QPointF(photo_box[0], photo_box[1]))
    b = w.canvas.to_widget(QPointF(photo_box[2], photo_box[3]))
    qtbot.mousePress(w.canvas, Qt.MouseButton.LeftButton, pos=QPoint(round(a.x()), round(a.y())))
    qtbot.mouseMove(w.canvas, pos=QPoint(round((a.x() + b.x()) / 2), round((a.y() + b.y()) / 2)))
    qtbot.mouseRelease(w.canvas, Qt.MouseButton.LeftButton, pos=QPoint(round(b.x()), round(b.y())))


def test_a_face_marked_by_hand_joins_the_photos_faces_with_the_edit_kept(editor, qtbot, tmp_path, portrait_path):
    from core.faces import FaceDetector
    w = editor
    photo, x_lying, smiling = _open_lying(w, qtbot, tmp_path, portrait_path)
    first = w._photo.faces[0]
    lying = max(FaceDetector().detect(photo, thorough=True), key=lambda f: f.center_x)
    m = 0.1 * lying.size
    w.act_mark_face.trigger()
    assert w.canvas.marking() and "drag a box from hairline to chin" in w.statusBar().currentMessage()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        _draw(w, qtbot, (lying.box[0] - m, lying.box[1] - m, lying.box[2] + m, lying.box[3] + m))
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled(), timeout=TIMEOUT)
    faces = w._photo.faces
    assert len(faces) == 2 and not w.canvas.marking() and not w.act_mark_face.isChecked()
    kept = next(i for i, f in enumerate(faces) if f.box == first.box)
    new = 1 - kept
    assert abs(0.5 * (faces[new].box[0] + faces[new].box[2]) - lying.center_x) < 0.2 * lying.size
    assert w.session.values(kept)["Smiling"] == pytest.approx(smiling) and w.session.selected == new
    assert "Found 1 more face" in w.statusBar().currentMessage()


def test_a_box_drawn_where_there_is_no_new_face_is_refused_in_words_and_changes_nothing(editor, qtbot, tmp_path,
                                                                                       portrait_path, monkeypatch):
    w = editor
    photo, x_lying, smiling = _open_lying(w, qtbot, tmp_path, portrait_path)
    edited, boxes = preview(w), [f.box for f in w._photo.faces]
    h = photo.shape[0]
    # QA walk: the busy bar and "Looking for the face…" stayed on show behind the error's box
    busy_at_error = []
    show = w.show_error
    monkeypatch.setattr(w, "show_error", lambda title, message: busy_at_error.append(w.busy_bar.isVisible() or w._busy)
                        or show(title, message))
    for box, said in (((x_lying + 10, 5, x_lying + 60, 40), "No face was found in the marked area"),
                      (w._photo.faces[0].box, "found already")):
        w.errors.clear()
        if not w.act_mark_face.isChecked():   # a box with no face leaves marking on (s49j)
            w.act_mark_face.trigger()
        _draw(w, qtbot, box)
        qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
        assert said in w.errors[0][1], w.errors
        assert busy_at_error == [False] * len(busy_at_error) and busy_at_error
        assert w.jobs.wait_idle(TIMEOUT / 1000)
        assert [f.box for f in w._photo.faces] == boxes and w.undo_stack.count() == 1
        assert np.array_equal(preview(w), edited)
    # a stray click marks nothing, and Esc leaves marking as it was entered
    w.act_mark_face.trigger()
    _draw(w, qtbot, (x_lying + 100, h / 2, x_lying + 101, h / 2 + 1))
    assert w.canvas.marking() and w.jobs.is_idle()
    from PySide6.QtCore import Qt
    qtbot.keyClick(w.canvas, Qt.Key.Key_Escape)
    assert not w.canvas.marking() and not w.act_mark_face.isChecked()


def test_the_batch_summary_points_to_find_more_faces_where_no_face_was_found(qtbot, tmp_path, tiny_model_path):
    rng = np.random.default_rng(3)
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "wall.png"), cv2.GaussianBlur(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8),
                                                        (0, 0), 3))
    for more, dlg in _batch_without_and_with(qtbot, tmp_path, src, tiny_model_path):
        head, _details = dlg.summary_text(dlg.report)
        assert ("In 1 photo no face was found: run again with “Find more faces”" in head) != more, head


def test_not_a_face_takes_the_selected_face_off_and_mark_a_face_brings_it_back(editor, qtbot, tmp_path,
                                                                                portrait_path):
    """A detection on no face (a print, a pair of hands) would take every All-faces edit: View ▸
    Not a face takes the selected face off, the others and their edits kept; the photo then shows
    as it is there, and a box drawn around it brings it back."""
    w = editor
    photo, x_lying = lying_beside_upright(portrait_path)
    _open(w, qtbot, photo, tmp_path / "lying.png")
    _trigger(w, qtbot, w.act_more_faces)
    assert len(w._photo.faces) == 2
    orig = original(w)
    upright = next(i for i, f in enumerate(w._photo.faces) if f.box[0] < x_lying)
    lying = 1 - upright
    w.panel.select_face(upright)
    smiling = _other_end(w)
    w.panel.select_face(lying)
    _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w)[:, x_lying:], orig[:, x_lying:]),
                    timeout=TIMEOUT)
    w.undo_stack.setClean()   # as after an export
    box = w._photo.faces[lying].box
    assert w.act_not_face.isEnabled()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.act_not_face.trigger()
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled(), timeout=TIMEOUT)
    assert len(w._photo.faces) == 1 and w._photo.faces[0].box[0] < x_lying
    assert w.session.values(0)["Smiling"] == pytest.approx(smiling)          # the other face's edit stays
    assert w.isWindowModified()                                               # pixels changed since the export
    assert "taken off" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w)[:, x_lying:], orig[:, x_lying:]),
                    timeout=TIMEOUT)                                          # shown as it is there
    assert not np.array_equal(preview(w)[:, :x_lying], orig[:, :x_lying])
    w.act_mark_face.trigger()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        _draw(w, qtbot, box)
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled(), timeout=TIMEOUT)
    assert len(w._photo.faces) == 2 and not w.session.is_modified(w.session.selected)
    # under All faces there is no one face to take off
    w.panel.select_face(-1)
    assert not w.act_not_face.isEnabled()


def test_a_face_taken_off_is_not_brought_back_by_find_more_faces(editor, qtbot, tmp_path, portrait_path):
    w = editor
    photo, x_lying = lying_beside_upright(portrait_path)
    _open(w, qtbot, photo, tmp_path / "lying.png")
    assert len(w._photo.faces) == 1
    _trigger(w, qtbot, w.act_not_face)
    assert not w._photo.faces
    _trigger(w, qtbot, w.act_more_faces)
    assert len(w._photo.faces) == 1 and w._photo.faces[0].box[0] >= x_lying - 10   # only the lying one


def test_under_all_faces_a_face_found_since_takes_the_edit_every_face_has(editor, qtbot, tmp_path, portrait_path):
    """QA walk: All faces, Eyeglasses 1, then Find more faces: the new face had no glasses and was
    selected, while All faces still showed Eyeglasses 1 as if every face had it."""
    w = editor
    # two up, one lying: 768 px wide, so that the view shows it at 100 % (the preview read here is full size)
    photo, x_lying = lying_beside_upright(portrait_path, 256)
    up = photo[:, :x_lying]
    photo = np.ascontiguousarray(np.concatenate([up, up[:, ::-1], photo[:, x_lying:]], axis=1))
    x_lying *= 2
    _open(w, qtbot, photo, tmp_path / "three.png")
    assert len(w._photo.faces) == 2
    orig = original(w)
    w.panel.select_face(-1)   # All faces
    assert w.session.selected == -1
    smiling = _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    _trigger(w, qtbot, w.act_more_faces)
    assert len(w._photo.faces) == 3 and w.session.selected == -1
    assert all(w.session.values(i)["Smiling"] == pytest.approx(smiling) for i in range(3))
    assert "the edit made applies to it too" in w.statusBar().currentMessage()
    qtbot.waitUntil(lambda: w.preview_current()
                    and np.abs(preview(w)[:, x_lying:].astype(int) - orig[:, x_lying:]).mean() > 0.3, timeout=TIMEOUT)


def test_esc_leaves_marking_wherever_the_focus_was(editor, qtbot):
    """QA walk: with a fader's number box focused, Esc went there and marking stayed on."""
    from PySide6.QtCore import Qt
    w = editor
    spin = w.panel.row("Male").spin
    spin.setFocus()
    assert w.focusWidget() is spin   # the window's focus widget, where its keys go once it is active
    w.act_mark_face.trigger()
    assert w.canvas.marking()
    qtbot.keyClick(w.focusWidget(), Qt.Key.Key_Escape)
    assert not w.canvas.marking() and not w.act_mark_face.isChecked()


def test_a_zoom_in_the_middle_of_a_drag_keeps_the_boxs_first_corner_on_the_photo(editor, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    w = editor
    marked = []
    w.canvas.faceMarked.connect(marked.append)
    try:
        w.canvas.set_marking(True)
        a = w.canvas.to_widget(QPointF(100, 120))
        qtbot.mousePress(w.canvas, Qt.MouseButton.LeftButton, pos=QPoint(round(a.x()), round(a.y())))
        w.canvas.zoom_to(w.canvas.scale * 1.6, QPointF(w.canvas.width() / 3, w.canvas.height() / 3))
        b = w.canvas.to_widget(QPointF(300, 330))
        qtbot.mouseRelease(w.canvas, Qt.MouseButton.LeftButton, pos=QPoint(round(b.x()), round(b.y())))
    finally:
        w.canvas.faceMarked.disconnect(marked.append)
        w.canvas.set_marking(False)
        w.canvas.fit_to_window()
    tol = 1.5 / w.canvas.scale + 1
    r = marked[0]
    assert abs(r.left() - 100) < tol and abs(r.top() - 120) < tol, (r, tol)
    assert abs(r.right() - 300) < tol and abs(r.bottom() - 330) < tol, (r, tol)


def test_not_a_face_on_an_edited_face_takes_it_off_unasked_and_says_what_was_taken_off(editor, qtbot, monkeypatch):
    w = editor
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: asked.append(a) or False)
    _other_end(w)
    # 'found already' names the face (the boxes may be hidden)
    w.act_mark_face.trigger()
    _draw(w, qtbot, w._photo.faces[0].box)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert "found already: it is face 1" in w.errors[-1][1]
    qtbot.waitUntil(lambda: not w._busy and w.act_not_face.isEnabled(), timeout=TIMEOUT)
    _trigger(w, qtbot, w.act_not_face)
    # no question: Edit ▸ Undo puts it back with its edit (s49f; tests/test_gui_s49f.py)
    assert not asked and w.act_undo.isEnabled()
    assert not w._photo.faces and "1 face taken off" in w.panel.notice.text()
    assert "No face the model can edit was found" not in w.panel.notice.text()


def test_the_undo_history_carries_over_find_more_faces_onto_the_faces_renumbered(editor, qtbot, tmp_path,
                                                                                portrait_path):
    """Find more faces cleared the undo history (the faces are numbered anew): the edit made before
    could no longer be undone. Now each step undoes and redoes on the face it was made on."""
    w = editor
    photo, x_lying, smiling = _open_lying(w, qtbot, tmp_path, portrait_path)
    orig = original(w)
    assert "face" not in w.act_undo.text()   # one face: no need to say which
    _trigger(w, qtbot, w.act_more_faces)
    assert len(w._photo.faces) == 2
    upright = next(i for i, f in enumerate(w._photo.faces) if f.box[0] < x_lying)
    lying = 1 - upright
    # QA walk: with two faces the Edit menu's "Undo Smiling 2.00" did not say on which
    assert w.act_undo.text().endswith(f"(face {upright + 1})")
    _other_end(w)   # the new face, selected
    assert w.act_undo.text().endswith(f"(face {lying + 1})")
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w)[:, x_lying:], orig[:, x_lying:]),
                    timeout=TIMEOUT)
    both = preview(w)
    assert w.undo_stack.count() == 2 and w.act_undo.isEnabled()
    w.act_undo.trigger()   # the lying face's edit
    assert not w.session.is_modified(lying) and w.session.values(upright)["Smiling"] == pytest.approx(smiling)
    w.act_undo.trigger()   # the edit made before the search: on the face it was made on, renumbered
    assert not w.session.is_modified() and w.session.selected == upright
    assert not w.isWindowModified() and not w.act_undo.isEnabled()
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w), orig), timeout=TIMEOUT)
    w.act_redo.trigger()
    w.act_redo.trigger()
    assert w.session.values(upright)["Smiling"] == pytest.approx(smiling) and w.session.is_modified(lying)
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w), both), timeout=TIMEOUT)


def test_not_a_face_keeps_the_history_with_its_own_step_and_an_export_stays_the_saved_state(
        editor, qtbot, tmp_path, portrait_path):
    w = editor
    photo, x_lying = lying_beside_upright(portrait_path)
    _open(w, qtbot, photo, tmp_path / "lying.png")
    _trigger(w, qtbot, w.act_more_faces)
    orig = original(w)
    upright = next(i for i, f in enumerate(w._photo.faces) if f.box[0] < x_lying)
    lying = 1 - upright
    w.panel.select_face(upright)
    smiling = _other_end(w)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    export(w, qtbot, tmp_path / "upright_smiling.png")
    assert not w.isWindowModified()
    w.panel.select_face(lying)
    _other_end(w)
    w.panel.select_face(upright)
    _other_end(w, "Male")
    assert w.undo_stack.count() == 3 and w.isWindowModified()
    w.panel.select_face(lying)
    _trigger(w, qtbot, w.act_not_face)
    assert len(w._photo.faces) == 1
    # the history stays, Not a face its last step (s49f: it took the lying face's step with it for good)
    assert w.undo_stack.count() == 4 and w.isWindowModified()
    _trigger(w, qtbot, w.act_undo)   # the lying face back, with its edit
    assert len(w._photo.faces) == 2 and w.session.is_modified(lying)
    w.act_undo.trigger()
    w.act_undo.trigger()
    assert w.session.values(upright)["Smiling"] == pytest.approx(smiling)
    assert not w.session.is_modified(upright, "Male") and not w.session.is_modified(lying)
    assert not w.isWindowModified()   # back at what was exported: that face edited so, the lying one not
    w.act_undo.trigger()
    assert not w.session.is_modified() and w.isWindowModified()
    qtbot.waitUntil(lambda: w.preview_current() and np.array_equal(preview(w), orig), timeout=TIMEOUT)
