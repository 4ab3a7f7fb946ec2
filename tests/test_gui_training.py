"""Training ▸ Train model…: a real (tiny) fader-train run in a QProcess, watched and cancelled."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("pytestqt")

from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

TIMEOUT = 180_000


@pytest.fixture
def labeled_folder(tmp_path, celeba_aligned):
    """Smiling/{yes,no}/ with a few real aligned faces each (labels do not matter for the plumbing)."""
    files = sorted(celeba_aligned.glob("*.jpg"))[:20]
    root = tmp_path / "Smiling"
    for i, f in enumerate(files):
        d = root / ("yes" if i % 2 else "no")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.name)
    return root


def _tiny_run_dialog(qtbot, tmp_path, labeled_folder, classifier_steps: int, processes: int = 1) -> TrainingDialog:
    """The training dialog filled in for a tiny 32 px CPU run on the labeled folder."""
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.data_edit.setText(str(labeled_folder))
    d.size_combo.setCurrentIndex(d.size_combo.findData(32))
    d.steps_spin.setValue(5000)
    d.device_combo.setCurrentIndex(d.device_combo.findData("cpu"))
    if processes > 1:
        d.procs_spin.setValue(processes)
    d.out_edit.setText(str(tmp_path / "run"))
    d.extra_edit.setText(f"--classifier-steps {classifier_steps} --val-size 4 --batch-size 4 --eval-every 2 "
                         f"--log-every 1 --n-layers 3 --init-fm 8 --max-fm 32 --hid-dim 16 --threads 1 --quiet "
                         f"--cache-dir {tmp_path / 'cache'}")
    return d


def test_training_run_shows_progress_and_cancel_leaves_a_resumable_run(qtbot, tmp_path, labeled_folder):
    d = _tiny_run_dialog(qtbot, tmp_path, labeled_folder, classifier_steps=4)
    d.show()
    finished = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    assert d.is_running() and not d.start_button.isEnabled()
    # live: validation points from log.jsonl and the preview image appear while it trains
    qtbot.waitUntil(lambda: len(d._val) >= 1 and d.preview.pixmap() is not None and not d.preview.pixmap().isNull(),
                    timeout=TIMEOUT)
    assert d.open_button.isEnabled(), "the best model so far can be opened while training goes on"
    opened = []
    d.openResult.connect(opened.append)
    d.open_button.click()
    assert opened and opened[0].endswith("model.fader")

    d.stop_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert finished[0] == 143, d.log_view.toPlainText()[-800:]
    assert "Resume" in d.phase_label.text() and d.resume_check.isChecked()
    assert (tmp_path / "run" / "checkpoint_last.pt").is_file()
    assert "--resume" in d.arguments()


def test_a_trainer_error_is_shown_in_one_line(qtbot, tmp_path, celeba_aligned):
    """fader-train's one-line error (here: a labeled folder with a single value) reaches the dialog."""
    solo = tmp_path / "Bangs" / "yes"
    solo.mkdir(parents=True)
    shutil.copy(sorted(celeba_aligned.glob("*.jpg"))[0], solo / "a.jpg")
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.data_edit.setText(str(tmp_path / "Bangs"))
    d.out_edit.setText(str(tmp_path / "run"))
    d.extra_edit.setText(f"--quiet --cache-dir {tmp_path / 'cache'}")
    finished = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert finished[0] == 2
    text = d.phase_label.text()
    assert text.startswith("Training stopped: ") and "Bangs" in text and "value" in text, text
    assert d.start_button.isEnabled()
    # a long error wraps: the dialog keeps its width (it grew past the screen, Close out of reach)
    from PySide6.QtWidgets import QApplication
    d.show()
    QApplication.processEvents()
    width, hint = d.width(), d.sizeHint().width()
    d.phase_label.setText("Training stopped: " + "/a/very/long/folder name" * 40)
    QApplication.processEvents()
    assert d.width() == width and d.sizeHint().width() == hint


def test_a_two_process_run_from_the_dialog(qtbot, tmp_path, labeled_folder):
    """Processes = 2 starts the same trainer data-parallel under torchrun: rank 0's progress and
    log reach the dialog, and Cancel stops every process with a resumable checkpoint. QA item 7
    (test_gui_training_dialog_fixes.py), checked on this run: Cancel filled the messages with
    torchrun's "Received 15 death signal" warnings and a 30-line SignalException traceback, though
    the run stopped as asked (a two-process run costs ~20 s here: one serves both)."""
    import json
    d = _tiny_run_dialog(qtbot, tmp_path, labeled_folder, classifier_steps=2, processes=2)
    finished = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    qtbot.waitUntil(lambda: len(d._val) >= 1 or bool(finished), timeout=TIMEOUT)
    assert not finished, d.log_view.toPlainText()[-1500:]
    assert d._val[0]["world_size"] == 2
    assert "data-parallel on 2 processes (gloo); global batch 4 = 2 x 2" in d.log_view.toPlainText()
    d.stop_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    log = d.log_view.toPlainText()
    assert "Resume" in d.phase_label.text() and d.resume_check.isChecked(), log[-800:]
    assert "fader-train: stopped on request (SIGTERM) at step" in log, log[-1500:]   # QA walk: "SIGTERM at step"
    for noise in ("death signal", "closing signal", "Traceback", "SignalException", "site-packages"):
        assert noise not in log, (noise, finished, log[-2500:])
    from training.trainer import CHECKPOINT_NAME, load_checkpoint
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert ck["step"] >= 2   # saved when Cancel stopped the run, past the first evaluation
    assert json.loads(ck["meta_json"])["training"]["n_train"] > 0


def test_the_packaged_app_trains_through_its_own_train_command(qtbot, tmp_path, labeled_folder, monkeypatch):
    """In the packaged app sys.executable is FaderDesktop, not Python: the dialog must start
    `FaderDesktop train ...` (frozen_entry), not `-m training.cli`, which the app's CLI took for
    image paths. A stand-in executable runs frozen_entry exactly as the bundle does."""
    import stat
    import sys
    exe = tmp_path / "FaderDesktop"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m fader_desktop.frozen_entry \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    d = _tiny_run_dialog(qtbot, tmp_path, labeled_folder, classifier_steps=2)
    assert not d.procs_spin.isEnabled()   # torchrun needs a Python; the bundle trains in one process
    assert d.command()[0] == "train"
    finished = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    qtbot.waitUntil(lambda: len(d._val) >= 1 or bool(finished), timeout=TIMEOUT)
    assert d._val, d.log_view.toPlainText()[-800:]
    d.stop_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert (tmp_path / "run" / "checkpoint_last.pt").is_file()


def test_relative_folders_mean_the_same_to_the_trainer(qtbot, tmp_path, monkeypatch):
    """The trainer runs in the repository's folder, the window wherever it was started: folders
    typed as relative paths reach it as absolute ones, resolved where the user is."""
    monkeypatch.chdir(tmp_path)
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.data_edit.setText("photos/Smiling")
    d.out_edit.setText("runs/mine")
    args = d.arguments()
    assert args[args.index("--data") + 1] == str(tmp_path / "photos" / "Smiling")
    assert args[args.index("--out") + 1] == str(tmp_path / "runs" / "mine") == str(d.run_dir())


def test_cancel_while_the_data_is_prepared_offers_no_resume(qtbot, tmp_path, celeba_wild):
    """Cancel during the data preparation (faces detected and cropped, before the first
    checkpoint) said "the run can be continued with Resume", with Resume greyed out and nothing
    in the run folder to resume."""
    root = tmp_path / "Smiling"
    for i, f in enumerate(sorted(celeba_wild.glob("*.jpg"))[:60]):
        d = root / ("yes" if i % 2 else "no")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, d / f.name)
    d = _tiny_run_dialog(qtbot, tmp_path, root, classifier_steps=2)
    d.steps_spin.setValue(20)
    d.extra_edit.setText(d.extra_edit.text().replace(" --quiet", "") + " --align")   # the bars show the phase
    finished = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    qtbot.waitUntil(lambda: d.phase_label.text().startswith("Preprocessing") or bool(finished), timeout=TIMEOUT)
    assert not finished, d.log_view.toPlainText()[-800:]
    assert " of 60 images" in d.phase_label.text() and "step" not in d.phase_label.text(), d.phase_label.text()
    d.stop_button.click()
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert not (tmp_path / "run" / "checkpoint_last.pt").exists()
    text = d.phase_label.text()
    assert "Resume" not in text and "before the first checkpoint" in text, text
    assert not d.resume_check.isChecked() and not d.resume_check.isEnabled() and d.start_button.isEnabled()
    assert "--resume" not in d.arguments()


# A finished run naming its model file (RUN/model.fader) is checked on the finished run of
# test_gui_training_dialog_fixes.py::test_a_finished_run_leaves_a_new_run_folder_for_the_next: one
# trainer process (~5-10 s here) for both.


def test_preprocessing_progress_counts_images(qtbot):
    """While the data cache was built the dialog said "Preprocessing 64px: step 480 of 4,000":
    that bar counts photos (training/cache.py's tqdm, unit img), not training steps."""
    import io
    from tqdm import tqdm
    d = TrainingDialog()
    qtbot.addWidget(d)

    def bar_line(**kw) -> str:
        buf = io.StringIO()
        bar = tqdm(file=buf, mininterval=0, ascii=False, **kw)
        bar.update(480)
        bar.refresh()
        text = buf.getvalue().split("\r")[-1]
        bar.close()
        return text
    d._line(bar_line(total=4000, desc="preprocessing 64px", unit="img"), partial=True)
    assert d.phase_label.text().startswith("Preprocessing 64px: 480 of 4,000 images"), d.phase_label.text()
    assert d.progress.value() == 480 and d.progress.maximum() == 4000
    d._line(bar_line(total=4000, desc="training", unit="step"), partial=True)
    assert d.phase_label.text().startswith("Training: step 480 of 4,000"), d.phase_label.text()
