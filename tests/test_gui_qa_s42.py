"""Defects a QA walk of the real window found (session 42), each driven as a user meets it: the real
MainWindow and its dialogs, the tiny test model, the vendored portrait; nothing of ours is mocked.

- after a paste (Ctrl+V of image data) Export, Open and Save recipe proposed the app's hidden data
  folder (Pasted/), and it was remembered as the last folder; the sample photo's recipe and export
  were proposed in the app's own resources/samples/;
- an export that dropped transparency or 16 bits said only "Exported …";
- a transparent photo's preview showed the edit where the photo is fully transparent (white),
  where the export keeps it transparent.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, QStandardPaths, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from core.image_io import load_image  # noqa: E402
from fader_desktop.dialogs import ExportDialog  # noqa: E402
from fader_desktop.main_window import pasted_folder  # noqa: E402
from fader_desktop.workers import numpy_to_qimage, qimage_to_numpy  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the window fixtures and helpers of tests/test_gui.py
from test_gui import TIMEOUT, editor, original, preview, shared_window  # noqa: E402,F401


def proposed_export(w) -> str:
    """Ctrl+E: the path the Export dialog proposes (the dialog is then cancelled)."""
    seen = []

    def look():
        d = QApplication.activeModalWidget()
        if isinstance(d, ExportDialog):
            seen.append(d.path_edit.text())
            d.reject()
        else:
            QTimer.singleShot(20, look)
    QTimer.singleShot(20, look)
    w.act_export.trigger()
    return seen[0]


def proposed_by_file_dialogs(w, monkeypatch) -> dict:
    """Where File ▸ Open… and File ▸ Save edit as recipe… start (Qt's dialogs answered "cancel")."""
    seen = {}

    def answer(key):
        return staticmethod(lambda parent, title, start, *a, **k: (seen.__setitem__(key, start), ("", ""))[1])
    monkeypatch.setattr(QFileDialog, "getOpenFileName", answer("open"))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer("recipe"))
    w.open_photo_dialog()
    # a recipe is saved only with a fader moved: moved for the question, then put back
    spin = w.panel.row("Smiling").spin
    own = spin.value()
    spin.setValue(own + 0.5 if own < 0.5 else own - 0.5)
    w.save_recipe_dialog()
    spin.setValue(own)
    return seen


def open_users_copy(w, qtbot, portrait_path, tmp_path):
    """Open a copy of the portrait in a folder of the user's (the portrait fixture is the sample
    photo, in the app's own folder); its folder."""
    import shutil
    folder = tmp_path / "Photos"
    folder.mkdir()
    shutil.copy(portrait_path, folder / "me.jpg")
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(folder / "me.jpg")
    return folder


def inside(path, folder) -> bool:
    from pathlib import Path
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def test_a_pasted_photo_proposes_the_users_last_folder_and_is_not_remembered(editor, qtbot, portrait_path,
                                                                             tmp_path, monkeypatch):
    """QA: after Ctrl+V of a screenshot, Ctrl+E proposed …/.local/share/FaderDesktop/Fader Desktop/Pasted/,
    as did Open and Save recipe, and the next session's Open started there too."""
    w = editor
    mine = open_users_copy(w, qtbot, portrait_path, tmp_path)
    QStandardPaths.setTestModeEnabled(True)     # the data folder under ~/.qttest, not the user's
    try:
        folder = pasted_folder()
        w.settings.export_dir = ""
        assert w.settings.last_dir == str(mine)
        QGuiApplication.clipboard().setImage(numpy_to_qimage(load_image(portrait_path)))
        with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
            w.act_paste_photo.trigger()
        pasted = w._photo.path
        assert pasted.parent == folder
        assert w.settings.last_dir == str(mine)   # not the Pasted folder
        assert proposed_export(w) == str(mine / f"{pasted.stem}_edited.jpg")
        seen = proposed_by_file_dialogs(w, monkeypatch)
        assert seen == {"open": str(mine), "recipe": str(mine / f"{pasted.stem}.recipe.json")}
        # an export written into the Pasted folder all the same is not the next one's folder
        out = tmp_path / "out"
        out.mkdir()
        w.settings.export_dir = str(out)
        with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
            w.export_to(folder / "here.png")
        assert w.settings.export_dir == str(out)
        (folder / "here.png").unlink()
        # a folder remembered so by an earlier version is passed over; with no folder of the
        # user's at all, Pictures or home
        w.settings.last_dir = w.settings.export_dir = str(folder)
        seen = proposed_by_file_dialogs(w, monkeypatch)
        assert seen["open"] and not inside(seen["open"], folder) and not inside(seen["recipe"], folder)
        assert not inside(proposed_export(w), folder)
        pasted.unlink()
    finally:
        QStandardPaths.setTestModeEnabled(False)


def test_the_sample_photo_proposes_no_folder_of_the_app(editor, qtbot, portrait_path, tmp_path, monkeypatch):
    """Help ▸ Open sample photo: its recipe was proposed beside it in resources/samples/, read-only
    in a packaged install, and that folder became the last one opened."""
    import resources
    w = editor
    mine = open_users_copy(w, qtbot, portrait_path, tmp_path)
    samples = resources.sample_photo_path().parent
    w.settings.export_dir = ""
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.act_sample.trigger()
    assert w._photo.path.parent == samples and w._photo.faces
    assert w.settings.last_dir == str(mine)
    assert proposed_export(w) == str(mine / "astronaut_edited.jpg")
    seen = proposed_by_file_dialogs(w, monkeypatch)
    assert seen == {"open": str(mine), "recipe": str(mine / "astronaut.recipe.json")}


def _photo_with_transparency(portrait_path, folder, box):
    """The portrait as an RGBA PNG: fully transparent above the face's box (inside the edit's
    region: the aligned crop reaches past the box), half transparent in a band below it."""
    import cv2
    rgb = load_image(portrait_path)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    top = int(box[1])
    alpha[:top] = 0
    alpha[int(box[3]):int(box[3]) + 20] = 100
    path = folder / "cutout.png"
    cv2.imwrite(str(path), np.dstack([rgb[..., ::-1], alpha]))
    return path, alpha


def test_a_transparent_photo_previews_as_it_exports(editor, qtbot, portrait_path, tmp_path):
    """QA: an RGBA photo's preview showed the edit's colours inside fully transparent areas (shown
    white), though the exported PNG keeps alpha 0 there (white over white). The preview, and Copy
    image, are now the exported file composited over white, pixel for pixel."""
    w = editor
    path, alpha = _photo_with_transparency(portrait_path, tmp_path, w._photo.faces[0].box)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    assert w._photo.faces
    orig = original(w)
    assert (orig[alpha == 0] == 255).all()
    row = w.panel.row("Smiling")
    row.spin.setValue(2.0 if row.spin.value() < 1 else -1.0)
    qtbot.waitUntil(lambda: w.preview_current() and not np.array_equal(preview(w), orig), timeout=TIMEOUT)
    shown = preview(w)
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        w.export_to(tmp_path / "cutout_edited.png")
    exported = load_image(tmp_path / "cutout_edited.png")   # composited over white, as the window shows photos
    edited = np.abs(exported.astype(int) - orig).max(2) > 0
    assert edited.any() and (exported[alpha == 0] == 255).all()
    assert np.array_equal(shown, exported)
    with qtbot.waitSignal(w.imageCopied, timeout=TIMEOUT):
        w.copy_image()
    assert np.array_equal(qimage_to_numpy(QGuiApplication.clipboard().image()), exported)
    w.undo_stack.setClean()


def _status_after_export(w, qtbot, path) -> str:
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        w.export_to(path)
    return w.statusBar().currentMessage()


def test_an_export_says_what_it_could_not_keep(editor, qtbot, portrait_path, tmp_path):
    """QA: a transparent PNG exported as JPEG and a 16-bit PNG exported as PNG said only "Exported …",
    where `fader-desktop edit` and `batch` say what was dropped."""
    import cv2
    w = editor
    path, _alpha = _photo_with_transparency(portrait_path, tmp_path, w._photo.faces[0].box)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    row = w.panel.row("Smiling")
    row.spin.setValue(2.0 if row.spin.value() < 1 else -1.0)
    message = _status_after_export(w, qtbot, tmp_path / "flat.jpg")
    assert message.startswith(f"Exported {tmp_path / 'flat.jpg'}")
    assert "transparency dropped (JPEG has none: transparent parts are white)" in message
    assert "not all" not in _status_after_export(w, qtbot, tmp_path / "kept.png")   # PNG keeps it: no note
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), load_image(portrait_path)[..., ::-1].astype(np.uint16) * 257)
    w.undo_stack.setClean()
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(deep)
    row = w.panel.row("Smiling")
    row.spin.setValue(2.0 if row.spin.value() < 1 else -1.0)
    # a PNG keeps the 16 bits (test_export_16bit.py); a JPEG cannot, and says so
    assert "more than 8 bits per channel, written with 8" in _status_after_export(w, qtbot, tmp_path / "deep8.jpg")
    w.undo_stack.setClean()


# -- small ones ------------------------------------------------------------------------------------

def test_the_view_menu_has_no_greyed_out_faders_entry(editor):
    """View ▸ Faders (the panel's show/hide) was always greyed out: the panel cannot be closed."""
    w = editor
    view = next(a.menu() for a in w.menuBar().actions() if a.text().replace("&", "") == "View")
    assert not [a.text() for a in view.actions() if a.text().replace("&", "") == "Faders"]


def test_a_corrected_reading_alone_is_no_unsaved_edit(qtbot, tmp_path, tiny_model_path, portrait_path):
    """Correcting a reading by right-click (no fader moved) changes no pixel, yet the window read
    as modified and closing asked "Discard edits?". A fader moved as well still asks."""
    from test_gui import _settings
    from fader_desktop.main_window import MainWindow
    w = MainWindow(_settings(tmp_path), device="cpu")
    w.show()
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.start(model=tiny_model_path, images=[portrait_path])
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    asked = []
    w.ask_confirm = lambda title, *a, **k: asked.append(title) or False
    w.panel.row("Male").own_action.trigger()
    assert w.undo_stack.count() == 1 and not w.session.is_modified()
    assert not w.isWindowModified()
    smiling = w.panel.row("Smiling")
    smiling.spin.setValue(2.0 if smiling.spin.value() < 1 else -1.0)
    assert w.isWindowModified()
    assert not w.close() and asked == ["Discard edits?"]
    w.act_undo.trigger()   # the correction alone again
    assert not w.isWindowModified() and w.close() and asked == ["Discard edits?"]


def test_a_face_box_cut_by_the_photos_edge_stays_on_the_photo(editor, qtbot, portrait_path, tmp_path):
    """A face cut by the photo's bottom edge: its box was drawn past the photo into the background."""
    from core.image_io import save_image
    from fader_desktop.canvas import BACKGROUND
    w = editor
    save_image(tmp_path / "cut.png", load_image(portrait_path)[:140])
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(tmp_path / "cut.png")
    x0, _y0, x1, y1 = w._photo.faces[0].box
    assert y1 > 150   # the box reaches past the photo's last row
    c = w.canvas
    c.fit_to_window()
    qtbot.wait(50)
    img = c.grab().toImage()
    shot = qimage_to_numpy(img.convertToFormat(img.Format.Format_RGB888))
    edge = c.to_widget(QPointF(x0, 140))           # the photo's bottom edge under the box's left side
    far = c.to_widget(QPointF(x1, y1))             # where the box's bottom right corner was drawn
    assert edge.y() + 6 < far.y() < shot.shape[0]
    below = shot[int(edge.y()) + 3:int(far.y()) + 4, int(edge.x()) - 3:int(far.x()) + 4]
    assert below.size and (below == [BACKGROUND.red(), BACKGROUND.green(), BACKGROUND.blue()]).all()


def test_a_value_typed_past_the_range_goes_to_its_end(editor, qtbot):
    """99 typed in a value box that goes to a few units: Qt refused the keys and the old value
    stayed, without a word. It is set to the box's end now, and the fader with it."""
    from PySide6.QtCore import Qt
    w = editor
    spin = w.panel.row("Smiling").spin
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "99")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert spin.value() == spin.maximum() and w.session.slider("Smiling") == pytest.approx(spin.maximum())
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "-99")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert spin.value() == spin.minimum()
    spin.lineEdit().selectAll()
    qtbot.keyClick(spin, Qt.Key.Key_Delete)   # emptied, then left: the value stays
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert spin.value() == spin.minimum()
    w.undo_stack.setClean()
