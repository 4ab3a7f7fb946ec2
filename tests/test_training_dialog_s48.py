"""Training ▸ Train model…, QA round 48: the bar moves while the data are preprocessed and the
classifier trains, a failed run shows no full bar, the trainer's advice names the form's fields
(and a checkpoint left intact by a full disk is offered to Resume), the end of a run says what its
time measures, and the preview says what its images are."""
from __future__ import annotations

import re
import shutil
import sys

import pytest

pytest.importorskip("pytestqt")


from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

TIMEOUT = 120_000
TINY = ("--classifier-steps 2 --val-size 4 --batch-size 4 --log-every 1 --n-layers 3 --init-fm 8 --max-fm 32 "
        "--hid-dim 16 --threads 1")


def _dialog(qtbot, tmp_path, data, steps: int = 4, extra: str = "--eval-every 4") -> TrainingDialog:
    """A dialog set for a tiny 32 px CPU run of `data` into tmp_path/run."""
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.data_edit.setText(str(data))
    d.size_combo.setCurrentIndex(d.size_combo.findData(32))
    d.steps_spin.setValue(steps)
    d.device_combo.setCurrentIndex(d.device_combo.findData("cpu"))
    d.out_edit.setText(str(tmp_path / "run"))
    d.extra_edit.setText(f"{TINY} {extra} --cache-dir {tmp_path / 'cache'}")
    return d


def _start(d: TrainingDialog) -> list:
    """Start the dialog's run; the list gets its exit status when it ends."""
    finished: list = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    return finished


def _bar(d: TrainingDialog) -> tuple:
    return d.progress.value(), d.progress.maximum()


def test_the_bar_moves_while_the_data_are_preprocessed_and_a_stop_shows_how_far(qtbot, tmp_path, celeba_wild):
    """Item 1: the trainer's progress line reached the dialog's pipe every 30 s only, so
    "Preprocessing 128px: 0 of 200 images" stood at 0 % for the 17 s it took and then jumped to
    200 of 200, and a stop with 79 done still said 0 of 200. Photos with faces to find take a
    fraction of a second each here: the bar shows counts between 0 and all while it goes on, and
    after Cancel the count the trainer says it kept."""
    root = tmp_path / "Smiling"
    for i, f in enumerate(sorted(celeba_wild.glob("*.jpg"))[:60]):
        (root / ("yes" if i % 2 else "no")).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / ("yes" if i % 2 else "no") / f.name)
    # one thread finds the faces: some seconds for the 60 on any machine
    d = _dialog(qtbot, tmp_path, root, extra="--eval-every 4 --align --workers 1")
    seen = []   # the bar's (value, maximum): the preprocessing's counts 60 images
    d.progress.valueChanged.connect(lambda v: seen.append((v, d.progress.maximum())))
    finished = _start(d)

    def between() -> bool:
        return any(top == 60 and 0 < v < 60 for v, top in seen)
    qtbot.waitUntil(lambda: between() or bool(finished) or d.phase_label.text().startswith(("Classifier", "Training")),
                    timeout=TIMEOUT)
    assert between(), (seen, d.log_view.toPlainText()[-1500:])
    assert not finished, d.log_view.toPlainText()[-1500:]
    qtbot.wait(500)   # between two lines: some images are done that no line has counted yet
    d.stop_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    said = re.search(r"preprocessing stopped after (\d+) of 60 images", d.log_view.toPlainText())
    assert said, d.log_view.toPlainText()[-1500:]
    assert _bar(d) == (int(said[1]), 60), (_bar(d), said[0])


def test_the_classifier_bar_moves_and_a_log_file_is_not_flooded(qtbot, monkeypatch):
    """Item 1: "Classifier: step 0 of 20" sat for the 7 s its 20 steps took (a line every 30 s
    where stderr is no terminal). Its lines, as the trainer writes them to a pipe, move the
    dialog's bar each second or so; a log file of a fast bar still gets no more than about a
    line a second. The trainer's own LogProgress, on a clock that the test moves."""
    import io
    import types

    from training import progress
    now = [1000.0]
    monkeypatch.setattr(progress, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = progress.progress_bar(20, "classifier", "step")
    for _ in range(20):   # 0.35 s a step: 7 s
        now[0] += 0.35
        bar.update(1)
    bar.close()
    d = TrainingDialog()
    qtbot.addWidget(d)
    shown = []
    for line in err.getvalue().splitlines():
        d._line(line)
        shown.append(_bar(d)[0])
        assert d.phase_label.text().startswith(f"Classifier: step {shown[-1]} of 20"), d.phase_label.text()
    assert shown[0] == 0 and shown[-1] == 20
    assert len([s for s in shown if 0 < s < 20]) >= 4, shown   # about one a second

    err.seek(0)
    err.truncate()
    bar = progress.progress_bar(100_000, "preprocessing 64px", "img")
    for _ in range(100_000):   # 10 s of a fast bar: 10,000 images a second
        now[0] += 1e-4
        bar.update(1)
    bar.close()
    assert len(err.getvalue().splitlines()) <= 12, err.getvalue()[-600:]
