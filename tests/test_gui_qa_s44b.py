"""Defects a QA walk of the real window found (session 44), driven as a user meets them (the real
MainWindow and BatchDialog, the tiny test model, the vendored portrait; nothing of ours is mocked):

- Next/Previous photo in a folder stuck on a file that does not open (a truncated JPEG, a text file
  named .jpg): every press tried it again;
- File ▸ Save edit as recipe… with no fader moved wrote a recipe of no values ("Saved recipe"), and
  a batch with it copied every photo and reported them written; a summary counted photos copied
  unchanged (no face needed the edit) as written, without a word;
- "3 of the outputs already exist" named none of them, and called files outputs that a photo that
  turns out unreadable never replaces;
- a batch that stopped before its first photo (a recipe the model refused) left the remembered
  output folder, never made, out of the dialog the next time;
- Erase edit everywhere with nothing edited entered the brush and made an undo step for nothing.
"""
from __future__ import annotations

import json
import shutil
import time

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from fader_desktop.batch_dialog import BatchDialog  # noqa: E402
from fader_desktop.settings import Settings  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401


def _wait_for_run(dlg, limit: float = 120) -> None:
    app = QApplication.instance()
    deadline = time.monotonic() + limit
    while dlg.is_running() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()
    assert not dlg.is_running()


# -- 1. Next/Previous photo pass over a file of the folder that does not open ---------------------

def test_next_and_previous_photo_go_past_a_file_of_the_folder_that_does_not_open(editor, qtbot, tmp_path,
                                                                                 portrait_path):
    """QA: in a folder with a truncated JPEG, every Ctrl+PgDown said "d_truncated.jpg: cannot read
    image" again and the photos after it could never be reached (Ctrl+PgUp likewise on a text file
    named .jpg, refused by its header when the shown photo has edits). Each failure is said once;
    the next press goes on from the file that failed."""
    w = editor
    a, text, cut, d = (tmp_path / n for n in ("a.jpg", "b_text.jpg", "c_truncated.jpg", "d.jpg"))
    for p in (a, d):
        shutil.copy(portrait_path, p)
    text.write_text("shopping list\n")
    cut.write_bytes(portrait_path.read_bytes()[:6000])
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(a)
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled(), timeout=TIMEOUT)
    # an edit not exported: the text file is refused by its header, before "Discard edits?"
    w.panel.row("Smiling").spin.setValue(2.0 if w.panel.row("Smiling").spin.value() < 1 else -1.0)
    w.errors.clear()
    w.act_next.trigger()
    assert [m for _t, m in w.errors if "b_text.jpg" in m] and w._photo.path == a
    with qtbot.waitSignal(w.errorShown, timeout=TIMEOUT):
        w.act_next.trigger()                   # on to the truncated one (the edit discarded), which fails
    assert "c_truncated.jpg" in w.errors[-1][1] and w._photo.path == a
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.act_next.trigger()                   # and past it: it stuck there before
    assert w._photo.path == d and len(w.errors) == 2, w.errors
    with qtbot.waitSignal(w.errorShown, timeout=TIMEOUT):
        w.act_prev.trigger()
    assert "c_truncated.jpg" in w.errors[-1][1]
    with qtbot.waitSignal(w.errorShown, timeout=TIMEOUT):
        w.act_prev.trigger()                   # unedited now: the open itself fails
    assert "b_text.jpg" in w.errors[-1][1] and w._photo.path == d
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.act_prev.trigger()
    assert w._photo.path == a and len(w.errors) == 4, w.errors
    # back towards the photo shown from one that failed: the one shown is not opened again
    with qtbot.waitSignal(w.errorShown, timeout=TIMEOUT):
        w.act_next.trigger()
    w.act_prev.trigger()
    assert "No more photos" in w.statusBar().currentMessage() and w._photo.path == a
    assert w.jobs.wait_idle(TIMEOUT / 1000)


# -- 2. nothing edited: no recipe saved, no batch that only copies --------------------------------

def test_a_recipe_is_not_saved_with_no_fader_moved(editor, qtbot, tmp_path, monkeypatch):
    """QA: Save edit as recipe… with no slider moved wrote {"values": {}} and said "Saved recipe"."""
    w = editor
    recipe = tmp_path / "nothing.recipe.json"
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: asked.append(a) or (str(recipe), ""))
    w.act_recipe.trigger()
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    assert not recipe.exists() and not asked
    assert w.errors and w.errors[-1][0] == "Cannot save recipe" and "Nothing to save" in w.errors[-1][1]
    assert not w.statusBar().currentMessage().startswith("Saved recipe")
    # a fader moved: saved as before
    w.panel.row("Smiling").spin.setValue(2.0 if w.panel.row("Smiling").spin.value() < 1 else -1.0)
    w.act_recipe.trigger()
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    assert asked and set(json.loads(recipe.read_text())["values"]) == {"Smiling"}


def test_a_batch_with_a_recipe_of_no_values_is_refused(qtbot, tmp_path, portrait_path, tiny_model_path):
    """QA: a recipe of no values ran, "10 photo(s) written", every one a copy; "Current edit" is
    greyed out with no slider moved for that very reason."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copy(portrait_path, src / "a.jpg")
    recipe = tmp_path / "empty.json"
    recipe.write_text(json.dumps({"format": "fader-recipe", "version": 1, "model": "tiny", "values": {}}))
    dlg = BatchDialog(None, tiny_model_path, "cpu", {})
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.recipe_edit.setText(str(recipe))
    started = dlg.start()
    _wait_for_run(dlg)
    assert not started and not out.exists()
    assert dlg.message_box is not None and "sets no fader" in dlg.message_box.text(), dlg.message_box.text()
    assert "copied unchanged" in dlg.message_box.text()


def test_the_summary_says_which_written_photos_were_left_unchanged(qtbot, tmp_path, portrait_path, tiny_model_path):
    """QA: after a Smiling=1 run the summary said "9 photo(s) written" when five of them were
    copies ("0 of 1 face(s) changed; copied unchanged" in the report). The tiny model reads the
    portrait as smiling: Smiling 1 changes no face."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for n in ("a.jpg", "b.jpg"):
        shutil.copy(portrait_path, src / n)
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 1.0})
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    assert dlg.start()
    _wait_for_run(dlg)
    assert dlg.report.counts()["ok"] == 2 and dlg.summary_box is not None
    head, details = dlg.summary_box.text(), dlg.summary_box.detailedText()
    assert "2 photos written" in head and "None of them was edited" in head, head
    assert "a.jpg: unchanged — 0 of 1 face changed" in details, details
    # the report a --report file holds says so in a field, not only in the reason's words
    assert [d["changed"] for d in dlg.report.to_dict()["items"]] == [0, 0]
    dlg.summary_box.close()
    # the same photos edited (Smiling 2), the two runs' photos taken together: the count of those unchanged
    from core.batch import BatchReport
    unchanged = dlg.report
    dlg.values = {"Smiling": 2.0}
    dlg.out_edit.setText(str(tmp_path / "out2"))
    assert dlg.start()
    _wait_for_run(dlg)
    edited = dlg.report
    dlg.summary_box.close()
    assert "were not edited" not in dlg.summary_text(edited)[0] and "None of them" not in dlg.summary_text(edited)[0]
    both = BatchReport(str(src), str(out), [unchanged.items[0], edited.items[1]], seconds=1.0)
    head, details = dlg.summary_text(both)
    assert "2 photos written" in head and "1 of them was not edited" in head, head
    assert "a.jpg: unchanged" in details and "b.jpg: unchanged" not in details


# -- 3. the files in the way are named ---------------------------------------------------------------

def test_the_existing_outputs_question_names_the_files(qtbot, tmp_path, tiny_model_path):
    """QA: "3 of the outputs already exist in …/out4. Replace them…?" named none, and two of the
    three were files that an unreadable or faceless photo never replaces. Nothing is read here:
    the question comes before the run."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        (src / n).write_bytes(b"\xff\xd8 whatever")
    for n in ("a.jpg", "c.jpg", "d.jpg", "e.jpg", "notes.txt"):
        (out / n).write_bytes(b"theirs")
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 2.0})
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    assert not dlg.start() and dlg.existing_box is not None
    text = dlg.existing_box.text() + " " + dlg.existing_box.informativeText()
    assert "a.jpg, c.jpg, d.jpg and 1 more" in text, text
    assert "4 files in" in text and "of the outputs already exist" not in text, text
    assert "cannot be edited leaves its file" in text
    dlg.existing_box.close()
    for n in ("d.jpg", "e.jpg"):
        (out / n).unlink()
    assert not dlg.start()
    assert "a.jpg and c.jpg." in dlg.existing_box.text(), dlg.existing_box.text()
    dlg.existing_box.close()
    assert all((out / n).read_bytes() == b"theirs" for n in ("a.jpg", "c.jpg"))


# -- 4. the output folder of a run that stopped before it began --------------------------------------

def test_an_output_folder_not_made_yet_comes_back_in_the_dialog(qtbot, tmp_path, portrait_path, tiny_model_path):
    """QA: a batch refused once the model was loaded (a recipe with an attribute the model lacks)
    made no output folder, and the next Batch export showed "Save to:" empty. The folder the user
    typed comes back (the run makes it); one whose parent is gone too (an unplugged drive) does not."""
    ini = str(tmp_path / "fader-desktop.ini")
    src, out = tmp_path / "in", tmp_path / "new" / "out"
    src.mkdir()
    (tmp_path / "new").mkdir()
    shutil.copy(portrait_path, src / "a.jpg")
    recipe = tmp_path / "other_model.json"
    recipe.write_text(json.dumps({"format": "fader-recipe", "version": 1, "values": {"Eyeglasses": 1.0}}))
    dlg = BatchDialog(None, tiny_model_path, "cpu", {}, settings=Settings(QSettings(ini, QSettings.Format.IniFormat)))
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(out))
    dlg.recipe_edit.setText(str(recipe))
    assert dlg.start()
    _wait_for_run(dlg)
    assert dlg.error and "Eyeglasses" in dlg.error and not out.exists()
    dlg.message_box.close()
    again = BatchDialog(None, tiny_model_path, "cpu", {}, settings=Settings(QSettings(ini, QSettings.Format.IniFormat)))
    qtbot.addWidget(again)
    assert again.in_edit.text() == str(src) and again.out_edit.text() == str(out)
    (tmp_path / "new").rmdir()
    gone = BatchDialog(None, tiny_model_path, "cpu", {}, settings=Settings(QSettings(ini, QSettings.Format.IniFormat)))
    qtbot.addWidget(gone)
    assert gone.out_edit.text() == ""


# -- 5. Erase edit everywhere needs an edit -------------------------------------------------------------

def test_erase_edit_everywhere_is_greyed_out_with_nothing_edited(editor, qtbot):
    """QA: with no fader moved, Edit ▸ Erase edit everywhere entered the brush, painted the photo
    red and added an Undo step, all for nothing."""
    w = editor
    assert not w.act_erase_everywhere.isEnabled()
    w.erase_edit_everywhere()   # called all the same (a shortcut a user gave it): nothing happens
    assert not w.canvas.brush_enabled() and w.undo_stack.count() == 0
    assert w.session.masks == [None] * len(w._photo.faces)
    assert "Nothing to erase" in w.statusBar().currentMessage()
    w.panel.row("Smiling").spin.setValue(2.0 if w.panel.row("Smiling").spin.value() < 1 else -1.0)
    assert w.act_erase_everywhere.isEnabled()
    w.undo_stack.undo()
    assert not w.act_erase_everywhere.isEnabled()
