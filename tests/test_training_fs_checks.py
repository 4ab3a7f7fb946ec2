"""fader-train refuses bad architecture options and inputs that are not regular files or folders
(a fifo, a dangling symbolic link) before its run folder or its cache is written, naming what is
wrong. No training: every check here comes first."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import make_tiny_model
from training import cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# quick if a check were missed: the classifier and the run take seconds, not minutes
QUICK = ["--img-size", "32", "--steps", "2", "--classifier-steps", "2", "--quiet", "--threads", "1"]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")


def _train(args, capsys) -> tuple:
    code = cli.main([str(x) for x in args])
    return code, capsys.readouterr().err


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "run").exists() and not (tmp_path / "run").is_symlink()
    assert not (tmp_path / "cache").exists()


def _run_args(data, tmp_path) -> list:
    return ["--data", data, *QUICK, "--out", tmp_path / "run", "--cache-dir", tmp_path / "cache"]


@pytest.mark.parametrize("options, expected", [
    (["--classifier-max-fm", "8"], ["invalid evaluation classifier architecture", "max_fm (8)",
                                    "max_fm is --classifier-max-fm 8", "init_fm is its first layer's width"]),
    (["--classifier-max-fm", "4096"], ["invalid evaluation classifier architecture", "max_fm is --classifier-max-fm 4096"]),
    (["--max-fm", "8"], ["init_fm (32) must not exceed max_fm (8)", "init_fm is --init-fm 32 by default",
                         "max_fm is --max-fm 8"]),
    (["--n-skip", "3"], ["n_skip must be in 0..n_layers-1", "n_skip is --n-skip 3", "n_layers is --n-layers 3 by default"]),
    (["--hid-dim", "9000"], ["exceeds the limit", "hid_dim is --hid-dim 9000"]),
])
def test_an_invalid_architecture_option_is_named_before_anything_is_written(labeled_folder, tmp_path, capsys,
                                                                            options, expected):
    code, err = _train([*_run_args(labeled_folder, tmp_path), *options], capsys)
    assert code == 2, err
    assert all(x in err for x in expected), err
    _nothing_written(tmp_path)


def test_after_a_refused_classifier_width_the_same_out_is_free(labeled_folder, tmp_path, capsys):
    args = _run_args(labeled_folder, tmp_path)
    code, err = _train([*args, "--classifier-max-fm", "8"], capsys)
    assert code == 2 and "--classifier-max-fm 8" in err
    # a rerun must not meet "already holds a run": the refused one left no checkpoint
    assert not (tmp_path / "run").exists()


def test_an_n_skip_the_init_model_cannot_take_is_refused_before_the_data_is_read(labeled_folder, tmp_path,
                                                                                capsys):
    model = make_tiny_model(tmp_path / "tiny.fader")   # 3 layers
    code, err = _train([*_run_args(labeled_folder, tmp_path), "--init", model, "--n-skip", "5"], capsys)
    assert code == 2 and "invalid architecture for --init" in err and "n_skip is --n-skip 5" in err, err
    assert "n_layers is the model's, 3" in err
    _nothing_written(tmp_path)


@needs_fifo
def test_a_classifier_that_is_a_fifo_is_refused_up_front(labeled_folder, tmp_path, capsys):
    fifo = _fifo(tmp_path / "clf.fader")
    code, err = _train([*_run_args(labeled_folder, tmp_path), "--classifier", fifo], capsys)
    assert code == 2 and f"--classifier {fifo}: not a regular file" in err, err
    _nothing_written(tmp_path)


def test_a_classifier_for_other_attributes_is_refused_before_the_run_folder(labeled_folder, tmp_path, capsys):
    model = make_tiny_model(tmp_path / "tiny.fader")   # Smiling, Male, Hair; the data: Smiling
    code, err = _train([*_run_args(labeled_folder, tmp_path), "--classifier", model], capsys)
    assert code == 2 and "its classifier predicts" in err, err
    assert not (tmp_path / "run").exists()


@needs_fifo
def test_data_that_is_a_fifo_is_named_as_such(tmp_path, capsys):
    fifo = _fifo(tmp_path / "labels.csv")
    code, err = _train(_run_args(fifo, tmp_path), capsys)
    assert code == 2 and f"{fifo}: not a regular file or folder" in err, err
    _nothing_written(tmp_path)


@needs_fifo
def test_an_exclude_that_is_a_fifo_is_named_as_such(labeled_folder, tmp_path, capsys):
    fifo = _fifo(tmp_path / "held_out")
    code, err = _train([*_run_args(labeled_folder, tmp_path), "--exclude", fifo], capsys)
    assert code == 2 and f"{fifo}: --exclude" in err and "not a regular file or folder" in err, err
    assert "no such file" not in err
    _nothing_written(tmp_path)


def test_an_out_that_is_a_dangling_symlink_is_refused_up_front(labeled_folder, tmp_path, capsys):
    (tmp_path / "run").symlink_to(tmp_path / "gone")
    code, err = _train(_run_args(labeled_folder, tmp_path), capsys)
    assert code == 2 and "a symbolic link to a missing target" in err and "choose another --out" in err, err
    assert "File exists" not in err
    assert (tmp_path / "run").is_symlink() and not (tmp_path / "gone").exists()
    assert not (tmp_path / "cache").exists()
