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

from PySide6.QtWidgets import QApplication  # noqa: E402

from fader_desktop.training_dialog import TrainingDialog  # noqa: E402

TIMEOUT = 120_000
TINY = ("--classifier-steps 2 --val-size 4 --batch-size 4 --log-every 1 --n-layers 3 --init-fm 8 --max-fm 32 "
        "--hid-dim 16 --threads 1 --workers 1")


def _dialog(qtbot, tmp_path, data, steps: int = 4, extra: str = "--eval-every 4", model=None) -> TrainingDialog:
    """A dialog set for a tiny 32 px CPU run of `data` into tmp_path/run (`model`: the editor's open model)."""
    d = TrainingDialog(current_model=str(model) if model else None)
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


def test_a_run_that_fails_shows_no_full_bar(qtbot, tmp_path, monkeypatch):
    """Item 2: images that cannot be read were all preprocessed (the bar at 12 of 12), then the
    trainer refused the data: "Training stopped: … has no usable training image" stood under a
    full bar, as if the run were done. And a trainer that could not be started left the bar
    running busy for ever."""
    root = tmp_path / "Smiling"
    for i in range(12):
        (root / ("yes" if i % 2 else "no")).mkdir(parents=True, exist_ok=True)
        (root / ("yes" if i % 2 else "no") / f"{i}.jpg").write_bytes(b"not an image")
    d = _dialog(qtbot, tmp_path, root)
    with monkeypatch.context() as m:
        m.setattr(sys, "executable", str(tmp_path / "no such python"))
        d.start()
        qtbot.waitUntil(lambda: d.phase_label.text().startswith("Could not start"), timeout=10_000)
    value, top = _bar(d)
    assert top > 0, "the bar still runs busy"
    assert value < top and d.progress.text() == "failed", (value, top, d.progress.text())

    counted = []   # the next run's bar counts again (not the last one's "failed")
    d.progress.valueChanged.connect(lambda v: counted.append(d.progress.text()) if d.progress.maximum() == 12 else None)
    finished = _start(d)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert counted and all(t.endswith("%") for t in counted), counted
    assert finished[0] == 2 and d.phase_label.text().startswith("Training stopped: "), d.log_view.toPlainText()[-800:]
    value, top = _bar(d)
    assert value < top and d.progress.text() == "failed", (value, top, d.progress.text())


def test_the_trainers_advice_names_the_forms_fields(qtbot, tmp_path, labeled_folder):
    """Item 3: the status line repeated the trainer's option names, which a user of the form never
    typed: "--out … is inside --data …", "unknown attribute … in --attr". Two settings the trainer
    refuses at once, said in the form's words."""
    d = _dialog(qtbot, tmp_path, labeled_folder)
    d.out_edit.setText(str(labeled_folder / "run"))
    finished = _start(d)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    text = d.phase_label.text()
    assert finished[0] == 2 and f"the Run folder {labeled_folder / 'run'} is inside the data folder" in text, text
    assert "--" not in text, text

    table = tmp_path / "table"
    shutil.copytree(labeled_folder / "yes", table / "images")
    rows = [f"images/{p.name},{i % 2}" for i, p in enumerate(sorted((table / "images").iterdir()))]
    (table / "labels.csv").write_text("file,Smiling\n" + "\n".join(rows) + "\n")
    d.data_edit.setText(str(table / "labels.csv"))
    d.out_edit.setText(str(tmp_path / "run"))
    d.attr_edit.setText("Smilin")
    finished = _start(d)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    text = d.phase_label.text()
    assert finished[0] == 2 and "unknown attribute 'Smilin'" in text and " in Attributes; the table has" in text, text
    assert "--" not in text, text


def test_a_full_disk_leaves_the_run_to_resume_and_says_so_in_the_forms_words(qtbot, tmp_path, labeled_folder):
    """Item 3: the disk filled up in the middle of a run; the trainer kept its last checkpoint
    and said "rerun with --resume once it can be written", but the Resume box (which is --resume
    here) stayed unticked, and nothing in the form is called --resume. Now the status line says
    to start again with Resume ticked, and the box is ticked, as after Cancel. Resumed on another
    attribute's folder, "resume with the run's --data and --attr" names the Data and Attributes
    fields."""
    from conftest import _mount_tmpfs, _unmount, fill_disk
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "size=16m,mode=0777"):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        d = _dialog(qtbot, tmp_path, labeled_folder, steps=100_000, extra="--eval-every 100000 --ckpt-every 1")
        d.out_edit.setText(str(disk / "run"))
        finished = _start(d)
        qtbot.waitUntil(lambda: d.phase_label.text().startswith("Training") or bool(finished), timeout=TIMEOUT)
        assert not finished and (disk / "run" / "checkpoint_last.pt").is_file(), d.log_view.toPlainText()[-1500:]
        fill_disk(disk, 4096)   # the next checkpoint (one a step) cannot be written
        qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
        text = d.phase_label.text()
        assert finished[0] == 2 and "is intact: Start training again with Resume ticked once it can be written" in text, \
            (text, d.log_view.toPlainText()[-1500:])
        assert "--resume" not in text
        assert d.resume_check.isChecked() and "--resume" in d.arguments()
        assert d.progress.text() == "failed"

        # room again, but the Data field now names another attribute's folder: the trainer's
        # "resume with the run's --data and --attr", in the form's words
        (disk / "filler.bin").unlink()
        male = tmp_path / "Male"
        shutil.copytree(labeled_folder, male)
        d.data_edit.setText(str(male))
        finished = _start(d)
        qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
        text = d.phase_label.text()
        assert finished[0] == 2 and "resume with the run's Data and Attributes" in text, \
            (text, d.log_view.toPlainText()[-1500:])
        assert "--" not in text, text
    finally:
        _unmount(disk)


def test_a_finished_run_says_what_its_time_is_and_names_the_preview_rows(qtbot, tmp_path, labeled_folder):
    """Item 4: "[Finished after 0.2 min…]" stood under the trainer's "done at step 4 after 0.1
    min" (on a resumed run 0.1 under 0.4): two "after"s for different things. The dialog's line
    says what it counts, the time from Start training.
    Item 5: the preview, 3 columns of faces for one attribute (7 for five), named none of them.
    Its images are now laid out a face per column and a kind per row, each row named at its left
    ("original", "reconstruction", "Smiling switched"), and its tooltip says the same."""
    d = _dialog(qtbot, tmp_path, labeled_folder)
    d.show()
    finished = _start(d)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert finished[0] == 0, d.log_view.toPlainText()[-1500:]
    log = d.log_view.toPlainText()
    assert re.search(r"fader-train: done at step 4 after [\d.]+ min", log), log[-800:]
    text = d.phase_label.text()
    assert re.match(r"Finished [\d.]+ min after Start training; the run's best model is ", text), text
    assert "Finished after" not in log

    qtbot.waitUntil(lambda: bool(d.preview.toolTip()), timeout=10_000)
    tip = d.preview.toolTip()
    assert "original, reconstruction, Smiling switched" in tip and "one a column" in tip, tip
    QApplication.processEvents()
    image = d.preview.pixmap().toImage()
    # the faces (opaque) start where every row's middle is covered; left of them, the names'
    # letters on a transparent ground, in each of the three rows
    middles = [(2 * k + 1) * image.height() // 6 for k in range(3)]
    faces_x = next(x for x in range(image.width()) if all(image.pixelColor(x, y).alpha() == 255 for y in middles))
    assert faces_x > 40, faces_x
    for k in range(3):
        band = range(k * image.height() // 3, (k + 1) * image.height() // 3)
        ink = sum(1 for y in band for x in range(faces_x - 2) if image.pixelColor(x, y).alpha() > 0)
        assert ink > 20, (k, ink)


def test_a_run_refused_at_once_reads_failed_and_its_error_is_not_the_next_runs(qtbot, tmp_path, labeled_folder):
    """A review of the failed-run bar: a run refused before its first progress line left the bar
    empty without a word (its value -1, under the minimum, where Qt draws no text); and the
    error the status line quotes was looked for in every run's messages, so a later run that
    failed without an error line of its own would have been said with an earlier one's."""
    d = _dialog(qtbot, tmp_path, labeled_folder)
    d.out_edit.setText(str(labeled_folder / "run"))
    finished = _start(d)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert finished[0] == 2 and d.progress.text() == "failed", d.progress.text()
    assert "is inside --data" in d._last_error()   # the trainer's words, said in the form's in the status line
    d.out_edit.setText(str(tmp_path / "run"))
    finished = _start(d)
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    assert finished[0] == 0 and d.phase_label.text().startswith("Finished")
    assert d._last_error() == ""   # the refusal above is the earlier run's
