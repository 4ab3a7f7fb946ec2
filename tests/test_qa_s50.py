"""QA walk of session 50 under a real X server (Xvfb), its findings as tests: the real window and
dialogs, the tiny test models (nothing of ours mocked; a question or the Export dialog is answered
in place of the user).

- With an edit set aside (a model that cannot read the photo's faces, 2ada9f0), File ▸ Export
  wrote the photo without the edit and said only "Exported NAME": the close question leaves
  Export… out for that very reason, the Export button did not say it.
- The training window's Classifier and process-count tooltips were single lines 2,100 and 1,600
  px wide: on a 1400 px screen they ran off its edge, their ends unreadable."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_gui import TIMEOUT, editor, shared_window  # noqa: E402,F401
from test_gui_review_s49l import _back_to_tiny  # noqa: E402
from test_gui_setaside_s50 import _asking, _edited_then_unreadable  # noqa: E402

from PySide6.QtGui import Qt  # noqa: E402  (Qt.mightBeRichText lives in QtGui)
from PySide6.QtWidgets import QLabel, QWidget  # noqa: E402

from fader_desktop.dialogs import ExportDialog  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_export_with_an_edit_set_aside_says_the_export_holds_the_photo_without_it(
        editor, qtbot, tmp_path, tiny_model_path, portrait_path, monkeypatch):
    w = editor
    shown = []

    def exec_(dlg):   # the Export dialog: answered with a path, OK
        shown.append(dlg.path_edit.text())
        dlg.path_edit.setText(str(tmp_path / "without.png"))
        return 1
    monkeypatch.setattr(ExportDialog, "exec", exec_)
    try:
        big = _edited_then_unreadable(w, qtbot, tmp_path, portrait_path, tiny_model_path)[0]
        asked = _asking(w, monkeypatch, False)    # Cancel: no dialog, nothing written
        w.export_dialog()
        assert [t for t, _m in asked] == ["Export without the edits?"], asked
        assert big.name in asked[0][1] and "without your edits" in asked[0][1], asked
        assert not shown and not (tmp_path / "without.png").exists()
        asked = _asking(w, monkeypatch, True)     # answered: the dialog, the photo as it is written
        with qtbot.waitSignal(w.exportFinished, timeout=TIMEOUT):
            w.export_dialog()
        assert len(asked) == 1 and len(shown) == 1 and (tmp_path / "without.png").is_file()
        assert w.has_unsaved_edits() and w.isWindowModified()   # the edit set aside is still not exported
    finally:
        monkeypatch.setattr(w, "ask_confirm", lambda *a, **k: True)
        _back_to_tiny(w, qtbot, tiny_model_path)


def _tip_width(text: str) -> int:
    """The width Qt's tooltip takes for `text` (QTipLabel: word-wrapped where it is rich text,
    unless even so it is narrower than a quarter of the screen)."""
    label = QLabel()
    label.setWordWrap(Qt.mightBeRichText(text))
    label.setText(text)
    width = label.sizeHint().width()
    if not label.wordWrap() or width < 1280 / 4:
        label.setWordWrap(False)
        width = label.sizeHint().width()
    return width


def test_the_training_windows_tooltips_fit_on_a_small_screen(qtbot):
    from fader_desktop.training_dialog import TrainingDialog
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.show()
    d.extra_edit.setText("--classifier-steps 50")   # the Classifier field's "Not used: …" tip too
    wide = [(type(widget).__name__, _tip_width(widget.toolTip()), widget.toolTip()[:70])
            for widget in d.findChildren(QWidget) if widget.toolTip() and _tip_width(widget.toolTip()) > 1000]
    assert not wide, wide
