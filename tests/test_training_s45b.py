"""Training window, round 45b: Options' --resume resumes as the Resume box does (it sent the form's
size, steps and cadence for a fresh run, and the trainer refused the size), and Resume with Options
that start a new run (--init, --continue) is refused before a trainer is started."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from core.run_files import CHECKPOINT_NAME  # noqa: E402
from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

TINY = ("--classifier-steps 2 --val-size 4 --batch-size 4 --log-every 1 --n-layers 3 --init-fm 8 --max-fm 32 "
        "--hid-dim 16 --threads 1 --quiet")


def _dialog(qtbot, **kw) -> TrainingDialog:
    d = TrainingDialog(**kw)
    qtbot.addWidget(d)
    d.device_combo.setCurrentIndex(d.device_combo.findData("cpu"))
    return d


def train_a_run_to_resume(qtbot, data: Path, run: Path, cache: Path) -> None:
    """A 32 px, 10-step run of the tiny settings, evaluated every 5 steps, as the form sends it;
    trained in this process (a trainer process costs ~5-10 s here)."""
    from training.cli import main as train
    first = _dialog(qtbot)
    first.data_edit.setText(str(data))
    first.out_edit.setText(str(run))
    first.size_combo.setCurrentIndex(first.size_combo.findData(32))
    first.steps_spin.setValue(10)
    first.extra_edit.setText(f"{TINY} --eval-every 5 --cache-dir {cache}")
    assert train(first.arguments()) == 0


def _value(args: list, option: str):
    return args[args.index(option) + 1] if option in args else None


def test_resume_typed_in_options_resumes_the_run_at_its_own_size_and_steps(qtbot, tmp_path, labeled_folder,
                                                                           one_torch_thread, capsys):
    """A 32 px, 10-step run, resumed from a new dialog by typing --resume (or --resu) in Options
    with the Resume box unticked: the dialog still sent the form's --img-size 64, --steps 20000,
    --eval-every 1000 and --classifier-steps for a fresh run, and the trainer refused ("--img-size 64
    differs from the checkpoint's 32"; with the size right, the form's steps would have run it on to
    20,000). Options' --resume now ticks the box (greyed, its tooltip saying why): the form shows the
    run's size and steps and sends neither, as the box does, and Start asks nothing."""
    from training.cli import main as train
    from training.trainer import load_checkpoint
    run = tmp_path / "runs" / "r32"
    cache = tmp_path / "cache"
    train_a_run_to_resume(qtbot, labeled_folder, run, cache)

    d = _dialog(qtbot)   # the form's defaults: 64 px, 20,000 steps
    d.data_edit.setText(str(labeled_folder))
    d.out_edit.setText(str(run))
    user_steps = d.steps_spin.value()
    assert not d.resume_check.isChecked() and d.resume_check.isEnabled()
    d.extra_edit.setText(f"--threads 1 --quiet --resu --cache-dir {cache}")
    # Start at once, before the run's settings are read: the run's own size, steps and cadence
    args = d.arguments()
    for option in ("--img-size", "--steps", "--eval-every", "--classifier-steps", "--init"):
        assert option not in args, (option, args)
    capsys.readouterr()
    code = train(args)
    said = capsys.readouterr().err
    assert code == 0 and "differs" not in said, said
    assert "already at step 10" in said, said   # resumed: at its own 10 steps, nothing more to train

    # the box says it: ticked, greyed out while Options give --resume, its tooltip naming them
    assert d.resume_check.isChecked() and not d.resume_check.isEnabled()
    assert "--resume" in d.resume_check.toolTip() and "Options" in d.resume_check.toolTip()
    qtbot.waitUntil(lambda: d.steps_spin.value() == 10, timeout=10_000)
    assert d.size_combo.currentData() == 32 and not d.size_combo.isEnabled()
    assert not d.classifier_spin.isEnabled()
    # taken out of Options: the box is as the user left it (unticked), with the user's own steps and size
    d.extra_edit.setText(f"--threads 1 --quiet --cache-dir {cache}")
    assert not d.resume_check.isChecked() and d.resume_check.isEnabled()
    assert d.steps_spin.value() == user_steps and d.size_combo.isEnabled()
    assert "--resume" not in d.resume_check.toolTip()
    # typed again, and more steps then: they continue the run, as with the box
    d.extra_edit.setText(f"--threads 1 --quiet --resume --cache-dir {cache}")
    qtbot.waitUntil(lambda: d.steps_spin.value() == 10, timeout=10_000)
    d.steps_spin.setValue(14)
    args = d.arguments()
    assert _value(args, "--steps") == "14" and "--img-size" not in args and args.count("--resume") == 1, args
    assert train(args) == 0, capsys.readouterr().err
    ck = load_checkpoint(run / CHECKPOINT_NAME)
    assert ck["step"] == 14 and ck["arch"]["img_size"] == 32


def test_resume_in_options_without_a_checkpoint_sends_the_forms_run(qtbot, tmp_path, labeled_folder):
    """Options' --resume on a folder without a checkpoint (a run stopped before its first one) starts
    that run again, which needs the form's size and steps: the box stays unticked and they are sent.
    A checkpoint written there later (the run went on) ticks the box."""
    d = _dialog(qtbot)
    d.data_edit.setText(str(labeled_folder))
    run = tmp_path / "run"
    d.out_edit.setText(str(run))
    d.extra_edit.setText("--resume")
    assert not d.resume_check.isChecked()
    args = d.arguments()
    assert _value(args, "--img-size") == "64" and _value(args, "--steps") == "20000", args
    run.mkdir()
    (run / CHECKPOINT_NAME).write_bytes(b"")   # unreadable: the form stays, the trainer says why
    d.out_edit.setText(str(run) + "/")
    assert d.resume_check.isChecked() and not d.resume_check.isEnabled()
    args = d.arguments()
    assert "--img-size" not in args and "--steps" not in args and "--eval-every" not in args, args


def test_resume_with_options_that_start_a_new_run_is_refused_at_start(qtbot, tmp_path, labeled_folder,
                                                                      tiny_model_path, monkeypatch):
    """Resume ticked (or Options' --resume) with --init or --continue in Options: the trainer was
    started and refused ("--resume continues a run folder, … give only one"), in its own words.
    Start now says so in the form's, and starts nothing."""
    from PySide6.QtWidgets import QMessageBox
    said = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: said.append(text))
    run = tmp_path / "run"
    run.mkdir()
    (run / CHECKPOINT_NAME).write_bytes(b"")
    d = _dialog(qtbot)
    d.data_edit.setText(str(labeled_folder))
    d.out_edit.setText(str(run))
    d.resume_check.setChecked(True)
    for typed, option in ((f"--init {tiny_model_path}", "--init"), (f"--cont={tiny_model_path}", "--continue")):
        d.extra_edit.setText(typed)
        with pytest.raises(ValueError):
            d.arguments()
        d.start()
        assert not d.is_running()
        assert option in said[-1] and "untick Resume" in said[-1], said[-1]
        assert d.phase_label.text().startswith("Not started"), d.phase_label.text()
    # both in Options
    d.resume_check.setChecked(False)
    d.extra_edit.setText(f"--resume --init {tiny_model_path}")
    assert d.resume_check.isChecked()
    d.start()
    assert not d.is_running()
    assert "--resume" in said[-1] and "--init" in said[-1] and "only one" in said[-1], said[-1]
    # the fine-tune box with Options' --resume: the run's own --init, none sent (the trainer refused both)
    d2 = _dialog(qtbot, current_model=str(tiny_model_path))
    d2.data_edit.setText(str(labeled_folder))
    d2.out_edit.setText(str(run))
    d2.finetune_check.setChecked(True)
    d2.extra_edit.setText("--resume")
    assert "--init" not in d2.arguments()
    assert Path(_value(d2.arguments(), "--out")) == run
