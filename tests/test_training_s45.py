"""Training window and fader-train, round 45: the Classifier field greyed out wherever its value is
not used (fine-tuning a model whose classifier the run takes), Options' `--flag=value` and
abbreviations seen as argparse sees them, and fader-train's signal handlers gone when an in-process
run returns."""
from __future__ import annotations

import signal
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import make_tiny_model
from core.run_files import CHECKPOINT_NAME
from training import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--init-fm", "8", "--max-fm", "16", "--n-layers", "3", "--hid-dim", "16", "--classifier-steps", "2",
        "--quiet", "--threads", "1", "--workers", "1", "--batch-size", "4", "--val-size", "2", "--steps", "2",
        "--eval-every", "1000"]


def _folder(root: Path, values=("no", "yes"), n: int = 4) -> Path:
    """A labeled folder ROOT/<value>/ of small random images."""
    rng = np.random.default_rng(0)
    for v in values:
        (root / v).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / v / f"{i}.png"), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    return root


def _dialog(qtbot, **kw):
    pytest.importorskip("pytestqt")
    from fader_desktop.training_dialog import TrainingDialog
    d = TrainingDialog(**kw)
    qtbot.addWidget(d)
    return d


def _sent(args: list, option: str) -> list:
    """The values of `option` in a fader-train command line, each as argparse reads it."""
    from training.cli import build_parser
    parser = build_parser()
    out = []
    for i, a in enumerate(args):
        name, eq, value = a.partition("=")
        if not name.startswith("--"):
            continue
        names = [n for n in parser._option_string_actions if n == name] or \
            [n for n in parser._option_string_actions if n.startswith(name)]
        if names == [option]:
            out.append(value if eq else args[i + 1])
    return out


# -- 1. the Classifier field while fine-tuning ---------------------------------------------------

def test_the_classifier_field_is_greyed_while_a_fine_tuned_model_brings_its_own(qtbot, tmp_path, tiny_model_path):
    """Fine-tuning a model on its own attributes, the trainer takes the model's classifier and
    trains none: the Classifier field stayed active, as if its steps counted. Greyed out then (its
    note and tooltip say why), and active again where they count: the data add an attribute the
    model's classifier does not know, the model has no classifier, or fine-tuning is unticked."""
    smiling = _folder(tmp_path / "Smiling")
    glasses = _folder(tmp_path / "Eyeglasses")
    no_clf = make_tiny_model(tmp_path / "no_clf.fader", with_classifier=False)
    d = _dialog(qtbot, current_model=str(tiny_model_path))
    spin = d.classifier_spin

    def greyed() -> bool:
        assert d.jobs.wait_idle(10)   # the model and the data are read by a job
        return not spin.isEnabled()
    d.data_edit.setText(str(smiling))
    d.out_edit.setText(str(tmp_path / "run"))
    assert not greyed()
    d.finetune_check.setChecked(True)
    assert greyed()
    assert "open model's classifier" in d.classifier_note.text(), d.classifier_note.text()
    assert "open model's classifier" in spin.toolTip(), spin.toolTip()
    # a new attribute: the trainer trains a classifier of them all, with the field's steps
    d.data_edit.setText(str(glasses))
    assert not greyed()
    spin.setValue(30)
    assert _sent(d.arguments(), "--classifier-steps") == ["30"]
    assert "open model's classifier" not in d.classifier_note.text() + spin.toolTip()
    d.data_edit.setText(str(smiling))
    assert greyed()
    d.attr_edit.setText("Eyeglasses")   # the Attributes field names one the model lacks
    assert not greyed()
    d.attr_edit.setText("")
    assert greyed()
    d.finetune_check.setChecked(False)
    assert not greyed() and "open model's classifier" not in d.classifier_note.text() + spin.toolTip()
    # Options' --init names another model: the same as the box
    d.extra_edit.setText(f"--init={tiny_model_path}")
    assert greyed() and "--init model's classifier" in d.classifier_note.text()
    d.extra_edit.setText("")
    assert not greyed()
    # a model without a classifier: one is trained
    d.finetune_check.setChecked(True)
    assert greyed()
    d.set_current_model(str(no_clf))
    assert not greyed() and _sent(d.arguments(), "--classifier-steps") == ["30"]
    # Options' --resume keeps the run's classifier only where there is a checkpoint to resume (a run
    # stopped before its first one starts again, classifier and all)
    d.finetune_check.setChecked(False)
    d.extra_edit.setText("--resu")
    assert not greyed()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / CHECKPOINT_NAME).write_bytes(b"")
    d.out_edit.setText(str(tmp_path / "run") + "/")
    assert greyed() and "resumed run" in d.classifier_note.text()


# -- 2. Options' --flag=value and abbreviations --------------------------------------------------

def test_options_given_as_flag_equals_value_or_abbreviated_replace_the_forms(qtbot, tmp_path):
    """`--eval-every=5` (and `--eval-ev=5`) in Options was not seen: the dialog sent its own
    `--eval-every 1000` before the user's, both in the command line it shows. Each way argparse
    takes an option now counts as giving it."""
    d = _dialog(qtbot)
    d.data_edit.setText(str(tmp_path / "Smiling"))
    d.out_edit.setText(str(tmp_path / "run"))
    for text in ("--eval-every 5", "--eval-every=5", "--eval-ev 5", "--eval-ev=5", "--batch-size 8 --eval-e=5"):
        d.extra_edit.setText(text)
        assert _sent(d.arguments(), "--eval-every") == ["5"], (text, d.arguments())
    for text in ("--classifier-steps=7", "--classifier-ste=7"):
        d.extra_edit.setText(text)
        assert _sent(d.arguments(), "--classifier-steps") == ["7"], (text, d.arguments())
        assert not d.classifier_spin.isEnabled() and "--classifier-steps 7" in d.classifier_note.text()
    # a path option followed by an option: argparse takes no value there, so neither does the dialog
    # (it sent a cache folder named "--eval-every" and the 5 as a stray argument)
    d.extra_edit.setText("--cache-dir --eval-ev=5")
    args = d.arguments()
    assert not any(a.endswith("/--eval-every=5") or a.endswith("/--eval-ev=5") for a in args), args
    assert _sent(args, "--eval-every") == ["5"], args


# -- 3. signal handlers after an in-process run --------------------------------------------------

def _handlers() -> tuple:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def test_an_in_process_run_leaves_the_signal_handlers_as_it_found_them(tmp_path, tiny_model_path):
    """cli.run() installed the trainer's SIGINT/SIGTERM handlers and left them: in the process that
    called it (a test, the GUI) a later Ctrl-C only set a finished trainer's flag. The same after a
    run that fails once they are installed. A fine-tuning run on the model's own attribute trains
    no classifier (the model's is used: what the training window's greyed field says)."""
    data = _folder(tmp_path / "Smiling")
    before = _handlers()
    said = []
    code = cli.run([*TINY, "--data", str(data), "--init", str(tiny_model_path), "--out", str(tmp_path / "run"),
                    "--cache-dir", str(tmp_path / "cache")], log=said.append)
    assert code == 0, said
    assert _handlers() == before
    assert not any("training the evaluation classifier" in s for s in said), said
    assert any("classifier validation accuracy" in s for s in said), said

    def fail_at_the_end(s):
        said.append(s)
        if "resumable checkpoint" in s:   # the run's last line, said with the trainer's handlers in place
            raise RuntimeError("the caller's log failed")
    with pytest.raises(RuntimeError):
        cli.run([*TINY, "--data", str(data), "--init", str(tiny_model_path), "--out", str(tmp_path / "run2"),
                 "--cache-dir", str(tmp_path / "cache")], log=fail_at_the_end)
    assert _handlers() == before
