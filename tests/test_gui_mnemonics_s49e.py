"""Access keys (Alt+letter) in the dialogs and their message boxes, and the Export dialog's height
after a font change.

Keyboard walks found the dialogs' own buttons ("Export", "Start training", "Replace", …), check
boxes and field labels without a mnemonic: Alt+letter did nothing, so a keyboard user had to Tab
through every field. Each dialog is built as the app builds it."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QFont, QKeySequence  # noqa: E402
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel  # noqa: E402
from conftest import app_dialogs  # noqa: E402


def _key(text: str) -> str:
    """The Alt+letter a text's "&x" gives ("" where none: "&&" is a shown ampersand)."""
    return QKeySequence.mnemonic(text).toString()


def _access_keys(window) -> dict:
    """What a keyboard user can reach with Alt in `window`: every shown button, check box and radio
    button, and every label that focuses a field -> its key."""
    keys = {}
    for b in window.findChildren(QAbstractButton):
        if b.isVisibleTo(window) and b.window() is window:
            keys[f"button {b.text()!r}"] = _key(b.text())
    for lab in window.findChildren(QLabel):
        if lab.isVisibleTo(window) and lab.buddy() is not None:
            keys[f"label {lab.text()!r}"] = _key(lab.text())
    return keys


def _assert_keys(name: str, keys: dict, labelled=()) -> None:
    missing = [w for w, k in keys.items() if not k and w.startswith("button")]
    assert not missing, f"{name}: no Alt key for {missing}"
    by_key = {}
    for w, k in keys.items():
        if k:
            by_key.setdefault(k, []).append(w)
    twice = {k: ws for k, ws in by_key.items() if len(ws) > 1}
    assert not twice, f"{name}: one Alt key for several: {twice}"
    for text in labelled:   # the fields' labels focus their fields
        assert any(w.startswith("label") and text in w.replace("&", "") and k for w, k in keys.items()), \
            f"{name}: the label {text!r} has no Alt key, {keys}"


@pytest.fixture
def dialogs(qtbot, tmp_path, tiny_model_path):
    with app_dialogs(qtbot, tmp_path, tiny_model_path) as made:
        yield made


def test_every_button_and_field_label_in_the_dialogs_has_an_alt_key_of_its_own(dialogs):
    labelled = {"export": ("File", "Format", "Quality"), "sweep": ("Attribute", "Values", "File"),
                "import": ("Checkpoint", "Save as", "Attributes"),
                "batch": ("Photos from", "Save to", "Format", "Quality"),
                "training": ("Data", "Attributes", "Size", "Classifier", "Device", "Run folder", "Options")}
    for name, d in dialogs.items():
        keys = _access_keys(d)
        assert len([w for w in keys if w.startswith("button")]) >= 3, (name, keys)
        _assert_keys(name, keys, labelled[name])


def test_alt_e_exports_and_alt_letter_reaches_a_field(qtbot, tmp_path):
    from fader_desktop.dialogs import ExportDialog
    d = ExportDialog(tmp_path / "photo_edited.jpg")
    qtbot.addWidget(d)
    d.show()
    d.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is d, timeout=2000)
    # Alt+Q focuses the quality box, as its label says (the field, not the label)
    qtbot.keyClick(d.path_edit, Qt.Key.Key_Q, Qt.KeyboardModifier.AltModifier)
    assert d.quality_spin.hasFocus(), QApplication.focusWidget()
    with qtbot.waitSignal(d.accepted, timeout=2000):
        qtbot.keyClick(d.quality_spin, Qt.Key.Key_E, Qt.KeyboardModifier.AltModifier)
    assert d.result() == d.DialogCode.Accepted


def test_the_batch_and_training_questions_answer_to_alt_keys(qtbot, tmp_path, celeba_aligned, dialogs):
    """"Replace" / "Skip those photos" / Cancel, and "Stop training" / Cancel: each its own key."""
    batch = dialogs["batch"]
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    photo = sorted(celeba_aligned.glob("*.jpg"))[0]
    shutil.copy(photo, src / photo.name)
    shutil.copy(photo, out / photo.name)   # an output already there: the batch asks first
    batch.in_edit.setText(str(src))
    batch.out_edit.setText(str(out))
    assert batch.start() is False and batch.existing_box is not None and batch.existing_box.isVisible()
    box = batch.existing_box
    keys = {f"button {b.text()}": _key(b.text()) for b in box.buttons()}
    assert set(t[len("button "):].replace("&", "") for t in keys) == {"Replace", "Skip those photos", "Cancel"}, keys
    _assert_keys("existing outputs", keys)

    training = dialogs["training"]
    training._ask_stop()   # as closing the dialog during a run asks
    stop_box = training.stop_box
    qtbot.addWidget(stop_box)
    keys = {f"button {b.text()}": _key(b.text()) for b in stop_box.buttons()}
    assert set(t[len("button "):].replace("&", "") for t in keys) == {"Stop training", "Cancel"}, keys
    _assert_keys("stop training", keys)
    stop_box.close()


def test_the_export_dialog_takes_the_height_a_larger_font_needs(qtbot, tmp_path):
    """Its height is fixed at what its rows need (only its width can be dragged); the desktop's text
    made larger while it was open left it at the old height, its rows cut and no way to drag it
    taller."""
    from fader_desktop.dialogs import ExportDialog
    app = QApplication.instance()
    d = ExportDialog(tmp_path / "photo.gif",
                     losses=lambda suffix, keep: ["transparency dropped (a JPEG export cannot keep it)"])
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    before = d.height()
    font = app.font()
    bigger = QFont(font)
    bigger.setPointSizeF(font.pointSizeF() * 1.8)
    app.setFont(bigger)
    try:
        lay = d.layout()

        def fits() -> None:
            lay.activate()
            assert d.height() >= lay.totalHeightForWidth(d.width()) > before
        qtbot.waitUntil(fits, timeout=2000)
        # every row whole inside the dialog: the buttons' bottom edge too
        button = d.export_button
        assert button.mapTo(d, button.rect().bottomLeft()).y() < d.height()
    finally:
        app.setFont(font)
