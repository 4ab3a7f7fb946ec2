"""The slider classifier a model file carries, retrained on photo-like images.

When a photo is opened, this classifier reads each face's own attribute values and every fader
starts there; an edit is the decode at the slider's value minus the decode at the face's own. A
misread face (an older man read as young) starts with its slider at the wrong end, and moving it
to the other end then changes nothing. `fader-train` trains this classifier briefly on clean
crops (its main use there is the swap accuracy); this command trains it for longer, with the
augmentations a face in a photo goes through (`training/augment.py`), optionally on more data
(the 89x109 set adds 10,000 faces), and writes a copy of the model file with the new classifier.
The autoencoder's weights are copied unchanged.

    python -m training.classifier --model resources/models/default.fader \\
        --data ../shared/data/celeba/img_align_celeba --data ../shared/data/celeba/img_align_celeba_from_wild \\
        --data ../shared/data/celeba/img_align_celeba_89x109 --exclude ../shared/data/celeba/img_celeba \\
        --epochs 8 --out runs/clf_photo.fader

CelebA data trains on split 0 and reports accuracy on split 1; other data holds out 10 %.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np
import torch

from core.attributes import counted
from core.errors import FaderError
from core.threads import TorchThreads

from .augment import AUGMENTATION, add_fit_options, fit_on_augmented
from .evaluation import (labelled_data, classifier_accuracy, classifier_config,
                         fast_classifier, plain_classifier)
from .losses import attr_loss
from .precision import slow_amp_warning

PROG = "python -m training.classifier"


def train_photo_classifier(images, labels: np.ndarray, train_idx, val_idx, attrs, epochs: float,
                           batch_size: int = 32, lr: float = 1e-3, config=None, seed: int = 0,
                           amp="auto", progress: bool = True, should_stop=None) -> tuple:
    """Train a classifier of the reference design on augmented crops (AdamW, one-cycle schedule).

    ``images``: uint8 (N, S, S, 3); ``labels``: (N, k) value indices; ``config``: the classifier's
    architecture (default: `classifier_config` at width 256). Returns (classifier in eval mode,
    per-attribute accuracy on ``val_idx`` as a list)."""
    torch.manual_seed(seed)
    cfg = config if config is not None else classifier_config(int(images.shape[1]), sum(a.n for a in attrs), 256)
    clf = fast_classifier(cfg)
    y_all = torch.from_numpy(np.asarray(labels, np.int64))
    fit_on_augmented(clf, images, train_idx, epochs, batch_size, lr, seed,
                     lambda x: x.mul(2.0).sub_(1.0),  # the classifier reads [-1, 1]
                     lambda logits, idx: attr_loss(logits, y_all[idx], attrs), "classifier",
                     amp=amp, progress=progress, should_stop=should_stop, clip=5.0)
    plain = plain_classifier(clf)
    acc = classifier_accuracy(plain, images, labels, val_idx, attrs, torch.device("cpu"))
    return plain, acc


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the .fader model whose classifier to replace")
    p.add_argument("--data", action="append", required=True, help="labelled image folder (repeatable)")
    p.add_argument("--exclude", action="append", default=None, help="folder or list of images to leave out")
    add_fit_options(p, batch_size=32)
    p.add_argument("--half", action="store_true", help="store float16 weights (as the shipped models are)")
    p.add_argument("--out", required=True, help="model file to write (a copy of --model with the new classifier)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m training.classifier`: retrain a model file's slider classifier."""
    with TorchThreads() as threads:   # the caller's count put back: it may be called in-process
        return _main(argv, threads)


def _main(argv, threads: TorchThreads) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    a = _parser().parse_args(argv)
    from core.model_file import load_model, save_model
    from .cache import open_cache
    from .datasets import SPLIT_BY_VALUE, exclude_images, split_dataset
    try:
        if a.epochs <= 0 or a.batch_size < 2 or a.lr <= 0:
            raise FaderError("--epochs and --lr must be positive, --batch-size at least 2")
        if os.path.abspath(a.out) == os.path.abspath(a.model):
            raise FaderError("--out must be a new file, not --model itself")
        if os.path.exists(a.out):
            raise FaderError(f"--out {a.out} exists: choose a new file (nothing is overwritten)")
        threads.set(max(1, a.threads))
        slow = slow_amp_warning(a.amp, torch.device("cpu"))
        if slow:
            print(f"{PROG}: warning: {slow}", file=sys.stderr)
        model = load_model(a.model)
        names = [x.name for x in model.attributes]
        # as the evaluation opens it: a folder `smiling` is the model's `Smiling` (it was refused
        # with a hint about an --attr option this command does not have)
        ds, spelt, notes = labelled_data(a.data, model.attributes)
        for d, m in spelt.items():
            print(f"{PROG}: the data's attribute {d!r} is the model's {m!r}", file=sys.stderr)
        for note in notes:   # a column misspelt ('Smilling'): named before the refusal of what it lacks
            print(f"{PROG}: {note}", file=sys.stderr)
        if a.exclude:
            ds, dropped = exclude_images(ds, a.exclude)
            print(f"{PROG}: --exclude left out {counted(dropped, 'image')}", file=sys.stderr)
        lacking = [n for n in names if n not in {x.name for x in ds.attributes}]
        if lacking:
            raise FaderError(f"the classifier reads all the model's attributes ({', '.join(names)}); "
                             f"the data do not label {', '.join(lacking)}")
        if [x.n for x in ds.attributes] != [x.n for x in model.attributes]:
            raise FaderError("the data's attributes do not have the model's numbers of values: "
                             + ", ".join(f"{x.name} {x.n} (the model's {y.n})"
                                         for x, y in zip(ds.attributes, model.attributes) if x.n != y.n))
        size = model.config.img_size
        cache = open_cache([it.path for it in ds.items], size, False, None, None, progress=True)
        # drawn among the usable images, as fader-train draws it: a rare value's one validation image
        # was lost where it was a skipped one
        train_idx, val_idx = split_dataset(ds, usable=cache.valid, rule=SPLIT_BY_VALUE)
        train_idx, val_idx = train_idx[cache.valid[train_idx]], val_idx[cache.valid[val_idx]]   # CelebA, packs
        if len(train_idx) < a.batch_size or not len(val_idx):
            raise FaderError("too few images to train and validate the classifier")
        print(f"{PROG}: {len(train_idx)} training and {len(val_idx)} validation images at {size} px; "
              f"attributes {', '.join(names)}", file=sys.stderr)
        t0 = time.time()
        clf, acc = train_photo_classifier(cache.images, ds.labels, train_idx, val_idx, model.attributes,
                                          a.epochs, a.batch_size, a.lr, model.classifier_config, a.seed,
                                          amp=a.amp)
        old = model.meta.get("classifier") or {}
        meta = dict(model.meta, classifier={
            "source": f"{PROG} ({a.epochs:g} epochs on {ds.description})",
            "epochs": a.epochs, "n_train": int(len(train_idx)), "seconds": round(time.time() - t0, 1),
            "augmentation": AUGMENTATION,
            "val_accuracy": {n: round(float(v), 4) for n, v in zip(names, acc)},
            "previous_val_accuracy": old.get("val_accuracy")})
        new = dataclasses.replace(model, classifier=clf, classifier_config=clf.config, meta=meta)
        save_model(new, a.out, half=a.half)
    except FaderError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing written", file=sys.stderr)
        return 130
    print(f"{PROG}: validation accuracy " + ", ".join(f"{n} {v:.3f}" for n, v in zip(names, acc)), file=sys.stderr)
    print(f"{PROG}: wrote {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
