"""fader-train and the evaluation take a data attribute spelt as the model's with spaces or hyphens
for its underscores ('Mouth slightly open', as the window's fader names Mouth_Slightly_Open)."""
import json

import pytest

from conftest import TINY_TRAIN, noise_images
from core.model_file import load_model
from training import cli
from training import evaluation


def _table(folder, header: str, rows) -> str:
    names = [f"IMG_{i:02d}.png" for i in range(len(rows))]
    noise_images(folder, names)
    table = folder / "labels.csv"
    table.write_text(header + "\n" + "".join(f"{n},{r}\n" for n, r in zip(names, rows)))
    return str(table)


@pytest.fixture(scope="module")
def mouth_model(tmp_path_factory):
    """A tiny model of Smiling and Mouth_Slightly_Open trained by fader-train on a CSV table."""
    root = tmp_path_factory.mktemp("mouth")
    table = _table(root / "data", "file,Smiling,Mouth_Slightly_Open", [f"{i % 2},{(i // 2) % 2}" for i in range(16)])
    assert cli.main(["--data", table, "--steps", "2", "--out", str(root / "run"), "--val-size", "4", *TINY_TRAIN,
                     "--batch-size", "4", "--cache-dir", str(root / "cache")]) == 0
    return root / "run" / "model.fader"


def test_a_fine_tune_on_a_column_spelt_with_spaces_trains_the_models_attribute(mouth_model, tmp_path, capsys):
    """A column 'Mouth slightly open' became a third attribute beside the model's Mouth_Slightly_Open
    (the model's own left to its classifier's labels), without a word."""
    table = _table(tmp_path / "d", "file,Mouth slightly open", [str(i % 2) for i in range(16)])
    capsys.readouterr()
    code = cli.main(["--data", table, "--init", str(mouth_model), "--out", str(tmp_path / "run"), "--steps", "2",
                     "--val-size", "4", *TINY_TRAIN, "--batch-size", "4", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert [a.name for a in load_model(tmp_path / "run" / "model.fader").attributes] == \
        ["Smiling", "Mouth_Slightly_Open"]
    assert "the data's attribute 'Mouth slightly open' is the model's 'Mouth_Slightly_Open'" in err, err


def test_the_evaluation_measures_a_column_spelt_with_hyphens(mouth_model, tmp_path, capsys):
    table = _table(tmp_path / "d", "file,mouth-slightly-open,Smilling", [f"{i % 2},{i % 2}" for i in range(8)])
    capsys.readouterr()
    rc = evaluation.main(["--model", str(mouth_model), "--data", table, "--cache-dir", str(tmp_path / "c")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out)
    assert res["measured"] == ["Mouth_Slightly_Open"] and res["not_measured"] == ["Smiling"]
    assert res["data_attribute_names"] == {"mouth-slightly-open": "Mouth_Slightly_Open"}
    # a misspelling is still named, not guessed
    assert "the data's attribute 'Smilling' is none of the model's (did you mean 'Smiling'?)" in err, err
