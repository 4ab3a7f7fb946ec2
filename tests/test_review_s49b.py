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
    """A table of the columns `smiling`, `Mouth slightly open` and `Mael` for a model of Smiling,
    Mouth_Slightly_Open and Male was refused as labelling none of them. `smiling` is Smiling now,
    `Mouth slightly open` is Mouth_Slightly_Open (fader-train's matching: letter case, and spaces
    for underscores), and `Mael` is said to be left out, with the name it comes near."""
    model = make_tiny_model(tmp_path / "m.fader", attrs=CELEBA_LIKE)
    names = [f"IMG_{i:02d}.png" for i in range(8)]
    noise_images(tmp_path / "data", names)
    with open(tmp_path / "data" / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "smiling", "Mouth slightly open", "Mael"])
        w.writerows([n, i % 2, (i // 2) % 2, (i // 4) % 2] for i, n in enumerate(names))
    rc, out, err = _evaluate(capsys, "--model", str(model), "--data", str(tmp_path / "data" / "labels.csv"),
                             "--cache-dir", str(tmp_path / "c"))
    assert rc == 0, err
    res = json.loads(out)
    assert res["measured"] == ["Smiling", "Mouth_Slightly_Open"] and res["not_measured"] == ["Male"]
    assert res["data_attribute_names"] == {"smiling": "Smiling", "Mouth slightly open": "Mouth_Slightly_Open"}
    assert "the data's attribute 'smiling' is the model's 'Smiling'" in err
    assert ("python -m training.evaluation: the data's attribute 'Mael' is none of the model's (did "
            "you mean 'Male'?), so it is not measured; name it as the model does to measure it\n") in err


# ----------------------------------------------------------------------------------------------
# the model card

def _card(qtbot, model_path: Path, metrics=None, training=None) -> str:
    """The model card's text as the dialog shows it, of the model at `model_path` with the figures and
    training record given (None: the file's own)."""
    from core.model_file import load_model, model_summary, save_model
    from fader_desktop.dialogs import ModelCardDialog
    model = load_model(model_path)
    if metrics is not None or training is not None:
        model.meta.update({k: v for k, v in (("metrics", metrics), ("training", training)) if v is not None})
        save_model(model, model_path)
        model = load_model(model_path)
    dialog = ModelCardDialog(model_summary(model), model_path)
    qtbot.addWidget(dialog)
    return dialog.browser.toPlainText()


def _row(text: str, words: str) -> str:
    """The card's row of a figure: its words, what it measures and its values, up to the next row."""
    start = text.index(f"\n{words}\n")
    rest = text[start + 1:]
    ends = [rest.index(f"\n{w}\n") for w in ("swap accuracy, pasted", "others unchanged", "reconstruction (PSNR)",
                                             "classifier accuracy", "Training") if f"\n{w}\n" in rest]
    return rest[:min(ends)] if ends else rest


FIGURES = {"step": 40, "validation": {"n_images": 12, "psnr": 20.5,
                                      "swap_accuracy": {"Smiling": 0.6, "Mouth_Slightly_Open": 1.0, "Male": 1.0},
                                      "swap_mean": 0.8667,
                                      "others_unchanged": {"Smiling": 0.5, "Mouth_Slightly_Open": 0.75, "Male": 1.0},
                                      "others_unchanged_mean": 0.75,
                                      "classifier_accuracy": {"Smiling": 0.7, "Mouth_Slightly_Open": 1.0, "Male": 1.0}}}
FINE_TUNE = {"data": "labeled folders /x/Smiling (no: 6, yes: 6)", "init": "/x/start.fader",
             "pseudo_labelled": ["Mouth_Slightly_Open", "Male"]}


def test_the_card_names_attributes_as_the_faders_do(qtbot, tmp_path):
    """The card said 'Mouth_Slightly_Open' in its attribute table, its figures and its 'labelled by
    the starting model' row, where the window's fader says 'Mouth slightly open'. It names them as
    the faders do; the identifier stays, once, under the name in the attribute table (what --set takes)."""
    from fader_desktop.fader_panel import display_name
    model = make_tiny_model(tmp_path / "m.fader", attrs=CELEBA_LIKE)
    text = _card(qtbot, model, FIGURES, FINE_TUNE)
    assert display_name("Mouth_Slightly_Open") == "Mouth slightly open"
    attributes = text[text.index("\nAttributes\n"):text.index("\nEvaluation\n")]
    assert "Mouth slightly open\nMouth_Slightly_Open\n" in attributes, attributes
    assert text.count("Mouth_Slightly_Open") == 1, text
    assert "Mouth slightly open 0.75" in _row(text, "others unchanged")
    assert "labelled by the starting model\nattributes the data lacked" in text
    assert "\nMouth slightly open, Male\n" in text[text.index("\nTraining\n"):], text


def test_the_card_marks_a_fine_tunes_figures_of_the_attributes_its_starting_model_labelled(qtbot, tmp_path):
    """A fine-tune's figures of the attributes its starting model's classifier labelled (1.00: that
    classifier judged its own labels) were shown as measured and taken into the means (swap accuracy
    0.867 where the data's own Smiling reads 0.60). They are shown apart, marked circular, and left out
    of the means, as the card says; for a model whose trainer left them out of its figures, the card
    says so, and the figures are as the trainer saved them."""
    model = make_tiny_model(tmp_path / "m.fader", attrs=CELEBA_LIKE)
    text = _card(qtbot, model, FIGURES, FINE_TUNE)
    assert ("Mouth slightly open and Male were labelled by the starting model's classifier, not by the data, so their "
            "figures are circular (the edits are judged against that model's own readings): they are marked so and "
            "left out of the means.") in text.replace("\n", " "), text
    swap = _row(text, "swap accuracy")
    assert "0.600" in swap and "0.867" not in swap, swap
    # (the file keeps the figures' names in alphabetical order)
    assert "Smiling 0.60\nMale 1.00 · Mouth slightly open 1.00 (circular: labelled by the starting model)" in swap, swap
    others = _row(text, "others unchanged")
    assert "0.500" in others and "0.750" not in others, others
    assert "Male 1.00 · Mouth slightly open 0.75 (circular" in others
    clf = _row(text, "classifier accuracy")
    assert "0.700" in clf and "Mouth slightly open 1.00 (circular" in clf, clf
    # figures saved without the starting model's attributes: as saved, and the card says why they are missing
    own = {"step": 40, "validation": {"n_images": 12, "swap_accuracy": {"Smiling": 0.6}, "swap_mean": 0.6}}
    text = _card(qtbot, model, own, FINE_TUNE)
    assert "0.600" in _row(text, "swap accuracy") and "circular:" not in text
    assert ("Mouth slightly open and Male were labelled by the starting model's classifier, not by the data: the "
            "figures leave them out (they would be circular).") in text.replace("\n", " "), text


@pytest.mark.usefixtures("one_torch_thread")
def test_a_real_fine_tunes_card_gives_the_data_attributes_figure(qtbot, tmp_path):
    """A real fader-train --init run on a labeled folder of Smiling, from a model of Smiling, Male and
    Hair: the card's swap accuracy is Smiling's own figure, not the mean with the circular Male and Hair."""
    from core.model_file import load_model
    from training import cli
    start = make_tiny_model(tmp_path / "start.fader")
    data = value_folders(tmp_path / "Smiling", {"no": 6, "yes": 6})
    run = tmp_path / "run"
    assert cli.main(["--data", str(data), "--init", str(start), "--out", str(run), "--steps", "2", "--eval-every", "2",
                     "--cache-dir", str(tmp_path / "cache"), "--classifier-steps", "2", "--quiet", "--threads", "1",
                     "--workers", "1", "--batch-size", "8"]) == 0
    meta = load_model(run / "model.fader").meta
    assert meta["training"]["pseudo_labelled"] == ["Male", "Hair"]
    own = meta["metrics"]["validation"]["swap_accuracy"]["Smiling"]
    text = _card(qtbot, run / "model.fader")
    swap = _row(text, "swap accuracy")
    assert swap.split("\n")[2] == f"{own:.3f}", swap
    assert "Male and Hair were labelled by the starting model's classifier, not by the data" in text.replace("\n", " ")


def test_info_names_the_attributes_not_measured_when_the_trainer_left_their_figures_out(tmp_path, capsys):
    """`fader-desktop info` of a fine-tune whose figures leave out the attributes its starting model
    labelled (as the trainer may save them) read 'swap accuracy 0.600 on Smiling (: not measured, …)':
    it named the attributes not measured only from the figures it was leaving out."""
    from core.model_file import load_model, save_model
    from fader_desktop.cli import main
    path = make_tiny_model(tmp_path / "m.fader", attrs=CELEBA_LIKE)
    model = load_model(path)
    model.meta.update({"training": FINE_TUNE, "metrics": {"step": 40, "validation": {
        "n_images": 12, "swap_accuracy": {"Smiling": 0.6}, "swap_mean": 0.6}}})
    save_model(model, path)
    capsys.readouterr()
    assert main(["info", "--model", str(path)]) == 0
    out = capsys.readouterr().out
    assert ("swap accuracy 0.600 on Smiling (Mouth_Slightly_Open, Male: not measured, labelled by the classifier it "
            "was fine-tuned from)") in out, out
