"""QA review s49b: the evaluation took a model's attribute only where the data spelled it exactly (a
folder `smiling/` for a model's `Smiling` was "labels none"), where fader-train takes it; the model
card named attributes by their identifiers ('Mouth_Slightly_Open') where the faders say 'Mouth
slightly open', and showed a fine-tune's figures of the attributes its starting model labelled
(circular: that model's classifier judged its own labels) as if they were measured."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import make_tiny_model, noise_images, value_folders
from training import evaluation

SMILING_ONLY = (("Smiling", ("no", "yes"), (-1.0, 2.0)),)
CELEBA_LIKE = (("Smiling", ("no", "yes"), (-1.0, 2.0)),
               ("Mouth_Slightly_Open", ("no", "yes"), (-1.0, 2.0)),
               ("Male", ("no", "yes"), (-1.0, 2.0)))


def _evaluate(capsys, *args) -> tuple:
    capsys.readouterr()
    rc = evaluation.main([*args, "--device", "cpu"])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.usefixtures("one_torch_thread")
def test_a_folder_spelled_in_another_letter_case_is_measured_as_the_models_attribute(tmp_path, capsys):
    """A folder `smiling/` for a model's `Smiling` was refused: "the data label none of the model's
    attributes (Smiling); they label smiling". fader-train takes it as the model's Smiling (letter
    case aside) and says so; the evaluation does too, and its figures are under the model's name."""
    model = make_tiny_model(tmp_path / "m.fader", attrs=SMILING_ONLY)
    data = value_folders(tmp_path / "smiling", {"no": 4, "yes": 4})
    rc, out, err = _evaluate(capsys, "--model", str(model), "--data", str(data), "--cache-dir", str(tmp_path / "c"))
    assert rc == 0, err
    res = json.loads(out)
    assert res["measured"] == ["Smiling"] and list(res["swap_accuracy"]) == ["Smiling"]
    assert res["data_attribute_names"] == {"smiling": "Smiling"}
    assert "python -m training.evaluation: the data's attribute 'smiling' is the model's 'Smiling'\n" in err, err


@pytest.mark.usefixtures("one_torch_thread")
def test_a_table_column_in_another_letter_case_is_measured_and_a_near_one_is_named(tmp_path, capsys):
    """A table of the columns `smiling` and `Mouth slightly open` for a model of Smiling,
    Mouth_Slightly_Open and Male was refused as labelling none of them. `smiling` is Smiling now;
    `Mouth slightly open`, which fader-train does not take as Mouth_Slightly_Open either (it matches
    letter case only), is said to be left out, with the name it comes near."""
    model = make_tiny_model(tmp_path / "m.fader", attrs=CELEBA_LIKE)
    names = [f"IMG_{i:02d}.png" for i in range(8)]
    noise_images(tmp_path / "data", names)
    with open(tmp_path / "data" / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "smiling", "Mouth slightly open"])
        w.writerows([n, i % 2, (i // 2) % 2] for i, n in enumerate(names))
    rc, out, err = _evaluate(capsys, "--model", str(model), "--data", str(tmp_path / "data" / "labels.csv"),
                             "--cache-dir", str(tmp_path / "c"))
    assert rc == 0, err
    res = json.loads(out)
    assert res["measured"] == ["Smiling"] and res["not_measured"] == ["Mouth_Slightly_Open", "Male"]
    assert res["data_attribute_names"] == {"smiling": "Smiling"}
    assert "the data's attribute 'smiling' is the model's 'Smiling'" in err
    assert ("python -m training.evaluation: the data's attribute 'Mouth slightly open' is none of the model's (did "
            "you mean 'Mouth_Slightly_Open'?), so it is not measured; name it as the model does to measure it\n") in err

