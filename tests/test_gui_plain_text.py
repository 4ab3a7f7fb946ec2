"""Text from files is shown as it is written, never as HTML (QA, hostile model metadata and paths).

A .fader file anyone may have made names its model, attributes and value labels; photos and models
have file and folder names; error messages quote them. QLabel, QMessageBox and tooltips guess
whether a text is HTML (Qt.mightBeRichText): an attribute named "<b>Sm</b><font size=7>RED</font>"
showed as a huge red word in its fader's title, "<img src=/etc/passwd>" made Qt load that file as an
image, and the "Cannot load model" box no longer showed the real path. Each test reads what a user
sees: a plain label's text, or a rich one's (and every tooltip's) HTML rendered by QTextDocument.

Also here: File ▸ Recent Models / Open Recent said a path that is now a folder or a pipe "is no
longer there" and dropped it; only a path with nothing there is gone, anything else gets the
open's own message.

The real window, the tiny model's networks with hostile names (written by the project's own
writer), the vendored portrait; dialogs are answered as a user would, by their buttons.
"""
from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QProcess, QTimer  # noqa: E402
from PySide6.QtGui import QTextDocument  # noqa: E402
from PySide6.QtGui import Qt  # noqa: E402  (Qt.mightBeRichText lives in QtGui)
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox  # noqa: E402

from fader_desktop.batch_dialog import BatchDialog  # noqa: E402
from fader_desktop.fader_panel import display_name  # noqa: E402
from fader_desktop.main_window import MainWindow  # noqa: E402
from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

from test_gui import TIMEOUT, _settings  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODEL_NAME = "<b>X</b><img src=/etc/passwd>"
HOSTILE_ATTRS = (("<b>Sm</b><font color=red size=7>RED</font>", ("<i>no</i>", "<b>yes</b>"), (-1.0, 2.0)),
                 ("<img src=/etc/passwd>", ("no", "yes"), (-1.0, 2.0)),
                 ("A&B <a href='http://evil.example'>Young</a>", ("x", "&lt;y&gt;", "z"), (0.0, 1.0)))


def shown(text: str, fmt=Qt.TextFormat.AutoText) -> str:
    """What Qt shows for `text` in a label (of text format `fmt`) or a tooltip (AutoText): the
    text itself where it is taken as plain text, else its HTML rendered."""
    if fmt == Qt.TextFormat.PlainText or (fmt == Qt.TextFormat.AutoText and not Qt.mightBeRichText(text)):
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def shown_label(label: QLabel) -> str:
    return shown(label.text(), label.textFormat())


def box_text(box: QMessageBox) -> str:
    """What a message box's main text shows."""
    return shown_label(box.findChild(QLabel, "qt_msgbox_label"))


@contextmanager
def answering_boxes(seen: list):
    """Every message box that comes up (modal, in its own event loop) is read into `seen` as
    (title, what its text shows) and answered with Cancel / OK, as a user who reads it would."""
    # a box another test left on show (a dialog's non-modal warning) is not this test's
    before = {id(w) for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()}

    def look() -> None:
        for box in QApplication.topLevelWidgets():
            if isinstance(box, QMessageBox) and box.isVisible() and id(box) not in before:
                seen.append((box.windowTitle(), box_text(box)))
                (box.button(QMessageBox.StandardButton.Cancel) or box.button(QMessageBox.StandardButton.Ok)).click()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(look)
    timer.start()
    try:
        yield
    finally:
        timer.stop()


def wait_until(cond, timeout: float = TIMEOUT / 1000) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        QApplication.processEvents()
        time.sleep(0.005)


@pytest.fixture(scope="module")
def hostile_model(tmp_path_factory, tiny_model_path):
    """The tiny model with HTML in its name and attribute names and values, at a path with HTML in
    its folder's and its own name (QA's `f/<b>dir/<font size=7 color=red>BIG.fader`)."""
    import dataclasses
    from core.model_file import load_model, save_model
    folder = tmp_path_factory.mktemp("models") / "<b>dir"
    folder.mkdir()
    path = folder / "<font size=7 color=red>BIG.fader"
    m = load_model(tiny_model_path)
    m.meta.update(name=MODEL_NAME, description="<h1>big</h1>")
    for i, (name, values, _range) in enumerate(HOSTILE_ATTRS):
        m.attributes[i] = dataclasses.replace(m.attributes[i], name=name, values=tuple(values))
    save_model(m, path)
    return path


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory, hostile_model, portrait_path):
    """A window with the hostile model and the portrait open; errors are recorded in `w.errors`
    (a test that reads the real box removes this hook), questions answered yes."""
    w = MainWindow(_settings(tmp_path_factory.mktemp("settings")), device="cpu")
    w.errors = []
    w.show_error = lambda title, message: w.errors.append((title, message))
    w.ask_confirm = lambda *a, **k: True
    w.resize(1100, 760)
    w.show()
    w.start(model=hostile_model, images=[portrait_path])
    wait_until(lambda: w._model is not None and w._photo is not None and w.jobs.wait_idle(0.01) and not w._busy)
    assert not w.errors and w._photo.faces
    yield w
    w.undo_stack.setClean()
    w.close()


@pytest.fixture
def editor(window):
    """The window, unedited with an empty history after the test too (a failed test leaves no edit
    for the next to trip on)."""
    w = window
    w.errors.clear()
    yield w
    w.session.reset(label="Reset all faces")
    w.undo_stack.clear()


def test_the_tooltip_text_renders_back_to_the_text_as_written(qapp):
    from fader_desktop.plain_text import literal_tip
    samples = ["<b>Sm</b><font color=red size=7>RED</font>", "<img src=/etc/passwd>", "A &amp; B &lt;b&gt; & C",
               "it's \"quoted\"", "\nline1\n\n  line 3  <b>x</b>\n", "/tmp/<b>dir/<font size=7>BIG.fader",
               "\u202egnp.exe 😀👍🏽 שלום", "<!-- c -->x", "plain words"]
    for text in samples:
        tip = literal_tip(text)
        assert Qt.mightBeRichText(tip), tip   # taken as HTML, whatever the text holds
        assert shown(tip) == text
    assert literal_tip("") == ""   # no tooltip stays no tooltip
    # the same size as the plain tooltip it replaces (Qt word-wraps a rich tooltip: QTipLabel)
    text = "A model name\n/a/long/path/to/the/model.fader\nrunning on cpu; and a longer line that goes on"
    tips = []
    for t in (text, literal_tip(text)):
        label = QLabel()
        label.setWordWrap(Qt.mightBeRichText(t))
        label.setText(t)
        tips.append(label.sizeHint())
    assert tips[0] == tips[1]


def test_faders_and_the_model_label_show_a_models_names_as_written(editor):
    w = editor
    attrs = w._attrs
    assert [a.name for a in attrs] == [n for n, _v, _r in HOSTILE_ATTRS]
    for a in attrs:
        row = w.panel.row(a.name)
        lo, hi = a.range
        assert shown_label(row.title) == display_name(a.name)
        assert shown(row.title.toolTip()) == f"{a.name}: values {', '.join(a.values)}; slider range {lo:g} … {hi:g}"
        assert shown(row.reset_button.toolTip()) == f"Reset {display_name(a.name)} to this face's own value"
        labels = [shown_label(lab) for lab in row.findChildren(QLabel) if lab is not row.title]
        if a.is_binary:
            assert f"← {a.values[0]}" in labels and f"{a.values[1]} →" in labels
            # the face's reading, in the model's own words
            tip = shown(row.slider.toolTip())
            assert tip.startswith("The model reads this face as ") and any(f" as {v} (" in tip for v in a.values), tip
    smiling = w.panel.row(attrs[0].name)
    # a value beyond the slider (a pasted edit): both tooltips name the attribute
    w.session.set_values({attrs[0].name: 3.0}, label="Paste edit")
    wait_until(lambda: smiling.slider.beyond() == 1)
    assert f"{display_name(attrs[0].name)} is at 3.00, beyond the slider's range" in shown(smiling.spin.toolTip())
    assert f"{display_name(attrs[0].name)} is at 3.00" in shown(smiling.slider.toolTip())
    # the status bar: "Model: <name> · CPU", and the name, path and device in its tooltip
    assert shown_label(w.model_label) == f"Model: {MODEL_NAME} · {w._model.device.upper()}"
    assert shown(w.model_label.toolTip()) == f"{MODEL_NAME}\n{w._model.path}\nrunning on {w._model.device}"


def test_long_names_are_cut_short_and_every_faders_controls_stay_in_view(editor, qapp):
    """These names are 40+ characters: they widened the fader rows past the dock, and the number box
    and reset button of every fader were cut off. Long titles and value labels now end in "…"
    (the whole text in their tooltips) and the controls stay inside the panel."""
    from PySide6.QtCore import QPoint
    w = editor
    qapp.processEvents()
    view = w.panel._scroll.viewport()
    assert w.dock.width() < 450
    for a in w._attrs:
        row = w.panel.row(a.name)
        for control in (row.spin, row.reset_button, row.slider):
            right = control.mapTo(view, QPoint(control.width(), 0)).x()
            assert control.isVisible() and 0 < right <= view.width(), (a.name, control, right, view.width())
        assert row.title.text() == display_name(a.name)   # whole, though cut where shown
    long_title = w.panel.row(HOSTILE_ATTRS[0][0]).title
    # cut where shown: the whole name is wider than the label
    assert long_title.fontMetrics().horizontalAdvance(long_title.text()) > long_title.contentsRect().width() > 0
    assert shown(long_title.toolTip()).startswith(f"{HOSTILE_ATTRS[0][0]}: values")


def test_the_question_before_another_model_names_the_attributes_as_written(editor, tiny_model_path, monkeypatch):
    w = editor
    monkeypatch.delattr(w, "ask_confirm")   # the real question
    row = w.panel.row(w._attrs[0].name)
    row.spin.setValue(2.0 if row.spin.value() < 1 else -1.0)
    assert not w.undo_stack.isClean()
    seen = []
    with answering_boxes(seen):
        w.load_model(tiny_model_path)   # asked: answered Cancel
        wait_until(lambda: bool(seen))
    names = ", ".join(display_name(a.name) for a in w._attrs)
    assert seen == [("Open another model?", f"The edits to {w._photo.path.name} have not been exported. tiny.fader "
                     f"has other attributes (Smiling, Male, Hair) than the open model ({names}): the edits are "
                     "discarded.")]
    assert [a.name for a in w._attrs] == [n for n, _v, _r in HOSTILE_ATTRS]   # not switched


def test_the_error_box_shows_the_models_path_as_written(editor, hostile_model, monkeypatch):
    w = editor
    monkeypatch.delattr(w, "show_error")   # the real box
    junk = hostile_model.parent / "<i>JUNK<img src=passwd>.fader"
    junk.write_bytes(b"junk" + os.urandom(508))   # not 0x80 first: that reads as a pickle
    seen = []
    with answering_boxes(seen):
        w.load_model(junk)
        wait_until(lambda: bool(seen))
    title, text = seen[0]
    assert title == "Cannot load model" and text.startswith(f"{junk}: ") and "not a Fader model file" in text, text
    assert w._model.path == hostile_model


def test_a_recent_entry_now_a_folder_or_pipe_gets_the_opens_own_message(editor, tmp_path):
    """Only a path with nothing there is "no longer there" (and taken off the list); a folder or a
    pipe that took a listed file's place is opened, and the open says what it is."""
    w = editor
    s = w.settings
    assert w.undo_stack.isClean()
    folder = tmp_path / "now a folder.fader"
    folder.mkdir()
    pipe = tmp_path / "now a pipe.fader"
    os.mkfifo(pipe)
    photo_folder = tmp_path / "now a folder.jpg"
    photo_folder.mkdir()
    gone = tmp_path / "gone.fader"
    for p in (gone, folder, pipe):
        s.add_recent_model(p)
    s.add_recent(photo_folder)
    expect = [(folder, "is a directory, not a model file"), (pipe, "is a device or pipe, not a model file")]
    for path, said in expect:
        w.errors.clear()
        w.fill_recent_models_menu()
        next(a for a in w.recent_models_menu.actions() if a.statusTip() == str(path.resolve())).trigger()
        wait_until(lambda: bool(w.errors))
        assert w.errors == [("Cannot load model", f"{path.resolve()}: {said}")]
        assert str(path.resolve()) in s.recent_models()   # kept, as a file that no longer loads is
    w.errors.clear()
    w.fill_recent_menu()
    next(a for a in w.recent_menu.actions() if a.statusTip() == str(photo_folder.resolve())).trigger()
    wait_until(lambda: bool(w.errors))
    assert w.errors[0][0] == "Cannot open photo" and "is a folder, not an image file" in w.errors[0][1]
    assert "no longer there" not in w.errors[0][1]
    # a path with nothing there: as before
    w.errors.clear()
    w.open_recent_model(str(gone.resolve()))
    assert w.errors and "gone.fader is no longer there" in w.errors[0][1]
    assert str(gone.resolve()) not in s.recent_models()
    assert w._model.path.name.endswith("BIG.fader") and w._photo.faces   # what was open stays


def test_the_batch_dialogs_warning_shows_the_folder_as_written(qtbot, tmp_path, tiny_model_path):
    d = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 1.0})
    qtbot.addWidget(d)
    src = tmp_path / "<b>in<img src=passwd>"
    d.in_edit.setText(str(src))
    d.out_edit.setText(str(tmp_path / "out"))
    assert not d.start()
    assert box_text(d.message_box) == f"{src}: input folder not found"
    d.message_box.close()


def test_the_training_dialog_shows_the_run_folder_as_written(qtbot, tmp_path, tiny_model_path):
    t = TrainingDialog()
    qtbot.addWidget(t)
    run = tmp_path / "<font size=7>run"
    run.mkdir()
    shutil.copy(tiny_model_path, run / "model.fader")
    t.out_edit.setText(str(run))
    t._finished(0, QProcess.ExitStatus.NormalExit)   # the trainer ends as its process reports it
    assert shown_label(t.phase_label).endswith(f"the run's best model is {run / 'model.fader'}")
    t.editor_closed()
    assert shown(t.open_button.toolTip()) == (f"The editor window is closed: start Fader Desktop again and open "
                                              f"{run / 'model.fader'} with File ▸ Open model…")
