"""File ▸ Export, as QA met it: a declined "Replace file?" and a failed export sent the user back to
an empty start (the dialog closed, the typed path lost), "Exporting NAME…" stayed on show after the
failure, and a file name too long for the file system was an "Unexpected error" in Python's words.
The real window and the tiny model; the dialog is answered in place of the user."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

from fader_desktop.dialogs import ExportDialog  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _answer(monkeypatch, answers):
    """Answer the Export dialog's runs in turn: a path typed then OK, or None for Cancel; returns
    the path each run showed when it opened."""
    shown, answers = [], list(answers)

    def exec_(dlg):
        shown.append(dlg.path_edit.text())
        answer = answers.pop(0)
        if answer is None:
            return 0
        dlg.path_edit.setText(str(answer))
        return 1
    monkeypatch.setattr(ExportDialog, "exec", exec_)
    return shown


def _move_a_fader(w):
    spin = w.panel.row("Smiling").spin
    spin.setValue(2.0 if spin.value() < 1 else -1.0)


def test_a_declined_replace_goes_back_to_the_dialog_with_the_path_as_typed(editor, qtbot, tmp_path, monkeypatch):
    w = editor
    _move_a_fader(w)
    there = tmp_path / "mine.png"
    there.write_bytes(b"not the app's")
    monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: False)   # "Replace file?": Cancel
    shown = _answer(monkeypatch, [there, None])
    w.export_dialog()
    assert len(shown) == 2 and shown[1] == str(there)   # shown again, the path still in it
    assert there.read_bytes() == b"not the app's"


def test_a_failed_export_says_so_and_the_next_export_proposes_the_path_again(editor, qtbot, tmp_path, monkeypatch):
    w = editor
    _move_a_fader(w)
    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("a file, not a folder")
    bad = not_a_folder / "edited.png"
    shown = _answer(monkeypatch, [bad])
    w.export_dialog()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert w.errors[-1][0] == "Export failed"
    assert "Exporting" not in w.statusBar().currentMessage()
    assert "failed" in w.statusBar().currentMessage()
    shown = _answer(monkeypatch, [None])
    w.export_dialog()
    assert shown == [str(bad)]
    # once an export is written, the next one proposes the usual name again
    good = tmp_path / "edited.png"
    _answer(monkeypatch, [good])
    with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
        w.export_dialog()
    shown = _answer(monkeypatch, [None])
    w.export_dialog()
    assert shown[0] != str(bad)



def test_discard_edits_offers_export_first_and_then_opens_the_photo_asked_for(editor, qtbot, tmp_path, monkeypatch,
                                                                              portrait_path):
    """QA walk: "Discard edits?" offered only Discard or Cancel: to keep the edit the user had to
    cancel, export, and open the photo again. Export… exports, then goes on to the photo asked for;
    with the Export dialog cancelled nothing happens."""
    from core.image_io import load_image
    from fader_desktop.main_window import ASK_OTHER
    w = editor
    _move_a_fader(w)
    other = tmp_path / "other.png"
    import shutil
    shutil.copy(portrait_path, other)
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: asked.append((a, k)) or ASK_OTHER)
    _answer(monkeypatch, [None])   # Export… then Cancel in the Export dialog: the photo stays
    w.open_photo(other)
    assert asked and asked[-1][1].get("other") == "Export…" and "Export them first" in asked[-1][0][1]
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    assert w._photo.path == portrait_path and w.isWindowModified()
    out = tmp_path / "kept.png"
    _answer(monkeypatch, [out])
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photo(other)
    assert w._photo.path == other and out.is_file()
    assert not (load_image(out) == load_image(portrait_path)).all()   # the edit was written


def test_a_file_name_too_long_is_an_export_error_in_words(editor, qtbot, tmp_path, monkeypatch):
    w = editor
    _move_a_fader(w)
    _answer(monkeypatch, [tmp_path / ("a" * 300 + ".png")])
    w.export_dialog()
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    title, message = w.errors[-1]
    assert title == "Export failed" and "too long" in message and "Errno" not in message
