"""QA of fader-train (s49): the data's counts a model records are of the images used; a fine-tune's
pseudo_labels.txt lists the images it labelled and used (and a resume reads it back to the same
labels); a fine-tune does not measure the attributes its starting model labelled; the line that
says how to go on names the command a user can type in the packaged app."""
from __future__ import annotations

import io
import json
import os
import shlex
import sys

from contextlib import redirect_stderr

import numpy as np
import pytest

from conftest import TINY_TRAIN, make_tiny_model, packaged_executable, value_folders
from training import cli

QUIET = lambda s: None  # noqa: E731


def _train(args, capsys) -> tuple:
    code = cli.main([*TINY_TRAIN, "--batch-size", "4", *args])
    return code, capsys.readouterr().err


@pytest.mark.usefixtures("one_torch_thread")
def test_the_recorded_counts_are_of_the_images_trained_and_validated_on(tmp_path, capsys):
    """45 files, 3 of them unreadable: the model recorded 'no: 22, yes: 23' as its data."""
    from core.model_file import read_model_header
    data = value_folders(tmp_path / "Smiling", {"no": 22, "yes": 23}, junk={"yes": 3})
    out = tmp_path / "run"
    code, err = _train(["--data", str(data), "--out", str(out), "--steps", "2", "--eval-every", "2",
                        "--cache-dir", str(tmp_path / "c")], capsys)
    assert code == 0, err
    meta = read_model_header(out / "model.fader")[0]
    tr = meta["training"]
    assert tr["n_train"] + tr["n_val"] == 42 and sum(tr["skipped"].values()) == 3
    assert tr["data"] == f"labeled folders {data} (no: 22, yes: 20)"
    assert meta["description"].endswith("(no: 22, yes: 20)")


@pytest.fixture(scope="module")
def fine_tune(tmp_path_factory):
    """A fine-tune of a tiny Smiling/Male/Hair model on a Smiling folder with 2 unreadable files
    (Male and Hair labelled by the model's classifier), stopped at step 2 of 3: (folder, init
    model, run folder, the first run's stderr, its arguments)."""
    import torch
    root = tmp_path_factory.mktemp("ft")
    init = make_tiny_model(root / "init.fader")
    data = value_folders(root / "Smiling", {"no": 8, "yes": 8}, junk={"no": 1, "yes": 1})
    out = root / "run"
    args = ["--data", str(data), "--out", str(out), "--eval-every", "2", "--ckpt-every", "2",
            "--cache-dir", str(root / "c"), *TINY_TRAIN, "--batch-size", "4"]
    threads = torch.get_num_threads()
    err = io.StringIO()
    try:
        with redirect_stderr(err):
            code = cli.main([*args, "--init", str(init), "--steps", "2"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err.getvalue()
    return data, init, out, err.getvalue(), args


def _load(args, ck, init, run_dir):
    """The run's data as fader-train reads it (its labels included)."""
    a = cli.build_parser().parse_args(args)
    return cli._load_data(a, ck, cli._load_init_model(str(init)) if init else None, run_dir, "cpu", None, True, QUIET)


@pytest.mark.usefixtures("one_torch_thread")
def test_pseudo_labels_list_the_images_used_and_a_resume_gives_them_the_same_labels(fine_tune, tmp_path, capsys):
    from training.trainer import CHECKPOINT_NAME, load_checkpoint
    data, init, out, _, args = fine_tune
    lines = (out / cli.PSEUDO_LABELS).read_text().splitlines()
    assert lines[0] == "file\tMale\tHair"
    listed = [ln.split("\t")[0] for ln in lines[1:]]
    # the last image of each value folder is unreadable: it was given no label
    assert sorted(listed) == sorted(f"{v}/IMG_{k:02d}{i:03d}.png" for k, v in enumerate(("no", "yes")) for i in range(7))
    first = _load([*args, "--init", str(init), "--steps", "2"], None, init, tmp_path / "elsewhere")
    resumed = _load([*args, "--resume", "--steps", "3"], load_checkpoint(out / CHECKPOINT_NAME), None, out)
    used = np.union1d(first.train_idx, first.val_idx)
    assert len(used) == 14 and np.array_equal(used, np.union1d(resumed.train_idx, resumed.val_idx))
    assert [x.name for x in resumed.attrs] == [x.name for x in first.attrs] == ["Smiling", "Male", "Hair"]
    assert np.array_equal(resumed.labels[used], first.labels[used])
    # and the resumed run trains on
    code, err = _train([*args[:-2], "--resume", "--steps", "3"], capsys)
    assert code == 0, err
    assert load_checkpoint(out / CHECKPOINT_NAME)["step"] == 3


def test_a_fine_tune_does_not_measure_the_attributes_its_starting_model_labelled(fine_tune):
    """Male and Hair were labelled by the --init model's classifier, which also measures the
    edits: their swap accuracy was that classifier judging its own labels."""
    from core.model_file import read_model_header
    _, _, out, err, _ = fine_tune
    meta = read_model_header(out / "model.fader")[0]
    val = meta["metrics"]["validation"]
    for key in ("swap_accuracy", "paste_swap_accuracy", "classifier_accuracy", "others_unchanged"):
        assert list(val[key]) == ["Smiling"], (key, val[key])
    assert val["swap_mean"] == val["swap_accuracy"]["Smiling"]
    assert meta["training"]["pseudo_labelled"] == ["Male", "Hair"]   # what the card and `info` say is left out
    assert "of the attributes the data labels" in meta["metrics"]["selection"]
    assert list(meta["classifier"]["val_accuracy"]) == ["Smiling"]
    line = next(ln for ln in err.splitlines() if "| swap " in ln)
    assert "(Smiling=" in line and "; not measured: Male, Hair, labelled by the starting model)" in line
    assert "Male=" not in line and "Hair=" not in line
    assert "classifier validation accuracy Smiling " in err and "not measured on 'Male' and 'Hair', which it labelled" in err
    # the log's figures too (the training window plots them)
    logged = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert all(list(r["val"]["swap_accuracy"]) == ["Smiling"] for r in logged)


def test_the_line_to_go_on_names_the_command_a_user_types_in_the_packaged_app(tmp_path, monkeypatch):
    """The window starts its trainer by the executable's real path (sys.executable): the line
    said `FaderDesktop train …`, which is on no PATH; install.sh's link is `fader-desktop`."""
    exe, bin_dir = packaged_executable(tmp_path, monkeypatch, "train")
    given = ["--data", "my photos", "--out", "run", "--steps", "9"]
    # no command on PATH runs it: its path, which runs from any folder
    assert cli._resume_line(given, None) == shlex.join([str(exe), "train", *given, "--resume"])
    os.symlink(exe, bin_dir / "fader-desktop")   # as install.sh links it
    assert cli._resume_line(given, None) == shlex.join(["fader-desktop", "train", *given, "--resume"])
    # started by a name (typed in a terminal), it keeps that name
    monkeypatch.setattr(sys, "argv", ["FaderDesktop", "train"])
    assert cli._resume_line(given, None).startswith("FaderDesktop train --data 'my photos'")
