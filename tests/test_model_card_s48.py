"""QA walk (s48): the model card of a trained model showed raw metric names ("validation › eval
seconds 0", "lat dis accuracy mean", "paste swap accuracy") and "56,264 parameters" for a 29 MB
file, leaving out its 7.2 M-parameter classifier. The card names the figures in words with what
each measures, leaves bookkeeping out, and says what the parameters are, as `info` does."""
from __future__ import annotations

import json

from conftest import make_tiny_model

from core.model_file import default_model_path, load_model, model_summary, save_model


def _card_text(qapp, model, path) -> str:
    from fader_desktop.dialogs import ModelCardDialog
    dialog = ModelCardDialog(model_summary(model), path)
    try:
        return dialog.browser.toPlainText()
    finally:
        dialog.deleteLater()


def _counts(model) -> tuple:
    return (sum(p.numel() for p in model.autoencoder.parameters()),
            sum(p.numel() for p in model.classifier.parameters()) if model.classifier is not None else None)


def test_the_card_names_the_figures_in_words(qapp, tmp_path):
    """The shipped model's card (the trainer's figures): words and what each measures, no raw keys."""
    path = default_model_path()
    text = _card_text(qapp, load_model(path), path)
    assert "swap accuracy" in text and "how often the model's own classifier reads an edit as the value asked" in text
    assert "others unchanged" in text and "reconstruction (PSNR)" in text and "27.86 dB" in text
    assert "0.866" in text and "Young 0.59" in text   # the mean, then each attribute
    assert "Measured at training step 68,084 on 300 validation faces." in text
    figures = text[text.index("\nEvaluation\n"):text.index("\nTraining\n")]
    for raw in ("eval seconds", "lat dis", "paste swap", "swap mean", "validation ›", "n images", "mse"):
        assert raw not in figures, raw
    for raw in ("cache key", "train files sha1", "data kind", "hyper parameters ›"):   # the training's bookkeeping
        assert raw not in text, raw
    # a figure the card has no words for is named cleaned, not left out
    model = load_model(make_tiny_model(tmp_path / "m.fader"))
    model.meta["metrics"] = {"step": 2, "validation": {"n_images": 4, "swap_mean": 0.5, "edit_lat_dis_drift": 0.25,
                                                       "eval_seconds": 3.0}}
    save_model(model, tmp_path / "m2.fader")
    text = _card_text(qapp, load_model(tmp_path / "m2.fader"), tmp_path / "m2.fader")
    assert "edit latent discriminator drift" in text and "0.250" in text and "eval seconds" not in text


def test_the_card_and_info_say_what_the_parameters_are(qapp, tmp_path, capsys):
    from fader_desktop.cli import main
    path = default_model_path()
    model = load_model(path)
    ae, clf = _counts(model)
    said = (f"{ae:,} parameters in the editing network; the file also holds a classifier of {clf / 1e6:.1f} M "
            "parameters (used to read faces)")
    assert clf > 1_000_000 and said in _card_text(qapp, model, path).replace("\n", " ")
    assert main(["info"]) == 0
    assert f"  model size: {said}" in capsys.readouterr().out
    # a small classifier is counted in full; a model without one says so
    for with_classifier in (True, False):
        p = make_tiny_model(tmp_path / f"t{with_classifier}.fader", with_classifier=with_classifier)
        tiny = load_model(p)
        ae, clf = _counts(tiny)
        said = f"{ae:,} parameters in the editing network; " + (
            f"the file also holds a classifier of {clf:,} parameters (used to read faces)" if with_classifier
            else "no classifier (sliders start at each attribute's first value)")
        assert said in _card_text(qapp, tiny, p).replace("\n", " ")
        assert main(["info", "--model", str(p)]) == 0
        assert f"  model size: {said}\n" in capsys.readouterr().out
        assert main(["info", "--model", str(p), "--json"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert (info["parameters"], info["classifier_parameters"]) == (ae, clf)
