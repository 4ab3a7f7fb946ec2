"""A visual QA walk of the window under Xvfb (s49j), each finding as the user met it: the model
card's opening paragraph named an attribute "Mouth_Slightly_Open" beside its table's "Mouth
slightly open"; Enter on the batch summary opened a save dialog; a marked box with no face in it
ended marking; the marking hint pushed the model and render-time labels out of the status bar; the
shortcuts list drew its arrows a third of the text's height; access keys lost in a descender or
missing; a black X on some Close buttons and none on others.

Real windows and dialogs, offscreen; the window's own hooks (show_error, ask_confirm) catch its
message boxes, as in test_gui."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QRectF, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QKeySequence  # noqa: E402
from PySide6.QtWidgets import (QApplication, QDialogButtonBox, QFileDialog, QMessageBox, QProxyStyle,  # noqa: E402
                               QPushButton, QStyle, QStyleFactory)
from test_gui import TIMEOUT, editor, own_window_with_an_edit, shared_window  # noqa: E402,F401
from test_gui_more_faces import _draw, _open_lying  # noqa: E402

from core.model_file import load_model, model_summary, read_model_header, save_model  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEFAULT_MODEL = "resources/models/default.fader"
ALT = Qt.KeyboardModifier.AltModifier


def _alt(text: str) -> str:
    """The Alt+letter a text's "&x" gives ("" where none)."""
    return QKeySequence.mnemonic(text).toString()


def _press_alt(qtbot, d, key) -> None:
    """Alt+`key` as a user presses it on `d`: a key goes to the active window only."""
    d.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is d, timeout=2000)
    qtbot.keyClick(d.focusWidget() or d, key, ALT)


def _shipped_model_meta() -> dict:
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / DEFAULT_MODEL
    return next(x for x in read_model_header(path) if isinstance(x, dict) and "attributes" in x)


def test_the_model_cards_own_sentences_name_the_attributes_as_its_table_does(qtbot, tiny_model_path, tmp_path):
    """The shipped model's description ends "Attributes Smiling, Male, Young, Eyeglasses,
    Mouth_Slightly_Open." while the card's table and figures say "Mouth slightly open"."""
    from fader_desktop.dialogs import ModelCardDialog
    from fader_desktop.fader_panel import display_name
    from core.attributes import Attribute
    meta = _shipped_model_meta()
    names = [a["name"] for a in meta["attributes"]]
    assert "Mouth_Slightly_Open" in names and "Mouth_Slightly_Open" in meta["description"]
    # a tiny model with the shipped model's attributes and sentences (the real one takes seconds to load)
    model = load_model(tiny_model_path)
    model.attributes = [Attribute(n, ("no", "yes"), (0.0, 1.0)) for n in names]
    model.meta.update(description=meta["description"],
                      metrics={"validation": {"n_images": 10, "swap_mean": 0.9},
                               "selection": "best swap accuracy of Mouth_Slightly_Open and Smiling"})
    summary = model_summary(model)
    d = ModelCardDialog(summary, tmp_path / "model.fader")
    qtbot.addWidget(d)
    d.show()
    text = d.browser.toPlainText()
    listed = ", ".join(display_name(n) for n in names)
    assert f"Attributes {listed}." in text, text[:800]
    assert "best swap accuracy of Mouth slightly open and Smiling" in text
    # the identifier is still given once, under its name in the table: what the command line's --set takes
    assert text.count("Mouth_Slightly_Open") == 1, text
    # Close by its access key, as the other dialogs' Close
    close = d.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close)
    assert _alt(close.text()) == "Alt+C", close.text()
    _press_alt(qtbot, d, Qt.Key.Key_C)
    qtbot.waitUntil(lambda: not d.isVisible(), timeout=2000)


def test_enter_closes_the_batch_summary_and_save_report_is_its_access_key(qtbot, tmp_path, tiny_model_path,
                                                                       portrait_path):
    from test_gui_s45c import _run

    from fader_desktop.batch_dialog import BatchDialog
    src = tmp_path / "in"
    src.mkdir()
    for i in range(2):
        shutil.copy(portrait_path, src / f"p{i}{portrait_path.suffix}")
    dlg = BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 1.0})
    qtbot.addWidget(dlg)
    dlg.in_edit.setText(str(src))
    dlg.out_edit.setText(str(tmp_path / "out"))
    dlg.show()
    _run(dlg)
    box = dlg.summary_box
    qtbot.waitUntil(box.isVisible, timeout=TIMEOUT)
    assert "2 photos written" in box.text(), box.text()
    close, save = box.button(QMessageBox.StandardButton.Close), next(
        b for b in box.buttons() if b.text().replace("&", "").startswith("Save report"))
    # Enter presses Close (it pressed Save report…, which opened a file dialog)
    assert box.defaultButton() is close and QApplication.focusWidget() is close, \
        (box.defaultButton() and box.defaultButton().text(), QApplication.focusWidget())
    assert _alt(save.text()) == "Alt+S" and _alt(close.text()) == "Alt+C"
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=2000)
    assert not (tmp_path / "out" / "batch-report.json").exists()
    # Alt+S still opens the save dialog (closed here by a timer: it runs its own event loop)
    box.open()
    qtbot.waitUntil(box.isVisible, timeout=2000)
    seen = []

    def close_file_dialog() -> None:
        modal = QApplication.activeModalWidget()
        if isinstance(modal, QFileDialog):
            seen.append(modal.windowTitle())
            modal.reject()
    timer = QTimer()
    timer.timeout.connect(close_file_dialog)
    timer.start(50)
    try:
        _press_alt(qtbot, box, Qt.Key.Key_S)
        qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    finally:
        timer.stop()
    assert seen == ["Save the batch report"]
    dlg.jobs.shutdown()


def test_a_box_with_no_face_leaves_marking_on_with_the_box_to_draw_again(editor, qtbot, tmp_path, portrait_path):
    """After "No face was found in the marked area. Draw the box around the whole face…" marking
    had ended (the View menu's tick gone): the user had to choose it again. It stays on, the
    refused box on show: drawn again at once, or sized by keys and marked by Enter."""
    w = editor
    photo, x_lying, _smiling = _open_lying(w, qtbot, tmp_path, portrait_path)
    boxes = [f.box for f in w._photo.faces]
    refused = (x_lying + 10, 5, x_lying + 60, 40)
    w.errors.clear()
    w.act_mark_face.trigger()
    _draw(w, qtbot, refused)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert w.errors[-1][1].startswith("No face was found in the marked area"), w.errors
    assert w.jobs.wait_idle(TIMEOUT / 1000)
    assert w.canvas.marking() and w.act_mark_face.isChecked() and w.canvas.hasFocus()
    assert w.statusBar().currentMessage().startswith("Mark a missed face:")
    shown = w.canvas.marked_box()
    assert shown is not None and abs(shown.center().x() - (refused[0] + refused[2]) / 2) < 2, shown
    # by keys: ] makes the box shown larger, an arrow moves it, Enter searches it again
    qtbot.keyClick(w.canvas, Qt.Key.Key_BracketRight)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Left)
    larger = w.canvas.marked_box()
    assert larger.width() > shown.width() and larger.center().x() < shown.center().x()
    w.errors.clear()
    with qtbot.waitSignal(w.canvas.faceMarked, timeout=TIMEOUT) as marked:
        qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    assert QRectF(marked.args[0]) == larger
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert w.errors[-1][1].startswith("No face was found") and w.jobs.wait_idle(TIMEOUT / 1000)
    assert w.canvas.marking() and w.act_mark_face.isChecked()
    # Esc leaves it
    qtbot.keyClick(w.canvas, Qt.Key.Key_Escape)
    assert not w.canvas.marking() and not w.act_mark_face.isChecked() and w.canvas.marked_box() is None
    assert not w.statusBar().currentMessage().startswith("Mark a missed face:")
    # a face found already is to be selected: marking ends there, as before
    w.errors.clear()
    w.act_mark_face.trigger()
    _draw(w, qtbot, boxes[0])
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert "found already" in w.errors[-1][1] and w.jobs.wait_idle(TIMEOUT / 1000)
    assert not w.canvas.marking() and not w.act_mark_face.isChecked()
    # after a refused box, the next one drawn at once around the missed face finds it
    w.errors.clear()
    w.act_mark_face.trigger()
    _draw(w, qtbot, refused)
    qtbot.waitUntil(lambda: bool(w.errors), timeout=TIMEOUT)
    assert w.jobs.wait_idle(TIMEOUT / 1000) and w.canvas.marking()
    from core.faces import FaceDetector
    lying = max(FaceDetector().detect(photo, thorough=True), key=lambda f: f.center_x)
    m = 0.1 * lying.size
    with qtbot.waitSignal(w.photoOpened, timeout=TIMEOUT):
        _draw(w, qtbot, (lying.box[0] - m, lying.box[1] - m, lying.box[2] + m, lying.box[3] + m))
    qtbot.waitUntil(lambda: not w._busy and w.panel.isEnabled(), timeout=TIMEOUT)
    assert len(w._photo.faces) == 2 and not w.canvas.marking()


@pytest.mark.parametrize("size", [None, (1280, 720)])
def test_the_marking_hint_leaves_the_model_and_render_time_in_the_status_bar(qtbot, tmp_path, tiny_model_path,
                                                                            portrait_path, monkeypatch, size):
    """The hint (shown for the whole of marking) hid the model label and the render time: the
    model named as the shipped one is, at the window's default size and at 1280x720."""
    from fader_desktop.main_window import DEFAULT_SIZE
    model = load_model(tiny_model_path)
    model.meta["name"] = _shipped_model_meta()["name"]
    save_model(model, tmp_path / "named.fader")
    w = own_window_with_an_edit(qtbot, tmp_path, tmp_path / "named.fader", portrait_path)
    monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
    try:
        w.resize(*(size or DEFAULT_SIZE))
        qtbot.waitUntil(lambda: w.render_label.text().startswith("Render"), timeout=TIMEOUT)
        qtbot.waitUntil(lambda: w.jobs.is_idle(), timeout=TIMEOUT)
        QApplication.processEvents()
        assert w.model_label.text().startswith(f"Model: {model.meta['name']}")
        w.act_mark_face.trigger()
        QApplication.processEvents()
        sb = w.statusBar()
        assert w.canvas.marking() and sb.currentMessage().startswith("Mark a missed face:")
        for label in (w.model_label, w.render_label, w.zoom_label, w.faces_label):
            assert label.isVisible(), f"{label.text()!r} hidden at {w.size().width()}x{w.size().height()}"
        assert not sb.message_is_cut(), (sb.shown_message(), sb.message_rect().width())
        # the keys are still in it, and the shortcuts list has them in full
        assert all(k in sb.currentMessage() for k in ("[ ]", "Enter", "Esc"))
        w.set_marking(False)
    finally:
        assert w.close()


def test_the_shortcuts_list_names_the_arrow_keys_in_words(editor, qtbot):
    """The arrows (← → ↑ ↓) were drawn a third of the text's height: the list's fixed-pitch font
    (Noto Sans Mono) squeezes each into one character's cell. Named as the menus' keys are."""
    w = editor
    w.act_shortcuts.trigger()
    dlg = w._shortcuts_dialog
    try:
        qtbot.waitUntil(dlg.isVisible, timeout=2000)
        text = dlg.browser.toPlainText()
        assert not any(a in text for a in "←→↑↓"), text
        lines = text.splitlines()
        assert any("Left, Right, Up, Down (Shift: further)" in t for t in lines), lines
        assert any("Alt+Left / Alt+Right" in t for t in lines), lines
        assert any("Left / Right, Down / Up" in t for t in lines), lines   # the faders
        close = dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Close)
        assert _alt(close.text()) == "Alt+C", close.text()
        _press_alt(qtbot, dlg, Qt.Key.Key_C)
        qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=2000)
    finally:
        dlg.close()


def test_the_training_windows_align_box_has_an_access_key_without_a_descender(qtbot, tiny_model_path):
    """"Detect and ali&gn faces": the g's underline was lost in its descender."""
    from fader_desktop.training_dialog import TrainingDialog
    d = TrainingDialog(None, str(tiny_model_path))
    qtbot.addWidget(d)
    d.show()
    try:
        for box, key in ((d.align_check, Qt.Key.Key_N), (d.finetune_check, Qt.Key.Key_M)):
            letter = _alt(box.text())[-1:].lower()
            assert letter and letter not in "gjpqy", box.text()
            assert _alt(box.text()) == QKeySequence(ALT | key).toString(), box.text()
            before = box.isChecked()
            _press_alt(qtbot, d, key)
            qtbot.waitUntil(lambda: box.isChecked() != before, timeout=2000)
            box.setChecked(before)
    finally:
        d.jobs.shutdown()


class _PlatformWithButtonIcons(QProxyStyle):
    """Fusion as Qt's X11 platform theme sets it up: dialog buttons with icons (the QA walk's Xvfb;
    offscreen has none)."""

    def styleHint(self, hint, option=None, widget=None, returnData=None) -> int:
        if hint == QStyle.StyleHint.SH_DialogButtonBox_ButtonsHaveIcons:
            return 1
        return super().styleHint(hint, option, widget, returnData)


def test_no_close_button_has_an_icon_where_the_platform_gives_them(qtbot, tiny_model_path, tmp_path):
    """Under X11 the model card's, the shortcuts list's and the batch dialog's Close showed a black
    X, hard to see on the dark grey button; the training window's had none. The app's style puts
    none on any."""
    from fader_desktop.app import OutlinedStyle, dark_palette
    from fader_desktop.batch_dialog import BatchDialog
    from fader_desktop.dialogs import ModelCardDialog, ShortcutsDialog
    from fader_desktop.training_dialog import TrainingDialog
    app = QApplication.instance()
    style, palette = app.style().name(), app.palette()
    app.setStyle(OutlinedStyle(_PlatformWithButtonIcons(QStyleFactory.create("Fusion"))))
    app.setPalette(dark_palette())
    made = []
    try:
        summary = model_summary(load_model(tiny_model_path))
        made = [ModelCardDialog(summary, tiny_model_path), ShortcutsDialog(None, "<p>keys</p>"),
                BatchDialog(None, tiny_model_path, "cpu", {"Smiling": 1.0}), TrainingDialog()]
        # as the batch summary is made (BatchDialog._show_summary)
        box = QMessageBox(QMessageBox.Icon.Information, "Batch export finished", "2 photos written",
                          QMessageBox.StandardButton.Close)
        made.append(box)
        for d in made:
            qtbot.addWidget(d)
            closes = [b for b in d.findChildren(QPushButton) if b.text().replace("&", "") == "Close"]
            assert closes, d.windowTitle()
            assert all(b.icon().isNull() for b in closes), f"{type(d).__name__}: Close has an icon"
    finally:
        for d in made:
            if hasattr(d, "jobs"):
                d.jobs.shutdown()
        QApplication.setStyle(style)
        app.setPalette(palette)
