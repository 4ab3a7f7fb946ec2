"""Training, round 50b: the evaluation classifier's steps by data size. fader-train trained it for
2,000 steps whatever the data: on a user's 40-image folder (36 training images at batch 32) about
1,780 passes over the same images, minutes of CPU and a classifier that learnt them by heart. Without
--classifier-steps a run now trains it for 100 epochs, at most 2,000 steps, says the number and how
it was chosen, and records both in the model; a given number is used as given, a resumed run keeps
the number it started with, and the training window's Classifier field starts at "Automatic"."""
from __future__ import annotations

import math
import shlex
from pathlib import Path

import pytest
from conftest import noise_images

from core.model_file import load_model
from training import cli

pytest.importorskip("pytestqt")

# a tiny 32 px run; no --classifier-steps (what is tested), a classifier a few maps wide
TINY = ["--img-size", "32", "--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16",
        "--classifier-max-fm", "32", "--quiet", "--threads", "1", "--workers", "1", "--val-size", "4"]


def _folder(root: Path) -> Path:
    """A user's labeled folder Smiling/{yes,no}: 20 small images in all."""
    noise_images(root / "yes", [f"IMG_{i:04d}.png" for i in range(10)], seed=1)
    noise_images(root / "no", [f"IMG_{i:04d}.png" for i in range(100, 110)], seed=2)
    return root


def _train(tmp_path, capsys, *args, run: str = "run") -> tuple:
    """Run fader-train (as the shell does, through main); (its messages, the run's model's metadata)."""
    run = tmp_path / run
    argv = ["--data", str(tmp_path / "Smiling"), "--out", str(run), "--cache-dir", str(tmp_path / "cache"),
            *TINY, *args]
    code = cli.main(argv)
    said = capsys.readouterr().err
    assert code == 0, said
    return said, load_model(run / "model.fader").meta


def _classifier_line(said: str) -> str:
    return next(x for x in said.splitlines() if "training the evaluation classifier" in x)


@pytest.mark.usefixtures("one_torch_thread")
def test_without_classifier_steps_a_small_folder_trains_the_classifier_100_epochs(tmp_path, capsys):
    """16 training images at batch 8: 200 steps (100 epochs), not 2,000 (1,000 epochs); the run's
    messages say the number and that it was chosen by data size, and the model records both."""
    _folder(tmp_path / "Smiling")
    said, meta = _train(tmp_path, capsys, "--batch-size", "8", "--steps", "2", "--eval-every", "2")
    n_train = meta["training"]["n_train"]
    recipe = meta["training"]["hyper_parameters"]
    expected = math.ceil(100 * n_train / 8)
    assert recipe["batch_size"] == 8 and expected < 2000, (n_train, recipe["batch_size"])
    line = _classifier_line(said)
    assert f"({expected} steps, chosen by data size: 100 epochs of {n_train} training images at batch 8" in line, line
    assert "--classifier-steps N" in line, line
    assert meta["classifier"]["steps"] == expected and meta["classifier"]["steps_chosen"] == "by data size", \
        meta["classifier"]
    assert recipe["classifier_steps"] == expected and recipe["classifier_steps_chosen"] == "by data size", recipe
    # --help says what the default is
    assert "by data size" in " ".join(cli.build_parser().format_help().split())


@pytest.mark.usefixtures("one_torch_thread")
def test_a_given_classifier_steps_is_used_as_given(tmp_path, capsys):
    """--classifier-steps N is the number trained, whatever the data size, and the model's recipe
    says it was given (the card's Recipe: 'classifier steps chosen by --classifier-steps')."""
    _folder(tmp_path / "Smiling")
    said, meta = _train(tmp_path, capsys, "--batch-size", "8", "--steps", "2", "--eval-every", "2",
                        "--classifier-steps", "3")
    line = _classifier_line(said)
    assert "(3 steps)" in line and "data size" not in line, line
    recipe = meta["training"]["hyper_parameters"]
    assert meta["classifier"]["steps"] == 3 and meta["classifier"]["steps_chosen"] == "by --classifier-steps"
    assert recipe["classifier_steps"] == 3 and recipe["classifier_steps_chosen"] == "by --classifier-steps", recipe


@pytest.mark.usefixtures("one_torch_thread")
def test_a_resumed_run_keeps_the_number_of_classifier_steps_it_started_with(tmp_path, capsys):
    """A run started without --classifier-steps and resumed (with another --batch-size, which a
    resumed run ignores) keeps its number: no classifier is trained again, and the model the
    resumed run exports records the number of its start, chosen by data size."""
    _folder(tmp_path / "Smiling")
    _, first = _train(tmp_path, capsys, "--batch-size", "8", "--steps", "2", "--eval-every", "2")
    started = first["training"]["hyper_parameters"]["classifier_steps"]
    assert started == math.ceil(100 * first["training"]["n_train"] / 8), started
    said, meta = _train(tmp_path, capsys, "--batch-size", "4", "--steps", "4", "--eval-every", "2", "--resume")
    assert "training the evaluation classifier" not in said, said
    assert meta["training"]["steps"] == 4, meta["training"]["steps"]
    recipe = meta["training"]["hyper_parameters"]
    assert recipe["classifier_steps"] == started and recipe["classifier_steps_chosen"] == "by data size", recipe
    assert recipe["batch_size"] == 8
    assert meta["classifier"]["steps"] == started


def test_the_training_windows_classifier_field_starts_at_automatic(qtbot, tmp_path):
    """The Classifier field sent the trainer's 2,000 steps; it now starts at 'Automatic (by data
    size)' (what a screen reader reads as its value too), sends no --classifier-steps, and the
    command line shown pastes into a shell as the trainer's default. A number chosen is sent."""
    from PySide6.QtGui import QAccessible
    from fader_desktop.training_dialog import TrainingDialog
    d = TrainingDialog()
    qtbot.addWidget(d)
    d.show()
    d.data_edit.setText(str(tmp_path / "My photos" / "Smiling"))
    d.out_edit.setText(str(tmp_path / "run"))
    spin = d.classifier_spin
    assert spin.isEnabled() and spin.text().startswith("Automatic"), spin.text()
    iface = QAccessible.queryAccessibleInterface(spin)
    assert iface.text(QAccessible.Text.Name) == "Classifier"
    assert iface.text(QAccessible.Text.Value) == "Automatic (by data size)"
    assert "Automatic" in spin.toolTip() and "at most 2,000 steps" in spin.accessibleDescription()
    args = d.arguments()
    assert "--classifier-steps" not in args, args
    # the line the window shows, pasted into a shell: the same arguments, the trainer's default
    pasted = shlex.split(shlex.join(args))
    parsed = cli.build_parser().parse_args(pasted)
    assert parsed.classifier_steps is None and parsed.data == [str(tmp_path / "My photos" / "Smiling")]
    spin.stepUp()
    assert spin.text() == "100 steps"
    args = d.arguments()
    assert args[args.index("--classifier-steps") + 1] == "100"
    spin.setValue(spin.minimum())
    assert "--classifier-steps" not in d.arguments()


def _recipe_text(path: Path) -> str:
    """The model card's Recipe paragraph of the model at `path`, as plain text."""
    import re
    from core.model_file import model_summary
    from fader_desktop.dialogs import model_card_html
    html = model_card_html(model_summary(load_model(path)), path)
    recipe = html[html.index("<b>Recipe</b>"):]
    return re.sub(r"<[^>]+>", "", recipe[:recipe.index("</p>")])


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_that_trains_no_classifier_records_the_steps_of_the_classifier_it_takes(tmp_path, capsys):
    """A --continue run (or --classifier M) trains no classifier: it recorded the number it would
    have chosen by data size (200 here) over the continued model's own 3, which the card's Recipe
    then showed. It keeps the 3 of the model whose classifier it takes; a model that records none
    gives 0, 'none trained', and the Recipe says so."""
    from core.model_file import save_model
    _folder(tmp_path / "Smiling")
    small = ["--batch-size", "8", "--eval-every", "2"]
    _train(tmp_path, capsys, *small, "--steps", "2", "--classifier-steps", "3", run="first")
    first = tmp_path / "first" / "model.fader"
    said, meta = _train(tmp_path, capsys, *small, "--steps", "4", "--continue", str(first), run="continued")
    assert "training the evaluation classifier" not in said, said
    recipe = meta["training"]["hyper_parameters"]
    assert recipe["classifier_steps"] == 3 and recipe["classifier_steps_chosen"] == "by --classifier-steps", recipe
    text = _recipe_text(tmp_path / "continued" / "model.fader")
    assert "classifier steps 3 (by --classifier-steps)" in text and "data size" not in text, text
    # --classifier M: M's record, or none where M records none
    _, meta = _train(tmp_path, capsys, *small, "--steps", "2", "--classifier", str(first), run="given")
    recipe = meta["training"]["hyper_parameters"]
    assert recipe["classifier_steps"] == 3 and recipe["classifier_steps_chosen"] == "by --classifier-steps", recipe
    bare = load_model(first)
    del bare.meta["training"]["hyper_parameters"]
    save_model(bare, tmp_path / "bare.fader")
    _, meta = _train(tmp_path, capsys, *small, "--steps", "2", "--classifier", str(tmp_path / "bare.fader"),
                     run="given_bare")
    recipe = meta["training"]["hyper_parameters"]
    assert recipe["classifier_steps"] == 0, recipe
    assert recipe["classifier_steps_chosen"] == f"none trained: the classifier of --classifier {tmp_path / 'bare.fader'}"
    text = _recipe_text(tmp_path / "given_bare" / "model.fader")
    assert f"classifier steps 0 (none trained: the classifier of --classifier {tmp_path / 'bare.fader'})" in text, text
    # a --classifier-steps given to such a run is not used, and said so (it went without a word)
    said, _ = _train(tmp_path, capsys, *small, "--steps", "2", "--classifier", str(first), "--classifier-steps", "7",
                     run="given_steps")
    assert f"--classifier-steps 7 is not used: the run takes the classifier of --classifier {first}" in said, said


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_of_before_the_choice_was_recorded_does_not_say_its_steps_were_given(tmp_path, capsys):
    """A checkpoint saved before the number was chosen by data size lacks classifier_steps_chosen;
    its 2,000 were the default, not given. Its --export-last and its resumed run's model recorded
    (and the card's Recipe said) 'by --classifier-steps'; now how is not known, and the Recipe
    says the number alone."""
    from training.trainer import CHECKPOINT_NAME, TrainConfig, atomic_torch_save, load_checkpoint
    assert TrainConfig.from_recorded({"classifier_steps": 2000}).classifier_steps_chosen == ""
    _folder(tmp_path / "Smiling")
    _train(tmp_path, capsys, "--batch-size", "8", "--steps", "2", "--eval-every", "2", "--classifier-steps", "3")
    ckpt = tmp_path / "run" / CHECKPOINT_NAME
    ck = load_checkpoint(ckpt)
    ck["config"]["classifier_steps"] = 2000   # as a run of before trained it
    del ck["config"]["classifier_steps_chosen"]
    atomic_torch_save(ck, ckpt)
    assert cli.main(["--export-last", "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    last = tmp_path / "run" / "model_last.fader"
    recipe = load_model(last).meta["training"]["hyper_parameters"]
    assert recipe["classifier_steps"] == 2000 and recipe["classifier_steps_chosen"] == "", recipe
    text = _recipe_text(last)
    assert "classifier steps 2000 ·" in text and "--classifier-steps" not in text and "chosen" not in text, text
    _, meta = _train(tmp_path, capsys, "--batch-size", "8", "--steps", "4", "--eval-every", "2", "--resume")
    recipe = meta["training"]["hyper_parameters"]
    assert recipe["classifier_steps"] == 2000 and recipe["classifier_steps_chosen"] == "", recipe
