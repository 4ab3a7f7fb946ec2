"""Defects a QA walk of the real window found (session 43), driven as a user meets them (the real
MainWindow, the tiny test model, the vendored portrait; nothing of ours is mocked):

- after a fader move and its undo, the preview of a photo shown zoomed out was not the image shown
  when it opened (2-3 levels off over much of the photo): at opening the canvas scaled the photo
  with Qt, afterwards it showed the worker's area-averaged downscale;
- for BMP the Export dialog's greyed-out "Keep the original's metadata" box still showed ticked;
- a photo replaced on disk by another file of its format after it opened: the Export dialog said
  nothing for it unedited (as for a copy of the file), yet the export renders what was opened and
  drops what that rendering cannot keep (16 bits here).
"""
from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from fader_desktop.dialogs import ExportDialog  # noqa: E402
from fader_desktop.main_window import MainWindow  # noqa: E402
from fader_desktop.workers import qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from test_gui import TIMEOUT, _settings, editor, shared_window  # noqa: E402,F401


# -- 1. the preview of an unedited photo is one image ----------------------------------------------

def settled_view(w, qtbot) -> np.ndarray:
    """The canvas as it is painted once the view has settled and every render has arrived."""
    qtbot.waitUntil(lambda: not w._rescale.isActive() and w.jobs.is_idle() and w.preview_current()
                    and not w._busy, timeout=TIMEOUT)
    return qimage_to_numpy(w.canvas.grab().toImage())


def edit_and_undo(w, qtbot) -> None:
    row = w.panel.row("Smiling")
    start = row.spin.value()
    before = settled_view(w, qtbot)
    row.spin.setValue(2.0 if start < 1 else -1.0)
    assert not np.array_equal(settled_view(w, qtbot), before), "the edit should show"
    w.act_undo.trigger()
    assert row.spin.value() == start and not w.session.is_modified()


def test_an_edit_and_its_undo_bring_back_the_preview_shown_at_opening(qtbot, tmp_path, tiny_model_path,
                                                                      portrait_path):
    """QA: zoomed out (the photo larger than the view), Ctrl+Z after a fader move left 60 % of the
    preview's pixels a level off the one shown at opening (2-3 levels on a 24 MP photo)."""
    w = MainWindow(_settings(tmp_path), device="cpu")
    qtbot.addWidget(w)
    w.resize(700, 500)   # the 512 px portrait shown at about 74 %
    w.show()
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.start(model=tiny_model_path, images=[portrait_path])
    assert w._photo.faces and w.canvas.preview_scale() < 1.0
    opened = settled_view(w, qtbot)
    edit_and_undo(w, qtbot)
    undone = settled_view(w, qtbot)
    changed = (undone != opened).any(axis=2)
    assert not changed.any(), \
        f"{changed.mean():.0%} of the view changed, by up to {np.abs(undone.astype(int) - opened).max()} levels"
    # and at another zoom the unedited photo is still the one image
    w.canvas.zoom_out()
    zoomed = settled_view(w, qtbot)
    edit_and_undo(w, qtbot)
    assert np.array_equal(settled_view(w, qtbot), zoomed)
    w.undo_stack.setClean()
    w.close()


# -- 2. a greyed-out metadata box shows unticked ----------------------------------------------------

def test_the_metadata_box_of_a_format_without_metadata_shows_unticked_and_the_choice_comes_back(qtbot, tmp_path):
    d = ExportDialog(tmp_path / "photo_edited.jpg", keep_exif=True)
    qtbot.addWidget(d)
    box = d.exif_check
    assert box.isEnabled() and box.isChecked()
    d.path_edit.setText("photo_edited.bmp")
    assert not box.isEnabled() and not box.isChecked(), "BMP keeps no metadata: the box must not say it does"
    assert d.keep_exif(), "the user's choice stays for the formats that keep metadata (and the next export)"
    d.format_combo.setCurrentIndex(d.format_combo.findData(".png"))
    assert box.isEnabled() and box.isChecked(), "back to a format that keeps it: the choice comes back"
    box.setChecked(False)   # the user's other choice comes back too
    d.format_combo.setCurrentIndex(d.format_combo.findData(".bmp"))
    assert not box.isChecked() and not d.keep_exif()
    d.format_combo.setCurrentIndex(d.format_combo.findData(".webp"))
    assert box.isEnabled() and not box.isChecked() and not d.keep_exif()


# -- 3. a photo replaced on disk: the dialog says what the export drops -----------------------------

def test_a_photo_replaced_on_disk_after_opening_gets_the_notes_of_the_export_it_gets(editor, qtbot, tmp_path):
    """An unedited 16-bit PNG exported as PNG is its file, copied: nothing lost, nothing said. Once
    another PNG took its place on disk the export renders the photo opened (the dialog said nothing
    of what that lost, as for a copy: then 8 bits; now its 16 bits, kept since it opened)."""
    import cv2
    w = editor
    y, x = np.mgrid[0:96, 0:128]
    deep = np.dstack([x * 2, y * 2, x + y]).astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), deep)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    qtbot.waitUntil(lambda: not w._busy, timeout=TIMEOUT)
    out = tmp_path / "deep_edited.png"
    dialog = ExportDialog(out, losses=w.export_losses)
    qtbot.addWidget(dialog)
    assert dialog.losses() == [], "the file itself is copied"
    dialog.deleteLater()
    # another PNG put in its place (a sync tool, an editor saving over it)
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), np.full((40, 50, 3), 90, np.uint8))
    os.replace(other, path)
    # the photo opened is rendered, from the 16 bits it was opened with (kept since the 16-bit
    # export, test_export_16bit.py): a PNG loses nothing of it, a JPEG its depth, and each says so
    dialog = ExportDialog(out, losses=w.export_losses)
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.loss_note.isVisibleTo(dialog) and dialog.losses() == []
    assert "more than 8 bits per channel" in "; ".join(w.export_losses(".jpg"))
    dialog.deleteLater()
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        assert w.export_to(out)
    assert "not all" not in w.statusBar().currentMessage()
    written = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape == (96, 128, 3), "the photo opened, with its 16 bits"
    assert np.array_equal(written, deep)
