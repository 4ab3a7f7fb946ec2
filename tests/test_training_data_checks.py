"""Careless data layouts that were read wrongly without a word: a folder of attribute folders, CSV
label typos, duplicate rows, tables without a header or with another separator, "without …" value
folders sorted after "with …", symlinked batch folders ignored."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.errors import FaderError
from training.datasets import open_dataset


def _img(path: Path, seed=0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8))
    return path


def _values(root: Path, values, n=3) -> Path:
    for vi, v in enumerate(values):
        for i in range(n):
            _img(root / v / f"{i}.png", seed=vi * 10 + i)
    return root


def _error(*args) -> str:
    with pytest.raises(FaderError) as info:
        open_dataset(*args)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def _table(tmp_path: Path, text: str, n=4, name="labels.csv") -> Path:
    for i in range(n):
        _img(tmp_path / f"{i}.png", seed=i)
    (tmp_path / name).write_text(text)
    return tmp_path / name


# -- a folder of attribute folders -------------------------------------------------------------

@pytest.mark.parametrize("attrs", [("Eyeglasses", "Smiling"), ("Eyeglasses",), ("No_Beard", "Smiling")])
def test_a_folder_of_attribute_folders_is_refused_with_the_fix(tmp_path, attrs):
    """multi/Eyeglasses/{no,yes} + multi/Smiling/{no,yes} was one attribute 'multi' whose values
    were Eyeglasses and Smiling, yes and no photos mixed; one attribute folder said "found 1"."""
    multi = tmp_path / "multi"
    for a in attrs:
        _values(multi / a, ("no", "yes"))
    msg = _error(multi)
    assert msg.startswith(f"{multi}: ") and "one attribute folder per run" in msg
    assert f"--data {multi / attrs[0]}" in msg and f"{attrs[0]}/{{no,yes}}" in msg
    assert "found 1" not in msg
    # the suggested folder works
    assert open_dataset(multi / attrs[0]).attributes[0].values == ("no", "yes")


def test_a_folder_of_unlabeled_images_says_how_to_give_labels(tmp_path):
    """A folder of photos with no value subfolders said only "found 0: []": the message now counts the
    loose images and says both ways to label them, and each way it names works."""
    flat = tmp_path / "Smiling"
    for i in range(4):
        _img(flat / f"{i}.png", seed=i)
    msg = _error(flat)
    assert "4 images directly in it" in msg
    assert str(flat / "yes") in msg and str(flat / "no") in msg and "file,Smiling" in msg
    table = flat / "labels.csv"
    table.write_text("file,Smiling\n" + "".join(f"{i}.png,{i % 2}\n" for i in range(4)))
    assert open_dataset(table).attributes[0].name == "Smiling"
    table.unlink()
    for i in range(4):
        (flat / ("yes" if i % 2 else "no")).mkdir(exist_ok=True)
        (flat / f"{i}.png").rename(flat / ("yes" if i % 2 else "no") / f"{i}.png")
    assert open_dataset(flat).attributes[0].values == ("no", "yes")


def test_batches_inside_value_folders_are_still_values(tmp_path):
    """DATA/<value>/<batch>/…: searched recursively as before, whether or not a value also holds
    images itself."""
    data = tmp_path / "Smiling"
    for v in ("no", "yes"):
        _values(data / v, ("batch1", "batch2"), n=2)
    ds = open_dataset(data)
    assert ds.attributes[0].values == ("no", "yes") and len(ds.items) == 8
    assert all(it.labels == ((1,) if "/yes/" in it.path else (0,)) for it in ds.items)
    _img(tmp_path / "Hair" / "black" / "a.png")
    _values(tmp_path / "Hair" / "black", ("b1", "b2"))
    _values(tmp_path / "Hair" / "blond", ("b1", "b2"))
    assert open_dataset(tmp_path / "Hair").attributes[0].values == ("black", "blond")


# -- value order --------------------------------------------------------------------------------

@pytest.mark.parametrize("neg,pos", [("without_glasses", "with_glasses"), ("without glasses", "with glasses"),
                                     ("No glasses", "glasses"), ("not smiling", "laughing"),
                                     ("Without-Beard", "beard"), ("non smoker", "heavy smoker")])
def test_a_without_folder_is_value_0(tmp_path, neg, pos):
    """'without_glasses' sorted after 'with_glasses': alpha=1 removed the glasses."""
    ds = open_dataset(_values(tmp_path / "Eyeglasses", (pos, neg)))
    assert ds.attributes[0].values == (neg, pos)
    assert all(it.labels == ((0,) if f"/{neg}/" in it.path else (1,)) for it in ds.items)


@pytest.mark.parametrize("values", [("nose", "ears"), ("normal", "big"), ("nonsmoker", "smoker")])
def test_words_starting_with_no_are_not_negative(tmp_path, values):
    assert open_dataset(_values(tmp_path / "Part", values)).attributes[0].values == tuple(sorted(values))


# -- symlinked folders --------------------------------------------------------------------------

def test_symlinked_folders_are_followed_once_without_looping(tmp_path):
    """A value folder's symlinked batch was skipped (1 image instead of 21), symlinked files not."""
    elsewhere = tmp_path / "elsewhere"
    for i in range(20):
        _img(elsewhere / f"{i}.png", seed=i)
    data = _values(tmp_path / "Smiling", ("no", "yes"), n=1)
    os.symlink(elsewhere, data / "no" / "batch1")
    os.symlink(elsewhere, data / "no" / "batch1_again")  # the same real folder: counted once
    os.symlink(data / "no", data / "no" / "loop")  # the folder itself: no endless walk
    os.symlink(data, data / "no" / "up")  # an ancestor: nor the yes images counted as no
    os.symlink(data / "no", elsewhere / "back")  # a cycle through the link
    ds = open_dataset(data)
    assert ds.labels[:, 0].tolist().count(0) == 21 and ds.labels[:, 0].tolist().count(1) == 1
    assert "no: 21" in ds.description


# -- CSV tables ---------------------------------------------------------------------------------

def test_csv_empty_label_is_an_error_naming_the_line(tmp_path):
    table = _table(tmp_path, "file,Hair\n0.png,black\n\n1.png,blond\n2.png,\n3.png,black\n")
    assert _error(table) == f"{table}: column 'Hair' line 5 is empty; every image needs a value"


def test_csv_labels_in_two_letter_cases_are_an_error(tmp_path):
    table = _table(tmp_path, "file,Smiling\n0.png,no\n1.png,yes\n2.png,Yes\n3.png,no\n")
    msg = _error(table)
    assert msg.startswith(f"{table}: column 'Smiling' has 'Yes' (line 4) and 'yes' (line 3)")
    assert "letter case" in msg


@pytest.mark.parametrize("second", ["0.png,0", "a/../0.png,1", "./0.png,0"])
def test_csv_image_listed_twice_is_an_error_naming_both_lines(tmp_path, second):
    (tmp_path / "a").mkdir()
    table = _table(tmp_path, f"file,Smiling\n0.png,0\n1.png,1\n2.png,0\n{second}\n3.png,1\n")
    name = second.split(",")[0]
    assert _error(table) == f"{table}: {name!r} is listed twice (lines 2 and 5); list each image once"


def test_csv_without_header_row_says_so(tmp_path):
    """The first row became the header: an attribute named '1', one image dropped."""
    table = _table(tmp_path, "0.png,1,no\n1.png,0,yes\n2.png,1,no\n")
    msg = _error(table)
    assert msg == (f"{table}: no header row (line 1 lists the image '0.png'); "
                   "add a first line 'file,attr1,attr2' naming the attributes")


@pytest.mark.parametrize("sep,shown", [(";", "';'"), ("\t", "tabs")])
def test_csv_with_another_separator_says_comma(tmp_path, sep, shown):
    rows = ["file", "Smiling"], ["0.png", "0"], ["1.png", "1"]
    table = _table(tmp_path, "\n".join(sep.join(r) for r in rows) + "\n")
    msg = _error(table)
    assert msg.startswith(f"{table}: the table must be comma-separated") and msg.endswith(f"uses {shown})")


def test_a_good_table_still_reads(tmp_path):
    table = _table(tmp_path, "file,Smiling,Glasses\n0.png,0,without glasses\n1.png,1,glasses\n"
                             "2.png,0,glasses\n3.png,1,without glasses\n")
    ds = open_dataset(table)
    assert ds.attributes[1].values == ("without glasses", "glasses")
    assert ds.labels.tolist() == [[0, 0], [1, 1], [0, 1], [1, 0]]


def test_data_a_model_file_cannot_hold_is_refused_before_training(tmp_path):
    """A column of 300 labels trained for hours into a model that every loader then refused."""
    rows = "".join(f"{i}.png,person{i:03d}\n" for i in range(300))
    table = _table(tmp_path, "file,Person\n" + rows, n=300)
    msg = _error(table)
    assert msg.startswith(f"{table}: attribute 'Person' has 300 values, more than the limit of 256")
    assert "a model file holds at most" in msg
