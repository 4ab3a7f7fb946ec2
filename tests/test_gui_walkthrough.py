"""Defects a QA walkthrough of the real window found, each driven as a user meets it: the real
MainWindow and dialogs, the tiny test model, the vendored portrait; nothing of ours is mocked
(a confirmation's answer is given through the window's own ask_confirm hook).

- a failed export left the window thinking it was still exporting: closing it then discarded
  the edits without asking;
- File ▸ Recent Models listed every training run's model as "model.fader";
- the Export dialog wrote z.tiff as z.tiff.jpg (TIFF and BMP were not offered), and z.gif as
  z.gif.jpg without saying so;
- the training dialog's Options silently overrode the form's fields (--steps 5 ran 5 steps of
  "20000"), and a refused start left the last run's error on show;
- the status bar kept the last photo's render time under a photo without a face;
- Before/after split and Show face boxes stayed enabled with no face, and the disabled faders
  marked a reading (a filled triangle at 0) of a face that is not there;
- Help ▸ Keyboard shortcuts listed a dedicated "Redo" key and undo/redo by their changing text;
- the batch dialog named the current edit by the model's identifiers (Mouth_Slightly_Open).
"""
from __future__ import annotations

import html
import os
import re

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox  # noqa: E402

from core.image_io import save_image  # noqa: E402
from fader_desktop.batch_dialog import BatchDialog  # noqa: E402
from fader_desktop.dialogs import ExportDialog  # noqa: E402
from fader_desktop.main_window import MainWindow  # noqa: E402
from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# the window fixtures and helpers of tests/test_gui.py
from test_gui import (TIMEOUT, _settings, editor, original, own_window_with_an_edit, preview,  # noqa: E402,F401
                      shared_window)


def open_faceless(w, qtbot, folder):
    """Open a grey gradient, in which no face is found."""
    wall = np.tile(np.linspace(40, 200, 300, dtype=np.uint8)[None, :, None], (200, 1, 3))
    save_image(folder / "wall.png", wall)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(folder / "wall.png")
    assert not w._photo.faces and not w._photo.skipped


# -- 1. a failed export ------------------------------------------------------------------------------
def test_closing_after_a_failed_export_still_asks_to_discard_the_edits(qtbot, tmp_path, tiny_model_path,
                                                                        portrait_path, monkeypatch):
    """Export into a folder that does not exist fails; the window still counted it as running, so
    closing it skipped "Discard edits?" and the edit was lost unasked."""
    w = own_window_with_an_edit(qtbot, tmp_path, tiny_model_path, portrait_path)
    errors, asked = [], []
    monkeypatch.setattr(w, "show_error", lambda title, message: errors.append((title, message)))
    monkeypatch.setattr(w, "ask_confirm", lambda title, *a, **k: asked.append(title) or False)
    try:
        assert w.jobs.wait_idle(TIMEOUT / 1000) and w.is_modified() and w.isWindowModified()
        with qtbot.waitSignal(w.errorShown, timeout=TIMEOUT):
            assert w.export_to(tmp_path / "no such folder" / "edited.jpg")
        assert errors and errors[-1][0] == "Export failed"
        w.close()
        assert asked == ["Discard edits?"], "closing with unsaved edits must ask"
        assert w.isVisible(), "Cancel keeps the window (and the edit)"
        assert w.is_modified()
    finally:
        w.undo_stack.setClean()
        w.close()


# -- 2. Recent Models -------------------------------------------------------------------------------
def test_recent_models_of_the_same_name_are_told_apart_by_their_folder(qtbot, tmp_path):
    from resources import default_model_path
    s = _settings(tmp_path)
    runs = tmp_path / "runs"
    models = [runs / "r1" / "model.fader", runs / "r7" / "model.fader", tmp_path / "mine.fader",
              tmp_path / "a" / "same" / "m.fader", tmp_path / "b" / "same" / "m.fader"]
    for m in reversed(models):
        s.add_recent_model(m)
    s.add_recent_model(default_model_path())
    photos = [tmp_path / "cam1" / "IMG_0001.jpg", tmp_path / "cam2" / "IMG_0001.jpg", tmp_path / "Tom & Jerry.jpg"]
    for p in reversed(photos):
        s.add_recent(p)
    w = MainWindow(s, device="cpu")
    qtbot.addWidget(w)
    w.fill_recent_models_menu()
    entries = [(a.text(), a.toolTip()) for a in w.recent_models_menu.actions() if not a.isSeparator()]
    j = os.path.join
    assert [t for t, _tip in entries] == ["Default model (built in)", j("r1", "model.fader"), j("r7", "model.fader"),
                                          "mine.fader", j("a", "same", "m.fader"), j("b", "same", "m.fader"),
                                          "Clear list"]
    # the tooltip still gives the whole path
    assert [tip for _t, tip in entries[1:6]] == [str(m.resolve()) for m in models]
    w.fill_recent_menu()
    texts = [a.text() for a in w.recent_menu.actions() if not a.isSeparator()]
    assert texts == [j("cam1", "IMG_0001.jpg"), j("cam2", "IMG_0001.jpg"), "Tom && Jerry.jpg", "Clear list"]


# -- 3. the Export dialog's formats -----------------------------------------------------------------
def test_export_dialog_writes_tiff_and_bmp_and_says_when_it_adds_a_suffix(qtbot, tmp_path):
    d = ExportDialog(tmp_path / "photo_edited.jpg")
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    formats = [d.format_combo.itemText(i) for i in range(d.format_combo.count())]
    assert "TIFF" in formats and "BMP" in formats
    for typed, fmt in (("z.tiff", "TIFF"), ("z.TIF", "TIFF"), ("z.bmp", "BMP"), ("z.JPEG", "JPEG"),
                       ("z.tif", "TIFF")):
        d.path_edit.setText(typed)
        assert d.result_path() == tmp_path / typed, "a suffix the app writes is kept as typed"
        assert d.format_combo.currentText() == fmt
        assert not d.name_note.isVisibleTo(d)
    assert not d._quality_host.isEnabled(), "TIFF has no quality setting"
    d.path_edit.setText("z.bmp")
    assert not d.exif_check.isEnabled(), "BMP has no place for EXIF"
    # choosing TIFF in the list renames the file to .tif
    d.path_edit.setText("y.png")
    d.format_combo.setCurrentIndex(formats.index("TIFF"))
    assert d.path_edit.text() == "y.tif" and d.result_path() == tmp_path / "y.tif"
    # a suffix the app does not write: the format's is added, and the dialog says so before writing
    d.format_combo.setCurrentIndex(formats.index("JPEG"))
    d.path_edit.setText("z.gif")
    assert d.result_path() == tmp_path / "z.gif.jpg"
    assert d.name_note.isVisibleTo(d) and "z.gif.jpg" in d.name_note.text() and "GIF" in d.name_note.text()
    # the dialog grew to the note (it kept its size and cut the note's lines off)
    assert d.height() >= d.layout().totalHeightForWidth(d.width())
    assert d.name_note.geometry().bottom() < d.export_button.mapTo(d, d.export_button.rect().topLeft()).y()
    # a dot in a name is no file type, and a folder typed alone is written into: no note
    (tmp_path / "exports.2024").mkdir()
    for typed, written in (("Party 2024.06.01", "Party 2024.06.01.jpg"), ("v1.2 final", "v1.2 final.jpg"),
                           (str(tmp_path / "exports.2024"), "exports.2024/photo_edited.jpg")):
        d.path_edit.setText(typed)
        assert d.result_path() == tmp_path / written and not d.name_note.isVisibleTo(d), typed
    d.path_edit.setText("z")   # no suffix at all: the format's, as every save dialog does
    assert d.result_path() == tmp_path / "z.jpg" and not d.name_note.isVisibleTo(d)

    # the next export proposes the format of the last one
    s = _settings(tmp_path)
    for f in ("tif", "tiff", "bmp", "png"):
        s.export_format = f
        assert s.export_format == f
    s.batch_format = "tif"
    assert s.batch_format == "tif"


def training_dialog(qtbot, tmp_path, data: str, options: str, **kwargs) -> TrainingDialog:
    """The real training dialog with its Data, Run folder and Options fields filled in."""
    d = TrainingDialog(**kwargs)
    qtbot.addWidget(d)
    d.data_edit.setText(str(tmp_path / data))
    d.out_edit.setText(str(tmp_path / "run"))
    d.extra_edit.setText(options)
    return d


# -- 4, 5. the training dialog's Options -------------------------------------------------------------
@pytest.mark.parametrize("typed, option, field", [
    ("--steps 5", "--steps", "Steps"), ("--ste=5", "--steps", "Steps"), ("--epochs 2", "--epochs", "Steps"),
    ("--img-size 32", "--img-size", "Size"), ("--img=32", "--img-size", "Size"),
    ("--attr Smiling", "--attr", "Attributes"),
])
def test_an_option_a_field_sets_is_refused_in_options(qtbot, tmp_path, monkeypatch, typed, option, field):
    """"20000 steps" in the form and --steps 5 in Options ran 5 steps (argparse takes the last),
    with --eval-every counted from 20000. Every option a field sets is refused, abbreviated too."""
    said = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: said.append(text))
    d = training_dialog(qtbot, tmp_path, "photos", f"--threads 1 {typed}")
    with pytest.raises(ValueError, match=f"set {option} with the .*{field}"):
        d.arguments()
    d.start()
    assert not d.is_running()
    assert said and said[-1].startswith(f"Set {option} with the") and field in said[-1], said
    assert not (tmp_path / "run").exists()


def test_init_in_options_is_refused_only_while_the_fine_tune_box_gives_it(qtbot, tmp_path, tiny_model_path):
    """What adds to the form rather than replacing a field goes through: the flags, a second
    --data, --eval-every; --init too unless the fine-tune box gives it the open model."""
    d = training_dialog(qtbot, tmp_path, "photos",
                        f"--eval-every 7 --align --data {tmp_path / 'more'} --init {tmp_path / 'other.fader'} "
                        "--device cuda:1 --max-minutes 0",   # what the Device and minutes fields cannot say
                        current_model=str(tiny_model_path))
    args = d.arguments()
    assert "--align" in args and f"--data={tmp_path / 'more'}" in args
    assert args.count("--eval-every") == 1 and args[args.index("--eval-every") + 1] == "7"
    assert f"--init={tmp_path / 'other.fader'}" in args
    assert args[-4:] == ["--device", "cuda:1", "--max-minutes", "0"], args   # after the form's: they win
    d.finetune_check.setChecked(True)
    with pytest.raises(ValueError, match="set --init with the 'Fine-tune the open model' box"):
        d.arguments()


def test_a_refused_start_replaces_the_last_runs_status(qtbot, tmp_path, monkeypatch):
    """After a run that failed, "Cannot read the options: No closing quotation" left "Training
    stopped: …" of that run on show, as if this start had failed so."""
    said = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: said.append(text))
    d = training_dialog(qtbot, tmp_path, "no such photos", "--quiet")
    finished = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert d.phase_label.text().startswith("Training stopped: "), d.phase_label.text()
    d.extra_edit.setText("--quiet --exclude 'held.txt")
    d.start()
    assert not d.is_running() and said and "No closing quotation" in said[-1]
    text = d.phase_label.text()
    assert "Training stopped" not in text and "no such photos" not in text, text
    assert text.startswith("Not started") and "No closing quotation" in text, text


# -- 6, 7. a photo without a face --------------------------------------------------------------------
def test_a_photo_without_a_face_shows_no_render_time_of_the_photo_before(editor, qtbot, tmp_path):
    w = editor
    smiling = w.panel.row("Smiling")
    smiling.spin.setValue(2.0 if smiling.spin.value() < 1 else -1.0)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), original(w)), timeout=TIMEOUT)
    assert w.render_label.text().startswith("Render ") and w.last_render_ms is not None
    open_faceless(w, qtbot, tmp_path)
    assert w.render_label.text() == "" and w.last_render_ms is None, "the last photo's render time stayed"


def test_a_photo_without_a_face_has_no_split_or_face_boxes(editor, qtbot, tmp_path, portrait_path):
    w = editor
    assert w.act_split.isEnabled() and w.act_boxes.isEnabled()
    w.act_split.setChecked(True)
    assert w.canvas.split_enabled()
    open_faceless(w, qtbot, tmp_path)
    assert not w.act_split.isEnabled() and not w.act_boxes.isEnabled(), "nothing to compare or outline"
    assert not w.act_split.isChecked() and not w.canvas.split_enabled()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(portrait_path)
    assert w._photo.faces and w.act_split.isEnabled() and w.act_boxes.isEnabled()


def test_faders_mark_no_reading_without_a_face(editor, qtbot, tmp_path, portrait_path):
    """The disabled faders of a faceless photo drew a filled "own value" triangle at 0: a reading
    of a face that is not there."""
    w = editor
    smiling = w.panel.row("Smiling")
    assert smiling.slider.own_mark()[0] is not None
    open_faceless(w, qtbot, tmp_path)
    for name in ("Smiling", "Male"):
        row = w.panel.row(name)
        assert not row.isEnabled()
        assert row.slider.own_mark()[0] is None, f"{name}: a reading of a face that is not there"
        assert "face" not in row.slider.toolTip()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(portrait_path)
    assert smiling.slider.own_mark()[0] is not None


def test_without_a_photo_there_is_nothing_to_split_or_outline(qtbot, tmp_path):
    w = MainWindow(_settings(tmp_path), device="cpu")
    qtbot.addWidget(w)
    assert not w.act_split.isEnabled() and not w.act_boxes.isEnabled()


# -- 8. Help ▸ Keyboard shortcuts ---------------------------------------------------------------------
def test_shortcuts_list_undo_and_redo_by_name_with_keys_on_a_keyboard(editor, qtbot):
    w = editor
    w.panel.row("Smiling").spin.setValue(2.0 if w.panel.row("Smiling").spin.value() < 1 else -1.0)
    w.panel.row("Male").spin.setValue(2.0 if w.panel.row("Male").spin.value() < 1 else -1.0)
    w.act_undo.trigger()
    assert w.act_undo.text().startswith("&Undo Smiling") and w.act_redo.text().startswith("&Redo Male")
    w.show_shortcuts()
    try:
        rows = [(html.unescape(k), html.unescape(t)) for k, t in
                re.findall(r"<tr><td><code>(.*?)</code></td><td>(.*?)</td></tr>", w._shortcuts_dialog.html)]
        texts = [t for _k, t in rows]
        assert "Undo" in texts and "Redo" in texts, texts
        assert not [t for t in texts if t.startswith(("Undo ", "Redo "))], texts
        keys = dict((t, k.split(", ")) for k, t in rows)
        assert "Ctrl+Shift+Z" in keys["Redo"] and "Ctrl+Y" in keys["Redo"] and "Ctrl+Z" in keys["Undo"]
        # the platform's dedicated keys (Qt.Key_Redo, Key_Open, Key_Help…) are named by what they do
        named = {"Redo", "Undo", "Open", "Copy", "Paste", "Help", "Zoom In", "Zoom Out"}
        assert not [(t, k) for t, ks in keys.items() for k in ks if k in named], keys
    finally:
        w._shortcuts_dialog.close()


# -- 9. the batch dialog's current edit ------------------------------------------------------------------
def test_batch_dialog_names_the_current_edit_as_the_faders_do(qtbot, tiny_model_path):
    d = BatchDialog(None, tiny_model_path, "cpu", {"Mouth_Slightly_Open": 0.0, "Hair": [0, 1, 0]})
    qtbot.addWidget(d)
    try:
        assert d.current_radio.text().replace("&", "") == "Current edit (Mouth slightly open 0.00, Hair [0 1 0])"
    finally:
        d.jobs.shutdown()


def test_batch_dialog_offers_quality_only_for_lossy_formats(qtbot, tiny_model_path):
    """JPEG and WebP have a quality; PNG, TIFF and BMP do not, and the box is greyed for them."""
    from fader_desktop.batch_dialog import FORMATS
    d = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 1.0})
    qtbot.addWidget(d)
    try:
        enabled = {}
        for i, (label, _fmt) in enumerate(FORMATS):
            d.format_combo.setCurrentIndex(i)
            enabled[label] = d.quality_spin.isEnabled()
        assert enabled == {"Same as input": True, "PNG": False, "JPEG": True, "WebP": True, "TIFF": False, "BMP": False}
    finally:
        d.jobs.shutdown()


def test_a_photo_opened_under_another_name_is_listed_once(tmp_path):
    """Open Recent listed one photo twice when it was opened under two names (a hard link here; on
    macOS and Windows the same name in other case, 'IMG_1.JPG' and 'img_1.jpg')."""
    from PySide6.QtCore import QSettings

    from fader_desktop.settings import Settings
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    a, other = tmp_path / "IMG_1.JPG", tmp_path / "other.jpg"
    a.write_bytes(b"photo")
    other.write_bytes(b"another photo")
    os.link(a, tmp_path / "img_1.jpg")
    for p in (a, other, tmp_path / "img_1.jpg"):
        settings.add_recent(p)
    assert settings.recent_files() == [str(tmp_path / "img_1.jpg"), str(other)]
    settings.remove_recent(str(a))       # a photo found gone under one name leaves the list
    assert settings.recent_files() == [str(other)]


def test_the_face_selector_says_which_face_number_the_command_line_uses(editor, qtbot, tmp_path, portrait_path):
    """The window counts faces from 1, `--face` from 0: "Face 2" copied into `edit --face 2` edited
    the next face. The selector and its items say the command line's number."""
    from PySide6.QtCore import Qt

    from core.image_io import load_image
    w = editor
    rgb = load_image(portrait_path)
    save_image(tmp_path / "two.png", np.concatenate([rgb, rgb[:, ::-1]], axis=1))
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(tmp_path / "two.png")
    combo = w.panel.face_combo
    assert combo.itemText(1) == "Face 2"
    assert "--face 1 on the command line" in combo.itemData(1, Qt.ItemDataRole.ToolTipRole)
    w.act_next_face.trigger()
    assert w.session.selected == 1 and "this is --face 1 (counted from 0)" in combo.toolTip()


# -- a QA round on editing workflows: what counts as saved ----------------------------------------

def test_an_edit_made_while_an_export_runs_is_not_marked_saved(editor, qtbot, tmp_path, monkeypatch):
    """Export, then (before it was written) undo and make another edit: the undo index came back
    to the exported one, so the finished export marked the new, never exported edit as saved, and
    closing discarded it without asking."""
    w = editor
    smiling, male = w.panel.row("Smiling"), w.panel.row("Male")
    smiling.spin.setValue(2.0 if smiling.spin.value() < 1 else -1.0)
    index = w.undo_stack.index()
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        assert w.export_to(tmp_path / "exported.png")
        # no events are processed until here: the export's end is handled after these edits
        w.act_undo.trigger()
        male.spin.setValue(2.0 if male.spin.value() < 1 else -1.0)
        assert w.undo_stack.index() == index
    assert not w.undo_stack.isClean() and w.isWindowModified()
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda title, text, *a, **k: asked.append(title) or False)
    w.close()
    assert asked and "Discard" in asked[0] and w.isVisible()
    # the edit that was exported, shown when the export ends, is saved
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        assert w.export_to(tmp_path / "exported2.png")
    assert w.undo_stack.isClean() and not w.isWindowModified()


def test_a_model_with_other_ranges_keeps_the_edit_unsaved(editor, qtbot, tmp_path, monkeypatch):
    """A model with the same attribute names but other slider ranges: the edit carried over into
    the faders and the preview, but the history was cleared and the window read as unmodified, so
    the next photo discarded the edit without asking."""
    from conftest import TINY_ATTRS, make_tiny_model
    w = editor
    other = make_tiny_model(tmp_path / "other_ranges.fader", attrs=tuple(
        (n, v, (-0.5, 1.5) if n == "Smiling" else r) for n, v, r in TINY_ATTRS))
    smiling = w.panel.row("Smiling")
    smiling.spin.setValue(1.2 if smiling.spin.value() < 0.5 else -0.2)
    value = smiling.spin.value()
    monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.load_model(other)
    assert w.panel.row("Smiling").spin.value() == pytest.approx(value)
    assert not w.undo_stack.isClean() and w.isWindowModified()
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda title, text, *a, **k: asked.append(title) or False)
    w.close()
    assert asked and "Discard" in asked[0]


@pytest.mark.parametrize("locale_name, typed, value", [("C", "0,7", 0.7), ("C", "0.25", 0.25),
                                                      ("de_DE", "0.7", 0.7), ("de_DE", "0,4", 0.4)])
def test_a_value_typed_with_either_decimal_mark_is_taken(editor, qtbot, locale_name, typed, value):
    """Typing 0,7 in an English locale set the fader to 0 (the comma and then the 7 were refused
    one by one): a full flip from 1, with no word."""
    from PySide6.QtCore import QLocale, Qt
    spin = editor.panel.row("Male").spin
    before = spin.locale()
    spin.setLocale(QLocale(locale_name))
    try:
        spin.lineEdit().selectAll()
        qtbot.keyClicks(spin.lineEdit(), typed)
        qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
        assert spin.value() == pytest.approx(value)
        assert editor.session.slider("Male", editor.session.selected) == pytest.approx(value)
    finally:
        spin.setLocale(before)


def test_a_note_dropped_with_photos_does_not_hold_up_next_photo(editor, qtbot, tmp_path, portrait_path):
    """photo, notes.txt, photo dropped together: 'photo 1 of 3', then every Ctrl+PgDown failed on
    notes.txt with an error and the third photo could never be reached. The note is left out and
    said so; a photo of the list that fails to open is passed over by the next Ctrl+PgDown."""
    import shutil

    from test_gui import drop_files
    w = editor
    a, note, broken, b = tmp_path / "a.jpg", tmp_path / "notes.txt", tmp_path / "broken.jpg", tmp_path / "b.jpg"
    for p in (a, b):
        shutil.copy(portrait_path, p)
    note.write_text("shopping list\n")
    broken.write_bytes(b"not really a jpeg")
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        drop_files(w, a, note, broken, b)
    assert w._photo.path == a and "photo 1 of 3" in w.statusBar().currentMessage()
    w.errors.clear()
    w.act_next.trigger()                              # broken.jpg: an error, the photo stays
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert "broken.jpg" in w.errors[-1][1] and w._photo.path == a
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.act_next.trigger()                          # and on to the last
    assert w._photo.path == b and "photo 3 of 3" in w.statusBar().currentMessage()
