"""Switching models in the window, as a QA walk met it: an edit discarded by a model with other
attributes left the window reading as unsaved, a model and a photo dropped together asked two
questions one on top of the other, a retrained model (the same attributes, other slider ranges)
cleared the undo history without a word, a failed device switch left the menu on the new device,
and a broken model given at start left the window without any. The real window, real tiny models."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from conftest import make_tiny_model  # noqa: E402
from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def other_ranges(tmp_path_factory) -> Path:
    """The tiny model's attributes with other slider ranges (a model retrained or fine-tuned)."""
    attrs = (("Smiling", ("no", "yes"), (-2.0, 3.0)), ("Male", ("no", "yes"), (-1.5, 2.5)),
             ("Hair", ("black", "blond", "brown"), (0.0, 1.0)))
    return make_tiny_model(tmp_path_factory.mktemp("ranges") / "retrained.fader", seed=3, attrs=attrs)


def _edit(w) -> float:
    spin = w.panel.row("Smiling").spin
    spin.setValue(1.5 if spin.value() < 1 else -0.5)
    return spin.value()


def test_a_retrained_model_keeps_the_history_and_a_discarded_edit_leaves_the_window_clean(
        editor, qtbot, other_ranges, tiny_model_path_b):
    w = editor
    value = _edit(w)
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.load_model(other_ranges)
    # the same attributes, other ranges: the edit and its undo step carry over (the history went)
    assert w.panel.row("Smiling").spin.value() == value
    assert w.undo_stack.canUndo() and w.undo_stack.undoText().startswith("Smiling")
    assert w.isWindowModified()
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.load_model(tiny_model_path_b)   # other attributes: the edit is discarded (asked, answered yes)
    assert not w.session.is_modified() and not w.undo_stack.canUndo()
    # the photo as opened: nothing left to export (the title kept its * and closing asked "Discard edits?")
    assert not w.has_unsaved_edits() and not w.isWindowModified()


def test_a_model_and_a_photo_dropped_together_ask_once(editor, qtbot, tiny_model_path_b, portrait_path, tmp_path,
                                                       monkeypatch):
    w = editor
    _edit(w)
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda title, *a, **k: asked.append(title) or True)
    photo = tmp_path / "another.jpg"
    shutil.copy(portrait_path, photo)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_model_path_b)), QUrl.fromLocalFile(str(photo))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.dropEvent(drop)
    qtbot.waitUntil(lambda: w._photo is not None and w._photo.path == photo and w._model.path == tiny_model_path_b,
                    timeout=TIMEOUT)
    # one question for both: the photo dropped replaces the edited one (before: "Open another
    # model?" and "Discard edits?" came one on top of the other)
    assert asked == ["Discard edits?"]
    assert [a.name for a in w._attrs] == ["Young", "Eyeglasses"] and w._photo.faces


def test_a_device_switch_that_fails_leaves_the_device_the_model_runs_on(editor, qtbot, tiny_model_path, tmp_path):
    w = editor
    copy = tmp_path / "gone_after_load.fader"
    shutil.copy(tiny_model_path, copy)
    with qtbot.waitSignals([w.modelChanged, w.photoOpened], timeout=TIMEOUT):
        w.load_model(copy)
    copy.unlink()
    was = w.device
    other = "auto" if was != "auto" else "cpu"
    w.set_device(other)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert w.errors[-1][0] == "Cannot load model" and "not found" in w.errors[-1][1]
    # the model still runs where it ran: the menu and the setting said the device asked for
    assert w.device == was and w.settings.device == was and w.device_actions[was].isChecked()
    assert not w.device_actions[other].isChecked()


def test_a_truncated_model_is_refused_before_the_question(editor, qtbot, tiny_model_path, tmp_path, monkeypatch):
    w = editor
    value = _edit(w)
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda title, *a, **k: asked.append(title) or True)
    cut = tmp_path / "truncated.fader"
    cut.write_bytes(tiny_model_path.read_bytes()[:-1000])
    w.load_model(cut)
    # said at once (it asked "Open another model?" first, then the load failed)
    assert not asked and w.errors and w.errors[-1][0] == "Cannot load model"
    assert "truncated" in w.errors[-1][1]
    assert w.panel.row("Smiling").spin.value() == value


def test_a_broken_model_given_at_start_falls_back_to_the_built_in_one(qtbot, tmp_path, portrait_path):
    from fader_desktop.main_window import MainWindow
    from fader_desktop.settings import Settings
    broken = tmp_path / "broken.fader"
    broken.write_bytes(b"not a model at all")
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings, device="cpu")
    qtbot.addWidget(w)
    errors = []
    w.show_error = lambda title, message: errors.append((title, message))
    w.start(model=broken, images=[portrait_path])
    qtbot.waitUntil(lambda: w._model is not None and w._photo is not None and bool(w._photo.faces), timeout=120_000)
    assert w._model.path.name == "default.fader"
    assert errors and errors[0][0] == "Cannot load model" and "The default model is opened instead" in errors[0][1]


def test_a_photo_opened_without_a_model_does_not_say_it_has_no_face(qtbot, tmp_path, portrait_path, monkeypatch):
    import resources
    from fader_desktop.main_window import MainWindow
    from fader_desktop.settings import Settings
    monkeypatch.setattr(resources, "default_model_path", lambda: tmp_path / "no default here.fader")
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings, device="cpu")
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.start(images=[portrait_path])
    text = w.statusBar().currentMessage()
    assert w._model is None
    assert text.startswith(f"Opened {portrait_path.name}: no model is loaded to find its faces"), text


def test_an_unreadable_first_photo_given_opens_the_next_one(editor, qtbot, portrait_path, tmp_path):
    """`FaderDesktop notes.jpg photo.jpg`: the window said notes.jpg was no image and stayed empty,
    photo.jpg out of reach (Next photo greyed out)."""
    w = editor
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    good = tmp_path / "photo.jpg"
    shutil.copy(portrait_path, good)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photos([bad, good])
    assert w._photo.path == good and w._photo.faces
    assert len(w.errors) == 1 and w.errors[0][0] == "Cannot open photo"
    assert "notes.jpg" in w.errors[0][1] and "the next photo is opened instead" in w.errors[0][1]


def test_the_faders_panel_says_a_model_is_loading_until_it_has(qtbot, tmp_path, tiny_model_path):
    """At start the panel read "No model loaded. Open a .fader model…" for the seconds the model
    took, under a status bar saying "Loading model…"."""
    from fader_desktop.main_window import MainWindow
    from fader_desktop.settings import Settings
    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    w = MainWindow(settings, device="cpu")
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
        w.start(model=tiny_model_path)
        assert w._model is None   # the load is a job: this is what shows while it runs
        assert "Loading model tiny.fader" in w.panel.notice.text(), w.panel.notice.text()
        assert "No model loaded" not in w.panel.notice.text()
    assert "Loading model" not in w.panel.notice.text()


def test_open_model_does_not_start_inside_the_app(editor, qtbot, tiny_model_path, monkeypatch):
    """With the built-in model open, File ▸ Open model… started in the app's own resources/models
    (a packaged install's files), not where the user keeps models."""
    from PySide6.QtWidgets import QFileDialog

    from resources import default_model_path
    w = editor
    starts = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda parent, title, start, *a: starts.append(start) or ("", ""))
    w.settings.add_recent_model(tiny_model_path)
    w.settings.add_recent_model(default_model_path())
    monkeypatch.setattr(w, "_model", type(w._model)(**{**w._model.__dict__, "path": default_model_path()}))
    w.open_model_dialog()
    assert starts == [str(tiny_model_path.parent)]


def test_the_training_options_hint_names_the_packaged_apps_trainer(qtbot, monkeypatch):
    """The packaged app has no fader-train; the Options box said "(fader-train --help lists them)"."""
    import sys

    from fader_desktop.training_dialog import TrainingDialog
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "argv", ["/opt/Fader Desktop/FaderDesktop"])
    d = TrainingDialog()
    qtbot.addWidget(d)
    hint = d.extra_edit.placeholderText()
    assert "(FaderDesktop train --help lists them)" in hint and "fader-train" not in hint, hint


def test_of_several_photos_given_over_an_edit_an_unreadable_first_is_passed_over(editor, qtbot, portrait_path,
                                                                                tmp_path, monkeypatch):
    """With an unexported edit the first photo's header was checked before "Discard edits?": one
    that was no image kept every photo given closed (and Next photo could not reach them). Each
    failure is one message, the next photo opened only once it is answered (they stacked)."""
    w = editor
    _edit(w)
    asked = []
    monkeypatch.setattr(w, "ask_confirm", lambda title, *a, **k: asked.append(title) or True)
    opening_when_said = []

    def said(title, message):
        w.errors.append((title, message))
        opening_when_said.append(w._opening)
    monkeypatch.setattr(w, "show_error", said)
    bad1, bad2 = tmp_path / "notes.jpg", tmp_path / "list.jpg"
    bad1.write_text("not an image")
    bad2.write_text("not one either")
    good = tmp_path / "photo.jpg"
    shutil.copy(portrait_path, good)
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        w.open_photos([bad1, bad2, good])
    assert asked == ["Discard edits?"]
    assert w._photo.path == good and not w.session.is_modified()
    assert [e[0] for e in w.errors] == ["Cannot open photo"] * 2
    assert opening_when_said == [None, None]   # no photo was being opened behind either message


def test_a_recipe_dropped_with_a_model_is_applied_to_that_model(editor, qtbot, tiny_model_path_b, tmp_path):
    """It was applied at once to the model still open: refused for its attributes, or lost in the switch."""
    import json
    w = editor
    recipe = tmp_path / "glasses.json"
    recipe.write_text(json.dumps({"format": "fader-recipe", "version": 1, "model": "tiny b",
                                  "values": {"Eyeglasses": 1.5}}))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tiny_model_path_b)), QUrl.fromLocalFile(str(recipe))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.modelChanged, timeout=TIMEOUT):
        w.dropEvent(drop)
    qtbot.waitUntil(lambda: w.session.is_modified(), timeout=TIMEOUT)
    assert not w.errors, w.errors
    assert w._model.path == tiny_model_path_b and w.panel.row("Eyeglasses").spin.value() == 1.5
