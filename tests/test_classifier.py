"""The slider classifier retrained on photo-like images (training/classifier.py): it learns what it
is shown through the augmentations, and its command writes a new model file with the new classifier
while the autoencoder, the input file and any existing file stay untouched."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from core.attributes import Attribute
from core.model_file import load_model
from tests.conftest import make_tiny_model, noise_images
from tests.test_judge import _shapes
from training.classifier import main as classifier_main
from training.classifier import train_photo_classifier
from training.evaluation import classifier_config


def test_photo_classifier_learns_visible_features(one_torch_thread):
    images, labels = _shapes(480, 3)
    attrs = [Attribute("Top", ("no", "yes"), (0.0, 1.0)), Attribute("Bottom", ("no", "yes"), (0.0, 1.0))]
    cfg = classifier_config(32, 4, max_fm=64)
    clf, acc = train_photo_classifier(images, labels, np.arange(400), np.arange(400, 480), attrs, epochs=4,
                                      batch_size=32, lr=2e-3, config=cfg, progress=False)
    # a classifier that ignored its labels reads about half of them right
    assert acc[0] >= 0.9 and acc[1] >= 0.9, acc
    assert not clf.training
    x = torch.from_numpy(images[400:]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        top = clf(x)[:, :2].argmax(1).numpy()
    assert (top == labels[400:, 0]).mean() == pytest.approx(acc[0])


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_command_replaces_only_the_classifier(tmp_path, celeba_aligned, one_torch_thread, capsys):
    # the first 2,000 images only: preprocessing all 5,371 (into the test run's cache, conftest)
    # took ~7 s of the test here
    names = sorted(p.name for p in celeba_aligned.glob("*.jpg"))
    (tmp_path / "rest.txt").write_text("\n".join(names[2000:]) + "\n")
    src = make_tiny_model(tmp_path / "in.fader", attrs=(("Smiling", ("no", "yes"), (0.0, 1.0)),
                                                        ("Male", ("no", "yes"), (0.0, 1.0))))
    before = _sha(src)
    out = tmp_path / "out.fader"
    rc = classifier_main(["--model", str(src), "--data", str(celeba_aligned), "--exclude", str(tmp_path / "rest.txt"),
                          "--epochs", "3", "--lr", "3e-3", "--out", str(out)])
    assert rc == 0 and out.is_file()
    assert _sha(src) == before  # the input is never rewritten
    old, new = load_model(src), load_model(out)
    for (k, a), (_, b) in zip(old.autoencoder.state_dict().items(), new.autoencoder.state_dict().items()):
        assert torch.equal(a, b), k
    changed = [k for k, v in new.classifier.state_dict().items()
               if v.is_floating_point() and not torch.equal(v, old.classifier.state_dict()[k])]
    assert changed
    assert new.classifier_config == old.classifier_config  # the file's classifier keeps its design and size
    acc = new.meta["classifier"]["val_accuracy"]
    assert set(acc) == {"Smiling", "Male"}
    # three epochs on 1,800 real 32 px faces: 0.79-0.825 (seeds 0-3). Two epochs read 0.765-0.81 on
    # one CPU but 0.725-0.81 on another (seed 0 failed the bar): torch's kernels differ by CPU, so the
    # margin must hold across them. "No" is 69 % of the 200 validation faces: trained on shuffled
    # labels it reads 0.69, so the bar stands above that
    assert acc["Male"] >= 0.74, acc
    # a second run never overwrites what exists, and a model whose attributes the data lacks is refused
    assert classifier_main(["--model", str(src), "--data", str(celeba_aligned), "--out", str(out)]) == 2
    # (data labelled Smiling only: CelebA's attribute table, read again, took 1.9 s of the test to
    # be refused for the same reason)
    other = make_tiny_model(tmp_path / "other.fader")  # has Male and a three-valued Hair the data does not label
    for value in ("no", "yes"):
        noise_images(tmp_path / "Smiling" / value, ["a.png", "b.png"])
    capsys.readouterr()
    assert classifier_main(["--model", str(other), "--data", str(tmp_path / "Smiling"), "--epochs", "1",
                            "--out", str(tmp_path / "x.fader")]) == 2
    assert "the data do not label Male, Hair" in capsys.readouterr().err
    assert not (tmp_path / "x.fader").exists()
