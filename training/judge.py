"""The independent judge: an attribute classifier that takes no part in making or choosing a model.

Edits are scored on what the user gets (the exported photo) by a classifier of another design than
every network used in training or checkpoint selection: a torchvision ResNet-18 (residual blocks,
global average pooling), trained from scratch on CelebA training-split crops with augmentations a
photo goes through (shift, scale, rotation, blur, down-and-up resampling, JPEG, colour, noise),
so that thin lines or colour casts that one network happens to read as an attribute do not count.
It never gives a gradient to a Fader model and never chooses a checkpoint.

    python -m training.judge --data ../shared/data/celeba/img_align_celeba \\
        --data ../shared/data/celeba/img_align_celeba_from_wild \\
        --data ../shared/data/celeba/img_align_celeba_89x109 --exclude ../shared/data/celeba/img_celeba \\
        --epochs 5 --threads 1 --out runs/judge/judge.safetensors

The file is safetensors (tensors + JSON metadata, nothing executable); `load_judge` reads it. Its
folder is made; an existing file is never replaced (choose a new name). The validation report
(CelebA split 1, never trained on) is printed as JSON on stdout and stored in the file: `n`
validation faces, per attribute `accuracy`, `true_positive_rate` (the share of the faces that have
it read as having it), `true_negative_rate` (of those without it, read as without) and `positives`
(faces that have it), and `mean_accuracy` over the attributes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.attributes import counted
from core.errors import FaderError
from core.threads import TorchThreads

from .augment import AUGMENTATION, add_fit_options, fit_on_augmented, to_unit_tensor as _to_tensor
from .precision import slow_amp_warning

JUDGE_FORMAT = "fader-judge"
JUDGE_ARCH = "torchvision-resnet18"


def build_net(n_attr: int) -> torch.nn.Module:
    """ResNet-18 (torchvision) with one logit per binary attribute, randomly initialised."""
    import torchvision
    return torchvision.models.resnet18(weights=None, num_classes=n_attr)


@dataclass
class Judge:
    """A loaded judge: `predict(crops)` gives P(attribute = second value) per attribute."""

    net: torch.nn.Module
    attributes: list          # attribute names (binary, CelebA's no/yes)
    size: int                 # input crop size (CelebA framing, central square)
    meta: dict

    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """uint8 (N, S', S', 3) CelebA-framed face crops (any size; resized to the judge's) ->
        float (N, k) probabilities."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.dtype != np.uint8:
            raise ValueError(f"expected uint8 (N, S, S, 3) crops, got {crops.dtype} {crops.shape}")
        out = []
        self.net.eval()
        with torch.no_grad():
            for s in range(0, len(crops), batch):
                x = _to_tensor(crops[s:s + batch])
                if x.shape[-1] != self.size:
                    x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True,
                                      align_corners=False)
                out.append(torch.sigmoid(self.net(_normalise(x)).float()))
        return torch.cat(out).numpy() if out else np.zeros((0, len(self.attributes)), np.float32)


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - 0.5) / 0.25


# ----------------------------------------------------------------------------------------------
# training

def train_judge(images, labels: np.ndarray, train_idx, val_idx, attributes: Sequence[str], epochs: float,
                batch_size: int = 64, lr: float = 1e-3, seed: int = 0, amp="auto",
                progress: bool = True, log=print) -> tuple:
    """Train a ResNet-18 judge; returns (net in eval mode, validation report dict)."""
    torch.manual_seed(seed)
    k = len(attributes)
    net = build_net(k).to(memory_format=torch.channels_last)
    train_idx = np.asarray(train_idx)
    y_all = torch.from_numpy(labels.astype(np.float32))
    pos = labels[train_idx].mean(0).clip(1e-3, 1 - 1e-3)
    # Rare attributes (Eyeglasses ~7 %) weigh their positives up, but only by the square root of
    # the imbalance: the judge should read "glasses" on a face with glasses, not see them everywhere.
    pos_weight = torch.from_numpy(np.sqrt((1 - pos) / pos).astype(np.float32))
    fit_on_augmented(net, images, train_idx, epochs, batch_size, lr, seed, _normalise,
                     lambda logits, idx: F.binary_cross_entropy_with_logits(logits, y_all[idx], pos_weight=pos_weight),
                     "judge", amp=amp, progress=progress, redraw_s=60)
    judge = Judge(net, list(attributes), int(images.shape[1]), {})
    report = validation_report(judge, images, labels, val_idx)
    return net, report


def validation_report(judge: Judge, images, labels: np.ndarray, val_idx) -> dict:
    """Accuracy, true-positive and true-negative rates per attribute on the given images."""
    val_idx = np.sort(np.asarray(val_idx))
    p = judge.predict(np.asarray(images[val_idx]))
    y = labels[val_idx]
    pred = p > 0.5
    rep = {"n": int(len(val_idx))}
    for j, name in enumerate(judge.attributes):
        t = y[:, j] == 1
        rep[name] = {"accuracy": round(float((pred[:, j] == t).mean()), 4),
                     "true_positive_rate": round(float(pred[t, j].mean()), 4) if t.any() else None,
                     "true_negative_rate": round(float((~pred[~t, j]).mean()), 4) if (~t).any() else None,
                     "positives": int(t.sum())}
    rep["mean_accuracy"] = round(float(np.mean([rep[a]["accuracy"] for a in judge.attributes])), 4)
    return rep


# ----------------------------------------------------------------------------------------------
# file

def save_judge(path, net: torch.nn.Module, attributes: Sequence[str], size: int, meta: dict,
               replace: bool = True) -> None:
    """Write the judge as safetensors (float16 weights) with JSON metadata, atomically (`replace`
    False: an existing file is an error, FileExistsError, and stays)."""
    from safetensors.torch import save as st_save
    from core.atomic_write import write_bytes_atomic
    tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous()
               for k, v in net.state_dict().items()}
    head = {"format": JUDGE_FORMAT, "version": "1", "arch": JUDGE_ARCH, "attributes": json.dumps(list(attributes)),
            "size": str(int(size)), "meta": json.dumps(meta)}
    write_bytes_atomic(Path(path), st_save(tensors, metadata=head), replace=replace)


def load_judge(path) -> Judge:
    """Read a judge file written by `save_judge`; raises FaderError on anything else."""
    from safetensors import safe_open
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            head = f.metadata() or {}
            if head.get("format") != JUDGE_FORMAT or head.get("arch") != JUDGE_ARCH:
                raise FaderError(f"{path}: not a judge file ({JUDGE_FORMAT}, {JUDGE_ARCH})")
            attrs = json.loads(head["attributes"])
            size = int(head["size"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = json.loads(head.get("meta") or "{}")
    except FaderError:
        raise
    except FileNotFoundError:
        raise FaderError(f"{path}: no such judge file") from None
    except Exception as e:
        raise FaderError(f"{path}: not a readable judge file ({str(e).splitlines()[0][:120]})") from None
    if not (isinstance(attrs, list) and all(isinstance(a, str) for a in attrs) and 0 < len(attrs) <= 64
            and 16 <= size <= 512):
        raise FaderError(f"{path}: invalid judge metadata")
    net = build_net(len(attrs))
    try:
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()})
    except RuntimeError as e:
        raise FaderError(f"{path}: judge weights do not fit a ResNet-18 ({str(e).splitlines()[0][:120]})") from None
    return Judge(net.eval(), attrs, size, meta)



# ----------------------------------------------------------------------------------------------
# command line

def _new_out(out) -> None:
    """Before the training (half an hour): --out must be a new file whose folder can be made and
    written (the documented runs/judge/ did not exist in a fresh clone: a traceback after the
    training), and an existing file (perhaps another judge) is never replaced."""
    from core.atomic_write import check_writable
    p = Path(out)
    if p.exists() or p.is_symlink():
        raise FaderError(f"--out {out} exists: choose a new file (nothing is overwritten)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FaderError(f"--out {out}: cannot make its folder ({e.strerror})") from None
    check_writable(p, "--out")


def main(argv: Optional[list] = None) -> int:
    """`python -m training.judge`: train the judge on CelebA training-split crops."""
    with TorchThreads() as threads:   # the caller's count put back: it may be called in-process
        return _main(argv, threads)


def _main(argv, threads: TorchThreads) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = argparse.ArgumentParser(prog="python -m training.judge", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, help="CelebA image folder (repeatable)")
    p.add_argument("--exclude", action="append", default=None, help="folder or list of images to leave out")
    p.add_argument("--attr", default="Smiling,Male,Young,Eyeglasses,Mouth_Slightly_Open",
                   help="comma-separated CelebA attributes to judge (default Smiling,Male,Young,Eyeglasses,"
                        "Mouth_Slightly_Open)")
    p.add_argument("--img-size", type=int, default=128, help="crop size the judge reads, 32..256 (default 128)")
    add_fit_options(p, batch_size=64)
    p.add_argument("--out", required=True, help="judge file to write (.safetensors; a new file, its folder is made)")
    a = p.parse_args(argv)
    from .cache import open_cache
    from .datasets import exclude_images, open_dataset
    try:
        if not 32 <= a.img_size <= 256 or a.epochs <= 0 or a.batch_size < 2:
            raise FaderError("--img-size must be 32..256, --epochs positive, --batch-size at least 2")
        _new_out(a.out)
        threads.set(max(1, a.threads))
        slow = slow_amp_warning(a.amp, torch.device("cpu"))
        if slow:
            print(f"judge: warning: {slow}", file=sys.stderr)
        ds = open_dataset(a.data, a.attr)
        if a.exclude:
            ds, dropped = exclude_images(ds, a.exclude)
            print(f"judge: --exclude left out {counted(dropped, 'image')}", file=sys.stderr)
        if ds.kind != "celeba" or any(not at.is_binary for at in ds.attributes):
            raise FaderError("the judge trains on CelebA data with binary attributes")
        splits = np.asarray([it.split for it in ds.items])
        train_idx, val_idx = np.flatnonzero(splits == 0), np.flatnonzero(splits == 1)
        cache = open_cache([it.path for it in ds.items], a.img_size, False, None, None, progress=True)
        train_idx, val_idx = train_idx[cache.valid[train_idx]], val_idx[cache.valid[val_idx]]
        if len(train_idx) < a.batch_size or not len(val_idx):
            raise FaderError("too few training-split (0) or validation-split (1) images for the judge")
        names = [at.name for at in ds.attributes]
        print(f"judge: {len(train_idx)} training-split images, {len(val_idx)} validation-split images; "
              f"attributes {', '.join(names)}", file=sys.stderr)
        t0 = time.time()
        net, rep = train_judge(cache.images, ds.labels, train_idx, val_idx, names, a.epochs, a.batch_size,
                               a.lr, a.seed, amp=a.amp)
        meta = {"trained_on": ds.description, "n_train": int(len(train_idx)),
                "validation": {"what": "CelebA split 1 (validation) crops", **rep},
                "epochs": a.epochs, "seconds": round(time.time() - t0, 1), "augmentation": AUGMENTATION,
                "purpose": "independent judge of edits; never used in training or checkpoint selection"}
        try:
            save_judge(a.out, net, names, a.img_size, meta, replace=False)
        except FileExistsError:
            raise FaderError(f"--out {a.out} appeared while the judge trained; it is left as it is and "
                             "nothing was written") from None
    except FaderError as e:
        print(f"judge: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rep))
    print(f"judge: wrote {a.out} (validation mean accuracy {rep['mean_accuracy']:.3f})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
