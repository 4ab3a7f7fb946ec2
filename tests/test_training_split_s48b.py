"""Review of the split by value (s48b): a continued model was re-measured on other images than its
validation images (the evaluation took its recipe's seed, not the seed its split was drawn with);
--val-size 100 on 40 images trained on 2; the minimum of one validation image per value held out
half of the data; the classifier's retraining drew its split before the unreadable images were
known; --write-val-list into a missing folder ended the whole measurement with a traceback."""
from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from tests.conftest import TINY_TRAIN, make_tiny_model, value_folders
from training import cli, evaluation
from training.classifier import main as classifier_main
from training.datasets import open_dataset, split_dataset

TINY = [*TINY_TRAIN, "--batch-size", "8"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _per_value(ds, idx) -> list:
    return np.bincount(ds.labels[idx, 0], minlength=ds.attributes[0].n).tolist()


def test_a_continued_model_is_measured_on_its_own_validationnoise_images(tmp_path, capsys):
    """Item 1: a run with --seed 3 continued without --seed splits with seed 0 while its recipe (taken
    from the model) records seed 3; the evaluation took that seed and measured other images than the
    continuation's validation images. The images measured are now its val_files.txt."""
    data = value_folders(tmp_path / "Smiling", {"no": 20, "yes": 20})
    cache = ["--cache-dir", str(tmp_path / "cache")]
    first, more = tmp_path / "first", tmp_path / "more"
    assert cli.main(["--data", str(data), "--out", str(first), "--steps", "2", "--eval-every", "2",
                     "--seed", "3", *cache, *TINY]) == 0, capsys.readouterr().err
    # (a continuation keeps the model's split seed and val size unless given, s48c: --val-size here)
    assert cli.main(["--data", str(data), "--continue", str(first / "model.fader"), "--out", str(more),
                     "--steps", "4", "--eval-every", "2", "--val-size", "6", *cache, *TINY]) == 0, capsys.readouterr().err
    val_files = (more / "val_files.txt").read_text().split()
    # the premise: the continuation drew another split than the first run's
    assert sorted(val_files) != sorted((first / "val_files.txt").read_text().split())
    capsys.readouterr()
    assert evaluation.main(["--model", str(more / "model.fader"), "--data", str(data), "--device", "cpu", *cache,
                            "--write-val-list", str(tmp_path / "measured.txt")]) == 0, capsys.readouterr().err
    measured = (tmp_path / "measured.txt").read_text().split()
    assert sorted(measured) == sorted(val_files)
    out, err = capsys.readouterr()
    assert "warning" not in err, err
    assert "as the model's training drew it" in json.loads(out)["split"]


def test_a_run_resumed_without_its_list_draws_its_split_with_its_own_seed(tmp_path, capsys):
    """Item 1, the resumed run: a run split with --seed 3 and --val-size 4, resumed without its
    val_files.txt and without those options, drew its split with seed 0 and the default share: its
    best-model selection compared other images. It draws it as its checkpoint records it. (10 values
    of 3 images: which values are held out depends on the seed, and the split's line shows them.)"""
    data = value_folders(tmp_path / "Hair", {f"h{i}": 3 for i in range(10)})
    run = tmp_path / "run"
    common = ["--data", str(data), "--out", str(run), "--eval-every", "2", "--cache-dir", str(tmp_path / "cache"), *TINY]
    split_line = re.compile(r"fader-train: \d+ train / \d+ validation images; validation: .*\n")
    assert cli.main([*common, "--steps", "2", "--seed", "3", "--val-size", "4"]) == 0
    first = split_line.search(capsys.readouterr().err).group()
    assert first.startswith("fader-train: 24 train / 6 validation images; validation: Hair h0 0, h1 1, "), first
    (run / "val_files.txt").unlink()   # as deleted, or a run older than the list
    assert cli.main([*common, "--steps", "4", "--resume"]) == 0
    err = capsys.readouterr().err
    assert split_line.search(err).group() == first, err


def test_a_val_size_that_leaves_too_few_images_to_train_on_is_refused(tmp_path, capsys):
    """Item 2: 20 'yes' and 20 'no' with --val-size 100 held out 38 and trained on 2 (the hold-out by
    hash refused it: '1 train, 39 validation'). It is refused, before preprocessing, with the
    largest --val-size the data allow; of usable images once they are known."""
    cache = tmp_path / "cache"
    data = value_folders(tmp_path / "Smiling", {"no": 20, "yes": 20})
    code = cli.main(["--data", str(data), "--out", str(tmp_path / "run"), "--val-size", "100", "--steps", "2",
                     "--cache-dir", str(cache), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "--val-size 100 leaves too few images to train on: of the 40 images at least 2 must " \
                          "train (one of each value of Smiling); give --val-size 38 or less" in err, err
    assert not (tmp_path / "run").exists() and not cache.exists(), "refused before preprocessing"
    # three values keep a training image each: 30 images allow 27
    hair = value_folders(tmp_path / "Hair", {"black": 10, "blond": 10, "red": 10})
    code = cli.main(["--data", str(hair), "--out", str(tmp_path / "run"), "--val-size", "28", "--steps", "2",
                     "--cache-dir", str(cache), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "of the 30 images at least 3 must train (one of each value of Hair); " \
                          "give --val-size 27 or less" in err, err
    assert not cache.exists()
    # 33 images of which 10 unreadable: --val-size 22 leaves 1 of the 23 usable ones
    smiling = value_folders(tmp_path / "b" / "Smiling", {"no": 13, "yes": 20}, junk={"no": 10})
    code = cli.main(["--data", str(smiling), "--out", str(tmp_path / "run"), "--val-size", "22", "--steps", "2",
                     "--cache-dir", str(cache), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "of the 23 usable images at least 2 must train (one of each value of Smiling); " \
                          "give --val-size 21 or less; skipped: " in err, err
    assert not (tmp_path / "run").exists()


def test_the_minimum_of_one_validation_image_per_value_holds_out_little(tmp_path, capsys):
    """Item 3: an attribute of 30 values of 2 images held out 30 of the 60 (its share: 6), one of 10
    values of 3 images 10 of 30 (its share: 3). A value is given a validation image beyond its share
    only where it has 3 images or more (it keeps 2 to train on), and at most 2 over the share in all
    here. Where every value has a single image, the error says that nothing can be held out."""
    pairs = open_dataset(value_folders(tmp_path / "Pairs", {f"v{i:02d}": 2 for i in range(30)}))
    threes = open_dataset(value_folders(tmp_path / "Threes", {f"v{i:02d}": 3 for i in range(10)}))
    for seed in range(5):
        train, val = split_dataset(pairs, seed=seed)
        assert (len(train), len(val)) == (54, 6), seed
        train, val = split_dataset(threes, seed=seed)
        assert (len(train), len(val)) == (25, 5), seed
        assert max(_per_value(threes, val)) == 1 and min(_per_value(threes, train)) == 2
    # the values given one beyond their share change with the seed (not always the first names)
    held = {tuple(np.flatnonzero(_per_value(threes, split_dataset(threes, seed=s)[1]))) for s in range(5)}
    assert len(held) > 1, held
    ones = value_folders(tmp_path / "Hair", {f"h{i:02d}": 1 for i in range(12)})
    code = cli.main(["--data", str(ones), "--out", str(tmp_path / "run"), "--steps", "2",
                     "--cache-dir", str(tmp_path / "cache"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "no image can be held out for validation without taking the only training image of a " \
                         "value (each of the 12 values of Hair has a single image); add more images of those " \
                         "values" in err, err


def test_the_classifier_retraining_holds_out_a_rare_value_among_the_usablenoise_images(tmp_path, capsys):
    """Item 4: `python -m training.classifier` drew its split over all images, then dropped the
    unreadable ones: 4 'yes' among 34, the one 'yes' held out unreadable, left 'yes' without a
    validation image (31 training and 2 validation images). It is drawn among the usable ones."""
    data = value_folders(tmp_path / "Bangs", {"no": 30, "yes": 4})
    # the 'yes' image the hold-out of all 34 images takes (the first 'yes' by hash, seed 0) is unreadable
    keys = sorted(p.relative_to(data).as_posix() for p in (data / "yes").iterdir())
    taken = min(keys, key=lambda k: hashlib.sha1(f"0:{k}".encode()).hexdigest())
    (data / taken).write_bytes(b"not an image")
    model = make_tiny_model(tmp_path / "in.fader", attrs=(("Bangs", ("no", "yes"), (0.0, 1.0)),))
    code = classifier_main(["--model", str(model), "--data", str(data), "--epochs", "1", "--batch-size", "8",
                            "--threads", "1", "--out", str(tmp_path / "out.fader")])
    err = capsys.readouterr().err
    assert code == 0, err
    # 33 usable: 3 validation images, one of them 'yes' (30 'no' give 2, 3 'yes' keep 2 to train on)
    assert re.search(r"30 training and 3 validation images", err), err


@pytest.mark.parametrize("option", ["--write-val-list", "--out"])
def test_an_output_file_that_cannot_be_written_is_refused_before_measuring(tmp_path, capsys, option):
    """Item 7: --write-val-list (and --out) into a folder that does not exist measured the whole model,
    then ended with an OSError traceback. It is one line, before any image is read."""
    data = value_folders(tmp_path / "Smiling", {"no": 4, "yes": 4})
    model = make_tiny_model(tmp_path / "m.fader", attrs=(("Smiling", ("no", "yes"), (-1.0, 2.0)),))
    cache = tmp_path / "cache"
    target = tmp_path / "missing" / "list.txt"
    code = evaluation.main(["--model", str(model), "--data", str(data), "--device", "cpu", "--cache-dir", str(cache),
                            option, str(target)])
    out, err = capsys.readouterr()
    assert code == 2 and err == f"python -m training.evaluation: error: {option} {target}: cannot write it " \
                                f"(there is no folder {target.parent})\n", err
    assert not out and not cache.exists(), "refused before preprocessing"
