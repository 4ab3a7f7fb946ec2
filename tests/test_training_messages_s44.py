"""fader-train messages that printed Python lists ("found 0: []", "unknown attribute(s)
['smiling'] … the table has ['Smiling', 'Male']", "has values ['no', 'yes'] in the model") read as
words, and the parent of an attribute folder (bad_one/Smiling/yes) is told which folder it meant."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from core.attributes import Attribute
from core.errors import FaderError
from training import cli
from training.datasets import open_dataset

from conftest import make_tiny_model


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
    assert "\n" not in msg and "[" not in msg, msg
    return msg


def test_a_folder_without_value_folders_says_found_none(tmp_path):
    (tmp_path / "Smiling").mkdir()
    msg = _error(tmp_path / "Smiling")
    assert "needs at least 2 value subfolders with images (found none)." in msg


def test_a_folder_with_one_value_folder_names_it_quoted(tmp_path):
    data = _values(tmp_path / "Smiling", ("multi",))
    msg = _error(data)
    assert "(found one: 'multi')." in msg
    # a value folder of its own: the hint is still to add the other values
    assert str(data / "yes") in msg and str(data / "no") in msg


def test_the_parent_of_an_attribute_folder_is_told_the_folder_it_meant(tmp_path):
    """bad_one/Smiling/yes said "put images in bad_one/yes and bad_one/no": the user meant Smiling."""
    bad = _values(tmp_path / "bad_one", ("Smiling/yes",))
    msg = _error(bad)
    assert "(found one: 'Smiling')" in msg
    assert f"did you mean {bad / 'Smiling'}?" in msg and f"--data {bad / 'Smiling'}" in msg
    assert str(bad / "Smiling" / "no") in msg and str(bad / "yes") not in msg
    # bad_one/Gender/{female,male}: that folder alone is a whole labeled folder
    other = _values(tmp_path / "other", ("Gender/female", "Gender/male"))
    msg = _error(other)
    assert f"--data {other / 'Gender'}" in msg and "'female' and 'male'" in msg
    assert open_dataset(other / "Gender").attributes[0].values == ("female", "male")
    # one value folder of batches, Smiling/yes/{2019,2020}, is a value, not an attribute
    batches = _values(tmp_path / "Smiling", ("yes/2019", "yes/2020"))
    msg = _error(batches)
    assert "did you mean" not in msg and str(batches / "no") in msg


def test_an_unknown_csv_attribute_reads_as_words(tmp_path):
    for i in range(4):
        _img(tmp_path / f"{i}.png", seed=i)
    (tmp_path / "labels.csv").write_text("file,Smiling,Male\n" + "".join(f"{i}.png,{i % 2},0\n" for i in range(4)))
    msg = _error(tmp_path / "labels.csv", "smiling")
    assert msg.endswith("unknown attribute 'smiling' (did you mean 'Smiling'?) in --attr; "
                        "the table has 'Smiling' and 'Male'"), msg
    msg = _error(tmp_path / "labels.csv", "Smilng,Age")
    assert "unknown attributes 'Smilng' (did you mean 'Smiling'?) and 'Age' in --attr" in msg


def test_resume_messages_read_as_words(tmp_path):
    ck = {"attributes": [Attribute("Smiling", ("no", "yes")).to_dict(), Attribute("Male", ("no", "yes")).to_dict()]}
    with pytest.raises(FaderError) as info:
        cli._ResumedLabels(ck, [Attribute("Glasses", ("no", "yes"))], tmp_path)
    assert str(info.value).startswith("--resume: the run trains 'Smiling' and 'Male', not the data's 'Glasses';")
    with pytest.raises(FaderError) as info:
        cli._ResumedLabels(ck, [Attribute("Smiling", ("grin", "plain"))], tmp_path)
    assert "Smiling has values 'grin' and 'plain' in the data but 'no' and 'yes' in the run" in str(info.value)


def test_init_value_mismatch_reads_as_words(tmp_path, capsys, one_torch_thread):
    model = make_tiny_model(tmp_path / "tiny.fader")
    data = _values(tmp_path / "Smiling", ("grin", "plain"))
    code = cli.main(["--data", str(data), "--init", str(model), "--out", str(tmp_path / "run"), "--steps", "2",
                     "--img-size", "32", "--quiet", "--threads", "1", "--workers", "1",
                     "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 2
    assert ("--init: attribute 'Smiling' has values 'no' and 'yes' in the model but 'grin' and 'plain' "
            "in the data") in err
