"""Training window, round 45d: `--quiet` in Options. The trainer's --quiet turns off its progress
bar, which is where the window reads the run's phase, step, losses and time left from (the bar's
lines never show in the messages), so a run with --quiet in Options showed "Starting…" and an idle
bar to its end. The window leaves --quiet out and says so in its messages."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("pytestqt")

from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

from test_training_s45c import run_watched  # noqa: E402

TINY = ("--classifier-steps 2 --val-size 4 --batch-size 4 --log-every 1 --n-layers 3 --init-fm 8 --max-fm 32 "
        "--hid-dim 16 --threads 1")
COUNTER = re.compile(r"^Training: step ([\d,]+) of ([\d,]+)")


@pytest.mark.parametrize("quiet", ["--quiet", "--qui"])
def test_a_run_with_quiet_in_options_counts_its_steps_to_the_end(qtbot, tmp_path, labeled_folder,
                                                                 one_torch_thread, quiet):
    """A 10-step run with --quiet (or its abbreviation) in Options: the counter reads "Training:
    step N of 10" while it runs, reaching step 10 with the bar full, and the messages say why
    --quiet is not on the command line the window ran."""
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.device_combo.setCurrentIndex(d.device_combo.findData("cpu"))
    d.data_edit.setText(str(labeled_folder))
    d.out_edit.setText(str(tmp_path / "run"))
    d.size_combo.setCurrentIndex(d.size_combo.findData(32))
    d.steps_spin.setValue(10)
    d.extra_edit.setText(f"{TINY} {quiet} --eval-every 5 --cache-dir {tmp_path / 'cache'}")
    seen = []

    def look(*_):
        m = COUNTER.match(d.phase_label.text())
        if m:
            seen.append((int(m[1].replace(",", "")), int(m[2].replace(",", "")),
                         d.progress.value() / max(1, d.progress.maximum())))

    finished, log = run_watched(qtbot, d, look)
    assert finished == [0], log[-1500:]
    assert seen, f"the counter never showed a training step; messages:\n{log[-1500:]}"
    assert seen[-1][:2] == (10, 10) and seen[-1][2] == pytest.approx(1.0), seen
    command = next(line for line in log.splitlines() if line.startswith("$ "))
    assert "--qui" not in command, command
    assert "--quiet" in log and "progress" in log, log[:1500]
