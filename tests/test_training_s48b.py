"""Training, QA round 48b: a model is measured on its own validation images (the split rule and
seed its training recorded, drawn among the usable images); the training window offers Resume
after a run that stopped at its time limit, calls the --init model "the open model" only where it
is, and shows a resumed run's whole history in charts whose labels fit; the trainer names a run's
model as the built-in one is named ("128 px")."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import TINY_TRAIN, noise_images
from test_training_dialog_s48 import _dialog

from training import cli, evaluation

TINY = [*TINY_TRAIN, "--batch-size", "8"]


def _folder(root: Path, n_yes: int = 20, n_no: int = 13, junk_no: int = 10) -> Path:
    """A labeled folder Smiling/{yes,no}, `junk_no` of the 'no' images unreadable."""
    noise_images(root / "yes", [f"IMG_{i:04d}.png" for i in range(n_yes)], seed=1)
    names = [f"IMG_{i:04d}.png" for i in range(100, 100 + n_no)]
    noise_images(root / "no", names, seed=2, junk=set(names[n_no - junk_no:]))
    return root


@pytest.mark.usefixtures("one_torch_thread")
def test_a_model_is_measured_on_its_own_validationnoise_images(tmp_path, capsys):
    """Item 1: `python -m training.evaluation` drew its validation images by the old rule (a
    hold-out of all images by hash, seed 0) from a model that fader-train had split by value among
    the usable images with --seed 3: of its 3 images one was unreadable and the 2 measured were
    both training images. Now the images measured are the run's val_files.txt, and the figures
    are those of a measurement on that list (which --val-list read as no image of the data: its
    lines are paths where the data lay, not paths inside the data)."""
    data = _folder(tmp_path / "Smiling")
    run = tmp_path / "run"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert cli.main(["--data", str(data), "--out", str(run), "--steps", "2", "--eval-every", "2", "--seed", "3",
                     *cache, *TINY]) == 0, capsys.readouterr().err
    val_files = (run / "val_files.txt").read_text().split()
    train_files = set((run / "train_files.txt").read_text().split())
    capsys.readouterr()
    common = ["--model", str(run / "model.fader"), "--data", str(data), "--device", "cpu", *cache]
    assert evaluation.main([*common, "--out", str(tmp_path / "own.json"),
                            "--write-val-list", str(tmp_path / "measured.txt")]) == 0, capsys.readouterr().err
    measured = (tmp_path / "measured.txt").read_text().split()
    assert sorted(measured) == sorted(val_files) and not set(measured) & train_files, (measured, val_files)
    own = json.loads((tmp_path / "own.json").read_text())
    assert own["n_images"] == len(val_files) and "as the model's training drew it" in own["split"], own
    assert "warning" not in capsys.readouterr().err
    # the run's own list, as --val-list (the paths where the data lay): the same images, the same figures
    listed_json = tmp_path / "listed.json"
    assert evaluation.main([*common, "--val-list", str(run / "val_files.txt"), "--out", str(listed_json)]) == 0, \
        capsys.readouterr().err
    listed = json.loads(listed_json.read_text())
    for key in ("n_images", "psnr", "swap_mean", "swap_accuracy"):
        assert own[key] == listed[key], key
    # --val-size keeps at most that many of them, never a training image
    assert evaluation.main([*common, "--val-size", "1", "--write-val-list", str(tmp_path / "one.txt")]) == 0
    one = (tmp_path / "one.txt").read_text().split()
    assert len(one) == 1 and set(one) <= set(val_files)


# -- the training window -----------------------------------------------------------------------

TIMEOUT = 120_000
def _run(qtbot, d) -> int:
    """Start the dialog's run and wait for its end: its exit status."""
    finished: list = []
    d.start()
    d.proc.finished.connect(lambda code, status: finished.append(code))
    qtbot.waitUntil(lambda: bool(finished), timeout=TIMEOUT)
    qtbot.wait(50)   # the dialog's own handler of the end, connected first, has run
    return finished[0]


def _ink(image, xs, ys) -> int:
    """Pixels of text or lines (darker than the chart's ground) in a region of a grabbed chart."""
    ground = image.pixelColor(image.width() - 2, image.height() - 2).lightness()
    return sum(1 for x in xs for y in ys if image.pixelColor(x, y).lightness() < ground - 60)


def test_a_run_stopped_by_its_time_limit_is_offered_to_resume_and_its_charts_keep_the_whole_run(qtbot, tmp_path):
    """Item 2: a run that --max-minutes stopped exits with status 0, so the window said
    "Finished …" and left Resume unticked, while the trainer's last line read "to go on: …
    --resume". Now the status line says the run stopped at its time limit, with the step it
    reached, and Resume is ticked, as after Cancel.
    Item 4: its validation chart, one evaluation, read "230" at the left and "step 231" at the
    right of its x axis; it says "step 230" under the point. After Resume the loss chart began at
    the resumed step (the points from the progress bar before it were dropped); it shows the whole
    run, as the validation chart does from log.jsonl."""
    data = _folder(tmp_path / "Smiling", junk_no=0)
    # 1.8 s of training in each of the two runs (2.4 before): the progress line about 1 s in (at
    # most one a second) and the last one are the loss chart's points before the stop; losses read
    # every 10 steps, so that the line 1 s in has them on a machine 5x slower than this one
    d = _dialog(qtbot, tmp_path, data, steps=2000, extra="--eval-every 100000 --max-minutes 0.03 --log-every 10")
    d.resize(980, 680)
    d.show()
    assert _run(qtbot, d) == 0, d.log_view.toPlainText()[-1500:]
    log = d.log_view.toPlainText()
    assert "time budget at step" in log and ": to go on: " in log, log[-1500:]
    text = d.phase_label.text()
    stopped = int(re.search(r"time budget at step (\d+) ", log)[1])
    assert text.startswith(f"Stopped at the 0.03 min time limit at step {stopped:,} of 2,000; "
                           "the run can be continued with Resume"), text
    assert d.resume_check.isChecked() and "--resume" in d.arguments()
    assert d.out_edit.text() == str(tmp_path / "run")
    assert (d.progress.value(), d.progress.maximum()) == (stopped, 2000)   # not a full bar

    qtbot.waitUntil(lambda: [r["step"] for r in d._val] == [stopped], timeout=10_000)
    before = sorted(d._losses)
    assert before[0] < stopped, before   # the progress bar's points of the run
    d.val_plot.grab().save(str(tmp_path / "one_point.png"))
    image = d.val_plot.grab().toImage()
    w, h = image.width(), image.height()
    strip = range(h - 16, h - 2)   # the x axis's labels
    assert _ink(image, range(0, w // 3), strip) == 0 and _ink(image, range(2 * w // 3, w - 4), strip) == 0, \
        "a one-point chart's x axis reads as a range of steps"
    assert _ink(image, range(w // 3, 2 * w // 3), strip) > 20

    assert _run(qtbot, d) == 0, d.log_view.toPlainText()[-1500:]   # Resume ticked: the same run goes on
    qtbot.waitUntil(lambda: len(d._val) == 2, timeout=10_000)
    assert d._val[0]["step"] == stopped and d._val[1]["step"] > stopped
    d.grab().save(str(tmp_path / "resumed.png"))
    losses = [x for x, _ in d.loss_plot.series["reconstruction ×10"][1]]
    assert losses[0] == before[0] and losses[-1] > stopped, (losses, stopped)
    assert [x for x, _ in d.val_plot.series["swap accuracy"][1]] == [r["step"] for r in d._val]


def test_a_chart_label_of_a_small_value_is_not_cut(qtbot):
    """Item 4: the y axis's labels had 40 px: "0.00786" (a validation chart's PSNR/100 or a small
    loss) showed as "00786", its start cut off at the chart's left edge."""
    from fader_desktop.training_dialog import CurvePlot
    from PySide6.QtGui import QColor
    plot = CurvePlot("Training losses")
    qtbot.addWidget(plot)
    plot.resize(320, 160)
    plot.set_series("latent discriminator", QColor(240, 160, 60), [(1, 0.00786), (2, 0.00712)])
    image = plot.grab().toImage()
    left = min(x for x in range(image.width()) if _ink(image, [x], range(30, image.height() - 20)))
    assert left >= 3, f"the labels start at x = {left}: cut at the chart's edge"


def test_the_init_model_is_called_the_open_model_only_where_it_is(qtbot, tmp_path):
    """Item 3: the status line turned the trainer's "the --init model" into "the open model"
    whatever model it was: one Options named with --init (the open model another), or the model a
    resumed run had started from ("Resume: the data lacks 'Male' and 'Hair', which the open model …
    labelled"), which may be gone and is no longer open."""
    from conftest import make_tiny_model
    data = _folder(tmp_path / "Smiling", junk_no=0)
    start = make_tiny_model(tmp_path / "start.fader")                    # 32 px: Smiling, Male, Hair
    other = make_tiny_model(tmp_path / "other.fader", img_size=64, seed=1)
    # --init in Options, Size 64 px: the trainer refuses the size of that model, which is not the open one
    d = _dialog(qtbot, tmp_path, data, extra=f"--eval-every 2 --init {start}", model=other)
    d.size_combo.setCurrentIndex(d.size_combo.findData(64))
    assert _run(qtbot, d) == 2
    text = d.phase_label.text()
    assert text.startswith("Training stopped: Size 64 px differs from the --init model's 32"), text
    assert text.endswith("choose Size 32 px") and "open model" not in text, text

    # a run fine-tuned from the open model (the box), its other attributes labelled by that model's
    # classifier; then their labels and the model are gone, and another model is open
    d = _dialog(qtbot, tmp_path, data, steps=2, extra="--eval-every 2", model=start)
    d.finetune_check.setChecked(True)
    assert _run(qtbot, d) == 0, d.log_view.toPlainText()[-1500:]
    (tmp_path / "run" / "pseudo_labels.txt").unlink()
    start.rename(tmp_path / "moved.fader")
    d.set_current_model(str(other))
    d.resume_check.setChecked(True)
    assert _run(qtbot, d) == 2
    text = d.phase_label.text()
    assert text.startswith("Training stopped: Resume: the data lacks 'Male' and 'Hair', which the model the run "
                           f"started from ({start}) labelled, and neither it nor "), text
    assert "open model" not in text


@pytest.mark.usefixtures("one_torch_thread")
def test_a_runs_model_is_named_as_the_built_in_one(tmp_path, capsys):
    """Item 5: a run's model was named "five64 (Smiling, Male, Young, Eyeglasses, Mouth_Slightly_Open,
    64px)" beside the built-in "Fader Desktop default (128 px, 5 attributes)", and the window's
    model label cut it short. Now "run (32 px, Smiling, Male)", or with more than 3 attributes
    "run (32 px, 4 attributes)"; the attribute names as given (--set takes them)."""
    from core.model_file import load_model, read_model_header
    root = tmp_path / "table"
    names = [f"{i}.png" for i in range(24)]
    noise_images(root / "imgs", names, seed=3)
    rows = [f"imgs/{n},{i % 2},{i // 12},{(i // 2) % 2},{(i // 3) % 2}" for i, n in enumerate(names)]
    (root / "labels.csv").write_text("file,Smiling,Male,Mouth_Slightly_Open,Eyeglasses\n" + "\n".join(rows) + "\n")
    common = ["--data", str(root / "labels.csv"), "--steps", "2", "--eval-every", "2",
              "--cache-dir", str(tmp_path / "c"), *TINY]
    assert cli.main([*common, "--out", str(tmp_path / "four")]) == 0, capsys.readouterr().err
    assert load_model(tmp_path / "four" / "model.fader").name == "four (32 px, 4 attributes)"
    assert cli.main([*common, "--out", str(tmp_path / "two"), "--attr", "Smiling,Mouth_Slightly_Open"]) == 0, \
        capsys.readouterr().err
    assert read_model_header(tmp_path / "two" / "model.fader")[0]["name"] == "two (32 px, Smiling, Mouth_Slightly_Open)"
    built_in = Path(__file__).resolve().parents[1] / "resources" / "models" / "default.fader"
    assert read_model_header(built_in)[0]["name"] == "Fader Desktop default (128 px, 5 attributes)"
