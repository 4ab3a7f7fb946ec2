"""A QA walk of the real window (session 43): a transparent PNG opened, then deleted (or replaced)
on disk, then edited and exported as PNG, lost its transparency without a word: the export took
only what was read of the file at opening, the header, and the alpha plane was read from the file
later. The worker now reads the whole source (alpha and straight colours included) when the photo
opens, and the Export dialog judges what a format drops on that same source (no second decode on
the window's thread)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from fader_desktop.dialogs import ExportDialog  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401
from test_gui_qa_s42 import _photo_with_transparency  # noqa: E402


def test_a_transparent_photo_deleted_after_opening_exports_with_its_transparency(editor, qtbot, portrait_path,
                                                                                 tmp_path):
    w = editor
    path, alpha = _photo_with_transparency(portrait_path, tmp_path, w._photo.faces[0].box)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    path.unlink()   # deleted (or moved away) while the photo is open
    row = w.panel.row("Smiling")
    row.spin.setValue(2.0 if row.spin.value() < 1 else -1.0)
    # the dialog still knows the photo is transparent: JPEG drops it, PNG does not
    dialog = ExportDialog(tmp_path / "out.png", losses=w.export_losses)
    assert dialog.losses() == []
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData(".jpg"))
    assert any("transparency" in note for note in dialog.losses()), dialog.losses()
    dialog.deleteLater()
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        w.export_to(tmp_path / "edited.png")
    written = Image.open(tmp_path / "edited.png")
    assert written.mode == "RGBA", written.mode
    assert np.array_equal(np.asarray(written)[..., 3], alpha)
    assert "not all" not in w.statusBar().currentMessage()
    w.undo_stack.setClean()


def test_after_another_model_is_loaded_the_dialog_still_knows_the_photo(editor, qtbot, portrait_path, tmp_path,
                                                                        tiny_model_path, tiny_model_path_b):
    """Review: the photo opened again with a new model came without its source, so the Export
    dialog said nothing of a transparent photo's transparency once another model was loaded."""
    w = editor
    path, _alpha = _photo_with_transparency(portrait_path, tmp_path, w._photo.faces[0].box)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(path)
    assert any("transparency" in note for note in w.export_losses(".jpg"))
    try:
        with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
            w.load_model(tiny_model_path_b)
        assert w._photo.reencoded
        assert any("transparency" in note for note in w.export_losses(".jpg")), w.export_losses(".jpg")
        assert w.export_losses(".png") == []
    finally:
        with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
            w.load_model(tiny_model_path)   # the shared window as the other tests expect it
