"""training.evaluation: the swap protocols (plain, --strength, --at-range-ends) and bad options."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from core.model_file import load_model
from training.evaluation import evaluate, main


def _setup(tiny_model_path):
    model = load_model(tiny_model_path)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    s = model.image_size
    images = rng.integers(0, 256, (24, s, s, 3), dtype=np.uint8)
    labels = np.stack([rng.integers(0, a.n, 24) for a in model.attributes], 1)
    return model, images, labels


def _swap_figures(res):
    return res["swap_accuracy"], res["others_unchanged"]


def _sharp_classifier(model):
    """A plain linear read-out of the image (a randomly initialised tiny Classifier predicts nearly
    constant values), so that the figures show which slider values were decoded."""
    torch.manual_seed(1)
    n_logits = sum(a.n for a in model.attributes)
    clf = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(48, n_logits))
    with torch.no_grad():
        clf[-1].weight.mul_(50)
    return clf


def test_strength_is_the_range_end_protocol_with_range_1_minus_s_to_s(tiny_model_path):
    model, images, labels = _setup(tiny_model_path)
    ae, clf = model.autoencoder, _sharp_classifier(model)
    plain = evaluate(ae, clf, model.attributes, images, labels, "cpu")
    assert _swap_figures(evaluate(ae, clf, model.attributes, images, labels, "cpu", strength=1.0)) == \
        _swap_figures(plain)
    s = 4.0
    strong = evaluate(ae, clf, model.attributes, images, labels, "cpu", strength=s)
    ranged = [dataclasses.replace(a, range=(1 - s, s)) if a.is_binary else a for a in model.attributes]
    ends = evaluate(ae, clf, ranged, images, labels, "cpu", at_range_ends=True)
    assert _swap_figures(strong) == _swap_figures(ends)
    assert _swap_figures(strong) != _swap_figures(plain)  # the protocol matters for this model
    assert strong["psnr"] == plain["psnr"]  # reconstruction does not depend on the protocol


def test_bad_strength_options_exit_2(tiny_model_path, capsys):
    assert main(["--model", str(tiny_model_path), "--data", "nowhere", "--strength", "0"]) == 2
    assert "--strength must be in (0, 20]" in capsys.readouterr().err
    assert main(["--model", str(tiny_model_path), "--data", "nowhere", "--strength", "2", "--at-range-ends"]) == 2
    assert "not both" in capsys.readouterr().err


def test_mirror_protocol_measures_what_the_app_decodes(tiny_model_path):
    """evaluate(mirror=True) (used for models with mirror_decode) reconstructs as the app's engine
    does for such a model: the same PSNR, and a different one from the plain decode."""
    from core.engine import Engine
    model, images, labels = _setup(tiny_model_path)
    clf = _sharp_classifier(model)
    plain = evaluate(model.autoencoder, clf, model.attributes, images, labels, "cpu")
    mirrored = evaluate(model.autoencoder, clf, model.attributes, images, labels, "cpu", mirror=True)
    model.meta["mirror_decode"] = True
    engine = Engine(model, device="cpu", threads=1)
    values = [{a.name: float(l) if a.is_binary else [float(i == l) for i in range(a.n)]
               for a, l in zip(model.attributes, row)} for row in labels]
    rec = engine.decode_float(engine.encode(images), values)
    mse = (((rec - images.astype(np.float32)) / 127.5) ** 2).reshape(len(images), -1).mean(1)
    app_psnr = float(np.mean(10 * np.log10(4.0 / mse)))
    assert abs(mirrored["psnr"] - app_psnr) < 0.02
    assert abs(mirrored["psnr"] - plain["psnr"]) > 0.1
