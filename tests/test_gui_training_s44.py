"""Training ▸ Train model…, QA round 44: the trainer's messages stay in view (they were pushed out
of the dialog at its own size once a run had failed), the dialog fits a 640 x 480 screen's width,
and the evaluation classifier's stage (2,000 steps, 10 minutes of a "40 steps" run) is a field of
the form that reaches the trainer's command line."""
from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QTextCursor  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.run_files import CHECKPOINT_NAME  # noqa: E402
from fader_desktop.training_dialog import DEFAULT_SIZE, TrainingDialog  # noqa: E402


def _lines_in_view(d: TrainingDialog) -> float:
    """How many lines of the messages the dialog shows (what its scrolling and splitting leave)."""
    log = d.log_view
    return log.visibleRegion().boundingRect().height() / log.fontMetrics().lineSpacing()


def _last_line_in_view(d: TrainingDialog) -> bool:
    log = d.log_view
    end = QTextCursor(log.document())
    end.movePosition(QTextCursor.MoveOperation.End)
    return log.viewport().visibleRegion().boundingRect().contains(log.cursorRect(end))


def test_the_messages_stay_in_view_after_a_run_that_fails(qtbot, tmp_path, monkeypatch):
    """At the dialog's own size (980 x 680) the messages showed 5 lines before a run, none after a
    run that failed (its error wrapped to 3 lines above them), and half a line after the next: the
    command line and the trainer's error were read by scrolling the whole form. On a 640 x 480
    screen "Label file…" was reached by scrolling sideways."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))   # the dialog's own run folder
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.show()
    d.resize(*DEFAULT_SIZE)
    d.data_edit.setText(str(tmp_path / "Smiling"))
    # options fader-train does not know: refused before it imports torch (0.6 s, where a data
    # error takes 5), in an error that wraps to three lines as QA's data error did
    d.extra_edit.setText("--threads 1 --no-such-option " + " ".join(f"/photos/folder{i}" for i in range(25)))
    for _ in range(2):
        finished = []
        d.start()
        d.proc.finished.connect(lambda code, status: finished.append(code))
        qtbot.waitUntil(lambda: bool(finished), timeout=60_000)
        QApplication.processEvents()
        assert finished[0] == 2, d.log_view.toPlainText()[-1500:]
        assert d.phase_label.text().startswith("Training stopped: "), d.phase_label.text()
        assert d.size().toTuple() == DEFAULT_SIZE
        assert _lines_in_view(d) >= 5, _lines_in_view(d)
        assert _last_line_in_view(d), "the trainer's error, last in the messages, is out of view"

    # the width of a 640 x 480 screen (fit_on_screen leaves the window frame's room)
    d.resize(624, 440)
    QApplication.processEvents()
    assert _lines_in_view(d) >= 4, _lines_in_view(d)
    assert d.scroll.horizontalScrollBar().maximum() == 0, d.scroll.widget().minimumSizeHint()
    label_file = next(b for b in d.setup.findChildren(type(d.start_button)) if b.text().replace("&", "") == "Label file…")
    assert label_file.visibleRegion().boundingRect().width() == label_file.width()


def test_the_classifier_stage_is_a_field_of_the_form(qtbot, tmp_path):
    """A "40 steps" run first trained the evaluation classifier for 2,000 steps (10 minutes on a
    CPU); only the Options placeholder named --classifier-steps. The Classifier field starts at
    "Automatic" (the trainer's own choice by data size: nothing sent), says what the stage is for
    and costs, and a number set in it reaches the trainer; where it does not count (Options give
    their own, a resumed run) it is greyed out."""
    from training.cli import build_parser
    parser = build_parser()

    def steps(d) -> int:
        return parser.parse_args(d.arguments()).classifier_steps

    d = TrainingDialog()
    qtbot.addWidget(d)
    d.show()
    d.resize(*DEFAULT_SIZE)
    QApplication.processEvents()
    d.data_edit.setText(str(tmp_path / "Smiling"))
    d.out_edit.setText(str(tmp_path / "run"))
    spin = d.classifier_spin
    assert spin.value() == spin.minimum() and parser.get_default("classifier_steps") is None and steps(d) is None
    assert spin.isEnabled() and not spin.visibleRegion().isEmpty(), "in view with the form, not scrolled to"
    tip = spin.toolTip()
    assert "swap accuracy" in tip and "minutes" in tip and "best model" in tip, tip
    spin.setValue(20)
    assert steps(d) == 20 and "--classifier-steps 20" in " ".join(d.arguments())

    # Options come after the form and win (abbreviated too): the field says so
    d.extra_edit.setText("--classifier-ste 5 --batch-size 8")
    assert steps(d) == 5 and " ".join(d.arguments()).count("--classifier-steps") == 1
    assert not spin.isEnabled() and "--classifier-steps 5" in d.classifier_note.text()
    # a classifier taken from a model: none is trained, whatever steps are given with it
    d.extra_edit.setText(f"--classifier {tmp_path / 'other.fader'} --classifier-steps 7")
    assert " ".join(d.arguments()).count("--classifier-steps") == 1
    assert not spin.isEnabled() and "--classifier" in d.classifier_note.text()
    d.extra_edit.setText("")
    assert spin.isEnabled() and steps(d) == 20

    # a resumed run keeps the classifier it trained: nothing sent (it would be ignored)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / CHECKPOINT_NAME).write_bytes(b"")
    d.out_edit.setText(str(tmp_path / "run") + "/")
    d.resume_check.setChecked(True)
    assert d.resume_check.isChecked()
    assert "--classifier-steps" not in " ".join(d.arguments()) and not spin.isEnabled()
    d.resume_check.setChecked(False)
    assert spin.isEnabled() and steps(d) == 20
