"""Training window, round 45c: the step counter, the progress bar and the time left follow the newest
step the dialog knows of. The trainer writes its progress line to a pipe only every 5-30 s
(training/progress.py), so on a resumed 200-step run the dialog said "step 10 of 200 — about
1:00:00 left (the 60 min limit)" at 0 % while the log and the curves were at step 30."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("pytestqt")

from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

from test_training_s45b import train_a_run_to_resume  # noqa: E402

TIMEOUT = 180_000
EVAL_LINE = re.compile(r"^step (\d+) \|", re.M)
COUNTER = re.compile(r"^Training: step ([\d,]+) of ([\d,]+)")


def _dialog(qtbot) -> TrainingDialog:
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.device_combo.setCurrentIndex(d.device_combo.findData("cpu"))
    return d


def _shown(d: TrainingDialog):
    """(the counter's step, the bar's fraction) as the dialog shows them; step None before training."""
    m = COUNTER.match(d.phase_label.text())
    step = int(m[1].replace(",", "")) if m else None
    fraction = d.progress.value() / d.progress.maximum() if d.progress.maximum() > 0 else 0.0
    return step, fraction


def run_watched(qtbot, d: TrainingDialog, look) -> tuple:
    """Start the dialog's run and wait for its end, calling look() each time the dialog has read
    what the trainer wrote; (the run's exit codes, the dialog's messages). Killed if it overruns."""
    finished = []
    d.start()
    # connected after the dialog's own slots: called once the dialog has read what came
    d.proc.readyReadStandardOutput.connect(look)
    d.proc.readyReadStandardError.connect(look)
    d.proc.finished.connect(lambda code, status: finished.append(code))
    try:
        qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    finally:
        if d.is_running():
            d.proc.kill()
            d.proc.waitForFinished(30_000)
    return finished, d.log_view.toPlainText()


def test_a_resumed_run_counts_to_the_step_its_evaluations_show(qtbot, tmp_path, labeled_folder, one_torch_thread):
    """A 10-step run resumed to 40 steps in the window, evaluated every 5 steps: the evaluation lines
    ("step 15 | …") came into the log while the counter stayed at "step 10 of 40 — about 1:00:00
    left (the 60 min limit)" and the bar at 0 %, until the trainer's next progress line. Looked at
    each time the trainer's output is read: once the log shows step N's evaluation, the counter says
    at least step N and the bar is at least N/40, neither goes back, and past the first evaluation
    the time left is the steps' own (a few seconds here), not the hour's limit."""
    run = tmp_path / "run"
    cache = tmp_path / "cache"
    train_a_run_to_resume(qtbot, labeled_folder, run, cache)   # the run to resume

    d = _dialog(qtbot)
    d.data_edit.setText(str(labeled_folder))
    d.out_edit.setText(str(run))
    d.extra_edit.setText(f"--threads 1 --cache-dir {cache}")   # not --quiet: its progress lines
    d.resume_check.setChecked(True)
    qtbot.waitUntil(lambda: d.steps_spin.value() == 10, timeout=10_000)
    d.steps_spin.setValue(40)
    assert d.minutes_spin.value() == 60
    seen, wrong = [], []

    def look(*_):
        evals = [int(n) for n in EVAL_LINE.findall(d.log_view.toPlainText())]
        step, fraction = _shown(d)
        seen.append((max(evals, default=0), step, fraction, d.phase_label.text()))
        if not evals:
            return
        n = max(evals)
        if step is None or step < n or fraction < n / 40 - 1e-9:
            wrong.append(f"log at step {n}, shown: {d.phase_label.text()!r} at {fraction:.0%}")
        elif n > 10 and "limit" in d.phase_label.text():
            wrong.append(f"log at step {n}, time left from the limit: {d.phase_label.text()!r}")

    finished, log = run_watched(qtbot, d, look)
    assert finished == [0], log[-1500:]
    assert sorted(set(int(n) for n in EVAL_LINE.findall(log))) == [15, 20, 25, 30, 35, 40], log[-1500:]
    assert not wrong, "\n".join(wrong)
    steps = [s for _n, s, _f, _t in seen if s is not None]
    assert steps == sorted(steps) and steps[-1] == 40, seen
    fractions = [f for _n, s, f, _t in seen if s is not None]
    assert fractions == sorted(fractions), seen


def test_a_resumed_run_at_its_time_limit_shows_how_far_it_has_come(qtbot, tmp_path):
    """A run resumed at step 150 of 200 with the form's 60-minute limit, on steps slower than the
    limit allows: the bar counted the limit's minutes (0 % at the start, 17 % after 10 minutes)
    where the run was three quarters done, and before any step was timed it said "about 1:00:00
    left" (the limit, no estimate). The trainer's own progress lines, as it writes them to a pipe."""
    from tqdm import tqdm
    d = _dialog(qtbot)
    d.data_edit.setText(str(tmp_path / "no such folder"))
    d.out_edit.setText(str(tmp_path / "run"))
    d.minutes_spin.setValue(60)
    d.steps_spin.setValue(200)
    d.extra_edit.setText(f"--quiet --threads 1 --cache-dir {tmp_path / 'cache'}")
    d.start()   # the settings of a run; the trainer itself is not what this checks
    assert d.is_running()
    d.proc.kill()
    d.proc.waitForFinished(30_000)

    def line(n: int, elapsed: float, rate=None) -> str:
        # training/progress.py's LogProgress line of a bar started at step 150
        return tqdm.format_meter(n, 200, elapsed, prefix="training", ascii=True, unit="step", rate=rate,
                                 postfix="3 img/s rec 0.0302 lat 1.690", initial=150)
    d._line(line(150, 0.0))
    step, fraction = _shown(d)
    assert step == 150 and fraction >= 0.75, (d.phase_label.text(), fraction)
    assert "about 1:00:00" not in d.phase_label.text(), d.phase_label.text()
    # 2 steps in 10 minutes: the 48 left would take 4 hours, the limit ends the run in 50 minutes
    d._line(line(152, 600.0, rate=2 / 600))
    step, fraction = _shown(d)
    text = d.phase_label.text()
    assert text.startswith("Training: step 152 of 200 — about 50:00 left (the 60 min limit)"), text
    assert fraction >= 152 / 200, fraction
