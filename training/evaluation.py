"""Evaluation: the attribute classifier, swap accuracy, reconstruction PSNR and preview grids.

Swap accuracy (the reference's "classifier accuracy" on swapped attributes): decode each
validation image with one attribute set to another value (binary: alpha = 1 - y; multi-valued:
each other value) and count how often the evaluation classifier predicts the requested value.
"Others unchanged": how often the classifier's prediction of every *other* attribute on the
swapped image equals its prediction on the plain reconstruction (same decoder, true attributes),
i.e. the swap changed only what it was asked to.

`python -m training.evaluation --model M.fader --data DATA` re-measures a model on the validation
split and prints JSON (the model card's figures come from this command).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from core.atomic_write import write_bytes_atomic
from core.attributes import Attribute
from core.errors import FaderError, os_reason
from core.engine import usable_cores
from core.networks import ArchConfig, Classifier
from core.threads import TorchThreads
from .batches import BatchStream
from .live_taps import use_live_taps
from .losses import attr_loss
from .progress import progress_bar, stderr_is_terminal
from .small_map_conv import use_small_map_convs


# ----------------------------------------------------------------------------------------------
# tensors

def to_input(batch_u8, device, channels_last: bool = True) -> torch.Tensor:
    """uint8 (N,S,S,3) array/tensor -> float32 NCHW in [-1, 1]. NHWC memory is already
    channels-last, so the permute is free and the result stays channels-last."""
    t = batch_u8 if isinstance(batch_u8, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch_u8))
    t = t.to(device, non_blocking=True).permute(0, 3, 1, 2)
    x = t.float().div_(127.5).sub_(1.0)
    return x if channels_last else x.contiguous()


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 (N,S,S,3)."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def code_from_indices(y: torch.Tensor, attrs: Sequence[Attribute]) -> torch.Tensor:
    """(N, k) value indices -> (N, sum n) one-hot decoder code."""
    offsets = torch.tensor(np.cumsum([0] + [a.n for a in attrs[:-1]]), device=y.device)
    code = torch.zeros(y.size(0), sum(a.n for a in attrs), device=y.device)
    return code.scatter_(1, y + offsets, 1.0)


def predict_indices(logits: torch.Tensor, attrs: Sequence[Attribute]) -> torch.Tensor:
    """(N, sum n) logits -> (N, k) argmax value index per attribute."""
    out, start = [], 0
    for a in attrs:
        out.append(logits[:, start:start + a.n].argmax(1))
        start += a.n
    return torch.stack(out, 1)


def classifier_config(img_size: int, n_attr: int, max_fm: int = 512) -> ArchConfig:
    """The evaluation classifier's architecture (the reference classifier's defaults; a smaller
    `max_fm` keeps a 128 px model file small: 256 instead of 512 is 7 MB instead of 23 in float16)."""
    return ArchConfig(img_size=img_size, init_fm=32, max_fm=max_fm, n_layers=1, hid_dim=512, n_attr=n_attr)


# ----------------------------------------------------------------------------------------------
# classifier

def fast_classifier(cfg: ArchConfig) -> Classifier:
    """A Classifier to train: the tiny-map GEMM convolutions and its 2x2 -> 1x1 layer on the live
    taps only (1.7x faster per step on 2 CPU threads), channels-last. `plain_classifier` turns it
    back into a plain Classifier."""
    clf = use_small_map_convs(Classifier(cfg))
    use_live_taps(clf.conv_layers, (cfg.img_size, cfg.img_size))
    return clf.to(memory_format=torch.channels_last)


def plain_classifier(fast: Classifier) -> Classifier:
    """A plain Classifier (eval mode, channels-last, on the CPU) with a `fast_classifier`'s weights."""
    plain = Classifier(fast.config)
    plain.load_state_dict(fast.state_dict())
    return plain.to(memory_format=torch.channels_last).eval()


def train_classifier(images, labels: np.ndarray, train_idx, val_idx, attrs, steps: int, device,
                     batch_size: int = 32, seed: int = 0, flip: bool = True, progress: bool = True,
                     should_stop=None, log=print, max_fm: int = 512) -> tuple:
    """Train the evaluation classifier (Adam 2e-4, betas (0.5, 0.999), clip 5, flips, like the
    reference classifier.py). Returns (classifier in eval mode, per-attribute val accuracy)."""
    torch.manual_seed(seed)
    cfg = classifier_config(images.shape[1], sum(a.n for a in attrs), max_fm)
    clf = fast_classifier(cfg).to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=2e-4, betas=(0.5, 0.999), **_adam_kwargs(device))
    stream = BatchStream(images, labels, train_idx, batch_size, seed + 7919, 0, flip)
    bar = None
    if progress:
        bar = progress_bar(steps, "classifier", "step")
    acc_loss = torch.zeros((), device=device)
    try:
        clf.train()
        for step in range(steps):
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            xb, yb = stream.next()
            x = to_input(xb, device)
            y = yb.to(device, non_blocking=True)
            loss = attr_loss(clf(x), y, attrs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(clf.parameters(), 5.0)
            opt.step()
            acc_loss += loss.detach()
            if bar is not None:
                bar.update(1)
                if (step + 1) % 100 == 0:
                    bar.set_postfix(loss=f"{float(acc_loss) / 100:.3f}")
                    acc_loss.zero_()
    finally:
        stream.close()
        if bar is not None:
            bar.close()
    clf = plain_classifier(clf).to(device)
    acc = classifier_accuracy(clf, images, labels, val_idx, attrs, device)
    return clf, acc


@torch.no_grad()
def classifier_accuracy(clf, images, labels, idx, attrs, device, batch: int = 128) -> list:
    """Per-attribute accuracy of a classifier on images[idx]."""
    clf.eval()
    correct = torch.zeros(len(attrs), dtype=torch.long)
    idx = np.asarray(idx)
    for s in range(0, len(idx), batch):
        part = np.sort(idx[s:s + batch])
        pred = predict_indices(clf(to_input(images[part], device)), attrs).cpu()
        correct += (pred == torch.from_numpy(labels[part])).sum(0)
    return (correct.double() / max(1, len(idx))).tolist()


def _adam_kwargs(device) -> dict:
    dev = torch.device(device)
    # The fused Adam kernel is one pass over all parameters (CPU and CUDA), no per-tensor Python loop.
    return {"fused": True} if dev.type in ("cpu", "cuda") else {}


# ----------------------------------------------------------------------------------------------
# model evaluation

@torch.no_grad()
def evaluate(ae, classifier, attrs: Sequence[Attribute], images, labels: np.ndarray, device,
             lat_dis=None, n_skip: int = 0, batch: int = 64, autocast_dtype=None,
             at_range_ends: bool = False, strength: float = 1.0, mirror: bool = False,
             measured: Optional[Sequence[int]] = None, read_unmeasured: bool = False) -> dict:
    """Reconstruction MSE/PSNR, latent-discriminator accuracy, swap accuracy and "others unchanged"
    on (images, labels) — uint8 (N,S,S,3) and (N,k) value indices.

    `measured`: the indices of the attributes whose labels are real (default all); only they are
    swapped and have per-attribute figures. The others' labels only set the decoder's code (a fine-tune's
    data that labels one of its model's attributes), and "others unchanged" still watches them.
    `read_unmeasured`: those labels are the classifier's reading of each image (as a fine-tune labels
    what its data lack), taken from the pass that scores its accuracy: `labels`' columns for them are
    not read.

    `mirror`: decode as the app decodes a model whose metadata asks for mirror decoding (the mean
    of the face's decode and its mirror image's, flipped back; core.engine).

    `at_range_ends`: a binary swap sets the slider to the end of the attribute's recommended range
    (the most a user can ask for) instead of alpha = 1 - y. `strength` S: a binary swap sets the
    slider to S (requested "yes") or 1 - S (requested "no"); 1 is the plain swap.
    """
    if len(images) == 0:   # figures of nothing looked real (PSNR 0, others unchanged 1.0)
        raise FaderError("no images to measure")
    ae_mode = ae.training
    ae.eval()
    if lat_dis is not None:
        lat_dis.eval()
    classifier.eval()
    k = len(attrs)
    n = len(images)
    chosen = list(range(k)) if measured is None else sorted(set(measured))
    unmeasured = [j for j in range(k) if j not in chosen]
    sq_err = 0.0
    psnr_sum = 0.0
    lat_correct = torch.zeros(k, dtype=torch.long)
    clf_correct = torch.zeros(k, dtype=torch.long)
    swap_ok = torch.zeros(k, dtype=torch.long)
    paste_ok = torch.zeros(k, dtype=torch.long)
    swap_n = torch.zeros(k, dtype=torch.long)
    others_ok = torch.zeros(k, dtype=torch.long)
    others_n = torch.zeros(k, dtype=torch.long)
    ctx = (torch.autocast(torch.device(device).type, dtype=autocast_dtype) if autocast_dtype is not None
           else contextlib.nullcontext())
    for s in range(0, n, batch):
        xb = np.ascontiguousarray(images[s:s + batch])
        y = torch.from_numpy(np.ascontiguousarray(labels[s:s + batch])).to(device)
        x = to_input(xb, device)
        read = predict_indices(classifier(x), attrs)
        if read_unmeasured and unmeasured:
            y = y.clone()   # from_numpy shares the caller's array
            y[:, unmeasured] = read[:, unmeasured]
        with ctx:
            enc = ae.encode(x)
            enc_m = ae.encode(x.flip(3)) if mirror else None

            def decode(code):
                out = ae.decode(enc, code)[-1].float()
                if enc_m is not None:
                    out = (out + ae.decode(enc_m, code)[-1].float().flip(3)) * 0.5
                return out.clamp(-1, 1)
            rec = decode(code_from_indices(y, attrs))
        # PSNR at model resolution on the 0..255 scale, per image then averaged.
        mse_img = ((rec - x) ** 2).flatten(1).mean(1)
        sq_err += float(mse_img.sum())
        psnr_sum += float((10 * torch.log10(4.0 / mse_img.clamp_min(1e-10))).sum())
        if lat_dis is not None:
            with ctx:
                lat_pred = predict_indices(lat_dis(enc[-1 - n_skip]).float(), attrs)
            lat_correct += (lat_pred == y).sum(0).cpu()
        clf_correct += (read == y).sum(0).cpu()
        ref_pred = predict_indices(classifier(rec), attrs)
        for j, a in enumerate(attrs):
            if j not in chosen:
                continue
            for shift in range(1, a.n):
                y2 = y.clone()
                y2[:, j] = (y[:, j] + shift) % a.n
                code = code_from_indices(y2, attrs)
                if (at_range_ends or strength != 1.0) and a.is_binary:
                    off = sum(b.n for b in attrs[:j])
                    hi, lo = (a.range[1], a.range[0]) if at_range_ends else (strength, 1.0 - strength)
                    alpha = torch.where(y2[:, j] == 1, torch.tensor(hi, device=code.device),
                                        torch.tensor(lo, device=code.device)).to(code.dtype)
                    code[:, off] = 1 - alpha
                    code[:, off + 1] = alpha
                with ctx:
                    out = decode(code)
                pred = predict_indices(classifier(out), attrs)
                swap_ok[j] += int((pred[:, j] == y2[:, j]).sum())
                # the edit as the paste-back applies it: the input plus (edited - reconstructed)
                pasted = predict_indices(classifier((x + out - rec).clamp(-1, 1)), attrs)
                paste_ok[j] += int((pasted[:, j] == y2[:, j]).sum())
                swap_n[j] += len(y2)
                if k > 1:
                    mask = torch.ones(k, dtype=torch.bool, device=pred.device)
                    mask[j] = False
                    others_ok[j] += int((pred[:, mask] == ref_pred[:, mask]).all(1).sum())
                    others_n[j] += len(y2)
    ae.train(ae_mode)
    swap = (swap_ok.double() / swap_n.clamp_min(1)).tolist()
    paste = (paste_ok.double() / swap_n.clamp_min(1)).tolist()
    others = (others_ok.double() / others_n.clamp_min(1)).tolist() if k > 1 else [1.0] * k
    clf_acc = [float(c) / max(1, n) for c in clf_correct.tolist()]
    lat = (lat_correct.double() / max(1, n)).tolist()
    attrs, swap, paste, others, clf_acc, lat = ([x[j] for j in chosen] for x in (attrs, swap, paste, others, clf_acc, lat))
    out = {
        "n_images": n,
        "mse": sq_err / max(1, n),
        "psnr": psnr_sum / max(1, n),
        "swap_accuracy": {a.name: round(v, 4) for a, v in zip(attrs, swap)},
        "swap_mean": round(float(np.mean(swap)), 4),
        "swap_min": round(float(np.min(swap)), 4),
        "paste_swap_accuracy": {a.name: round(v, 4) for a, v in zip(attrs, paste)},
        "paste_swap_mean": round(float(np.mean(paste)), 4),
        "others_unchanged": {a.name: round(v, 4) for a, v in zip(attrs, others)},
        "others_unchanged_mean": round(float(np.mean(others)), 4),
        "classifier_accuracy": {a.name: round(c, 4) for a, c in zip(attrs, clf_acc)},
    }
    if lat_dis is not None:
        out["lat_dis_accuracy"] = {a.name: round(v, 4) for a, v in zip(attrs, lat)}
        out["lat_dis_accuracy_mean"] = round(float(np.mean(lat)), 4)
    out["mse"] = round(out["mse"], 6)
    out["psnr"] = round(out["psnr"], 3)
    return out


# ----------------------------------------------------------------------------------------------
# preview grid

@torch.no_grad()
def preview_grid(ae, attrs: Sequence[Attribute], images, labels: np.ndarray, device, pad: int = 2) -> np.ndarray:
    """uint8 RGB grid: one row per face — original, reconstruction, then each attribute flipped
    (binary: 1 - y; multi-valued: the next value)."""
    mode = ae.training
    ae.eval()
    x = to_input(np.ascontiguousarray(images), device)
    y = torch.from_numpy(np.ascontiguousarray(labels)).to(device)
    enc = ae.encode(x)
    cols = [np.ascontiguousarray(images), to_uint8(ae.decode(enc, code_from_indices(y, attrs))[-1])]
    for j, a in enumerate(attrs):
        y2 = y.clone()
        y2[:, j] = (y[:, j] + 1) % a.n
        cols.append(to_uint8(ae.decode(enc, code_from_indices(y2, attrs))[-1]))
    ae.train(mode)
    n, s = len(images), images.shape[1]
    grid = np.full((n * (s + pad) + pad, len(cols) * (s + pad) + pad, 3), 255, np.uint8)
    for r in range(n):
        for c, col in enumerate(cols):
            y0, x0 = pad + r * (s + pad), pad + c * (s + pad)
            grid[y0:y0 + s, x0:x0 + s] = col[r]
    return grid


def write_png(path, rgb: np.ndarray) -> None:
    """Write a PNG atomically."""
    import cv2
    path = Path(path)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_bytes_atomic(path, buf.tobytes())



# ----------------------------------------------------------------------------------------------
# command line

#: what the JSON's figures mean (--help)
FIGURES_HELP = """figures in the JSON (all but psnr are shares of the validation images, per attribute and their _mean):
  psnr                  reconstruction PSNR in dB at the model's resolution (the plain decode against the input)
  swap_accuracy         the edit read as asked: each image decoded with one attribute switched to the value
                        it does not have (binary: alpha = 1 - y, see --at-range-ends, --strength), read by the
                        classifier (the model's own, or --classifier's)
  paste_swap_accuracy   the same, with the edit laid on the input as the app's paste-back lays it
                        (input + edited - reconstruction)
  others_unchanged      the classifier's reading of every other attribute is the same on the edit as on the
                        reconstruction: the edit changed only what it was asked to
  classifier_accuracy   the classifier's reading of the input against the data's labels
  lat_dis_accuracy      the latent discriminator's reading of the attribute from the latent code (where the
                        model file holds it; near chance is what the training aims at)
  measured, not_measured  the attributes the data labels (measured) and the others (decoded at the
                        classifier's reading of each image, not scored)
The classifier took part in making the model where it is the model's own: read the figures beside an
independent judge's (python -m training.judge, bench/edit_judge.py)."""


def _parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="python -m training.evaluation",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Measure a .fader model on the validation split (swap accuracy, "
                                   "others unchanged, PSNR) and print JSON.",
                       epilog=FIGURES_HELP)
    p.add_argument("--model", required=True, help="the .fader model to measure")
    p.add_argument("--data", required=True, action="append",
                   help="a data source as for fader-train (labeled folder, CSV table, CelebA folder); repeatable")
    p.add_argument("--classifier", help="a .fader file whose classifier is used instead of the model's own")
    p.add_argument("--val-size", type=int, default=None, help="use at most N validation images (default: all)")
    p.add_argument("--val-list", default=None, metavar="FILE",
                   help="measure on exactly these images: a text file with one per line (CelebA: file names; "
                        "other data: paths inside the data folder), e.g. docs/default_model/val_ids.txt")
    p.add_argument("--align", action="store_true", help="detect and align faces (data that are ordinary photos)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--cache-dir", default=None, help="preprocessing cache folder (default $FADER_CACHE_DIR or ~/.cache/fader-desktop/training)")
    p.add_argument("--seed", type=int, default=None,
                   help="hold-out seed for data without a split (default: the one the model's training split "
                        "with, as it records it)")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    p.add_argument("--write-val-list", default=None, metavar="FILE",
                   help="also write the paths of the images measured to this file, one per line (as a run's "
                        "val_files.txt; --val-list reads it)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the files of --out and --write-val-list if they exist (without this, an existing "
                        "file is refused before the measurement)")
    p.add_argument("--at-range-ends", action="store_true",
                   help="swap binary attributes to the ends of their slider ranges instead of 1 - y")
    p.add_argument("--strength", type=float, default=1.0, metavar="S",
                   help="swap binary attributes to slider value S (yes) or 1 - S (no); default 1 = 1 - y")
    return p


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def measure_model(model_path, data, classifier_path=None, val_size=None, align=False, device="auto",
                  cache_dir=None, seed: Optional[int] = None, progress: bool = False, at_range_ends: bool = False,
                  strength: float = 1.0, val_list=None, write_list=None, overwrite: bool = False) -> dict:
    """Open a model and data, build/open the cache, and evaluate on the validation split as the
    model's training drew it (the split rule, seed and --val-size it records; `seed` another seed)
    or on the images named in the `val_list` file. `write_list`: a file to write the measured
    images' paths to (checked before the measurement; an existing one only with `overwrite`)."""
    from core.engine import resolve_device
    from core.model_file import load_model
    from .cache import open_cache
    from .datasets import listed_indices
    if val_list is not None and val_size is not None:
        raise FaderError("give either --val-size or --val-list, not both")
    if write_list is not None:
        _check_writable(write_list, "--write-val-list", overwrite, [model_path, classifier_path, val_list, *data])
    dev = resolve_device(device)
    model = load_model(model_path)
    clf_model = load_model(classifier_path) if classifier_path else model
    if clf_model.classifier is None:
        raise FaderError(f"{classifier_path or model_path}: has no classifier; give one with --classifier")
    if [a.name for a in clf_model.attributes] != [a.name for a in model.attributes]:
        raise FaderError(f"{classifier_path}: its classifier's attributes differ from the model's")
    attrs = model.attributes
    ds, respelled, notes = labelled_data(data, attrs)
    by_name = {a.name: j for j, a in enumerate(attrs)}
    for a in ds.attributes:
        b = attrs[by_name[a.name]]
        if a.n != b.n:
            raise FaderError(f"attribute {a.name!r} has {a.n} values in the data but {b.n} in the model")
    measured = [by_name[a.name] for a in ds.attributes]
    training = (model.meta or {}).get("training") or {}
    warning, whole = "", None
    if val_list is not None:
        try:
            names = Path(val_list).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise FaderError(f"{val_list}: cannot read the image list ({e})") from None
        val_idx = listed_indices(ds, names, str(val_list))
        if len(val_idx) == 0:
            raise FaderError(f"{val_list}: lists no images")
        split = f"the {len(val_idx)} images listed in {val_list}"
    else:
        val_idx, split, warning, whole = _model_split(ds, training, val_size, seed, model.image_size, align,
                                                      cache_dir, progress)
    if val_list is not None or whole is None:
        cache = open_cache([ds.items[i].path for i in val_idx], model.image_size, align, cache_dir, progress=progress)
        keep = np.flatnonzero(cache.valid)
        if len(keep) == 0:
            raise FaderError(_none_readable(cache, [ds.items[i].path for i in val_idx],
                                            "listed" if val_list is not None else "validation"))
        images = np.ascontiguousarray(cache.images[keep])
        val_idx = val_idx[keep]
    else:   # drawn among the usable images of the whole data's cache
        cache = whole
        images = np.ascontiguousarray(cache.images[val_idx])
    if len(images) == 0:
        raise FaderError(f"{split}: no usable images to measure")
    classifier = clf_model.classifier.to(dev)
    # the attributes the data do not label: the classifier's reading of each image, taken by evaluate
    labels = np.zeros((len(val_idx), len(attrs)), np.int64)
    labels[:, measured] = ds.labels[val_idx]
    ae = model.autoencoder.to(dev).to(memory_format=torch.channels_last)
    t0 = time.time()
    mirror = bool(model.meta.get("mirror_decode", False))
    res = evaluate(ae, classifier, attrs, images, labels, dev, at_range_ends=at_range_ends,
                   strength=strength, mirror=mirror, measured=measured, read_unmeasured=True)
    res["measured"] = [attrs[j].name for j in measured]
    if respelled:   # what the data call them: the figures are under the model's names
        res["data_attribute_names"] = respelled
    res["not_measured"] = [a.name for j, a in enumerate(attrs) if j not in measured]
    if res["not_measured"]:
        res["not_measured_why"] = ("not labelled by the data: decoded at the classifier's prediction for each image, "
                                   "not swapped and not scored")
    res["mirror_decode"] = mirror
    res["swap_protocol"] = ("slider at the range end" if at_range_ends else "alpha = 1 - y" if strength == 1.0
                            else f"slider at {strength:g} (yes) / {1 - strength:g} (no)")
    res.update({"model": str(model_path), "data": ds.description, "split": split,
                "skipped": cache.skipped, "seconds": round(time.time() - t0, 1),
                "classifier": str(classifier_path or model_path)})
    if warning:
        res["split_warning"] = warning
    if notes:
        res["data_notes"] = notes
    if write_list is not None:
        text = "".join(ds.items[i].path + "\n" for i in val_idx)
        try:
            write_bytes_atomic(write_list, text.encode("utf-8", "surrogateescape"))
        except OSError as e:
            raise FaderError(f"--write-val-list {write_list}: cannot write it ({os_reason(e)})") from None
    return res


def labelled_data(data, attrs) -> tuple:
    """(dataset, {data's name: model's name}, notes): the data opened with the model's attributes
    it labels, in the model's order, each named as the model names it: all of them where it has them
    (a CSV table, CelebA), else those it has (a labeled folder defines the one named after it; a
    fine-tune's data labels only some of its model's attributes). A data attribute spelled as a
    model's in another letter case or with spaces for underscores (a folder `smiling` for `Smiling`,
    a column `Mouth slightly open`) is taken as the model's, by fader-train's own matching
    (training.datasets.model_spelling); the dict names each so taken. The notes name a data attribute
    left out whose name is near one of the model's ('Smilling'). The data are opened once, with every
    attribute they label (a table's columns of many values too); where that fails (a column that is no
    label), with the model's attributes, as before: only the columns read are checked."""
    from dataclasses import replace
    from core.attributes import did_you_mean
    from .datasets import model_spelling, open_dataset, select_attributes
    names = [a.name for a in attrs]
    try:
        whole = open_dataset(data, None, every_column=True)
    except FaderError:   # the error, or the data, as the model's attributes alone open them
        return open_dataset(data, ",".join(names)), {}, []
    own = whole.attributes
    if set(names) <= {x.name for x in own}:
        return select_attributes(whole, names), {}, []
    as_model = {x.name: y.name for x, y in zip(own, model_spelling(own, names, "model", lambda _: None))}
    of_model = {m: d for d, m in as_model.items() if m in names}
    if not of_model:
        raise FaderError(f"the data label none of the model's attributes ({', '.join(names)}); they label "
                         + ", ".join(d + did_you_mean(d, names) for d in as_model))
    ds = select_attributes(whole, [of_model[n] for n in names if n in of_model])
    left = [n for n in names if n not in of_model]
    # a column misspelt ('Smilling'): said, not guessed
    near = {d: did_you_mean(d, left) for d in as_model if as_model[d] not in names}
    notes = [f"the data's attribute {d!r} is none of the model's{why}, so it is not measured; name it as the "
             "model does to measure it" for d, why in near.items() if why]
    ds.attributes = [replace(a, name=as_model[a.name]) for a in ds.attributes]
    return ds, {d: m for d, m in as_model.items() if m in names and d != m}, notes


def _none_readable(cache, paths: list, what: str) -> str:
    """'none of the 2 listed images could be read: /x/a.jpg (truncated), /x/b.jpg (…)'."""
    reasons = cache.reasons or {}
    shown = [f"{paths[i]} ({reasons.get(i, 'unreadable')})" for i in range(min(3, len(paths)))]
    more = f", … ({len(paths)} in all)" if len(paths) > 3 else ""
    n = len(paths)
    return (f"none of the {n} {what} images could be read: " if n > 1 else f"the {what} image could not be read: ") \
        + ", ".join(shown) + more


def _check_writable(path, option: str, overwrite: bool = False, inputs=()) -> None:
    """Refuse a file the command is to write where it cannot be (no such folder, a folder by that
    name, a folder not writable), before the measurement (it was a traceback after it); a file
    already there without `overwrite` (it may be the user's own: it was replaced without a word),
    and one of the files read (`inputs`) in any case."""
    from core.atomic_write import check_writable, same_file
    p = Path(path)
    for given in inputs:
        if given is not None and p.exists() and same_file(p, Path(given)):
            raise FaderError(f"{option} {path}: it is the file {given} that the measurement reads; choose another")
    if p.is_file() and not overwrite:
        raise FaderError(f"{option} {path}: the file exists; choose a new file, or give --overwrite to replace it")
    check_writable(path, option)


def _model_split(ds, training: dict, val_size, seed: Optional[int], size: int, align: bool, cache_dir,
                 progress) -> tuple:
    """The validation images of the model's training, drawn again: (indices, what they are, a
    warning or "", the whole data's cache or None). A model of this version records its split
    (training.split_rule, split_seed, val_size as given to fader-train); `seed` replaces its seed.
    One that records no split seed: its rule (none recorded: the hold-out by hash of the runs before
    the split by value), its recipe's seed or 0 (a --continue run split with the command line's
    --seed, not the recipe's it took from its model) and the default or the run's count of
    validation images as --val-size, tried against the training files it recorded
    (train_files_sha1). By value, the split is drawn among the usable images, as the trainer drew
    it, which takes the whole data's cache. `val_size` keeps at most that many of them (the first
    by hash); CelebA's official split: that many of split 1."""
    from .cache import open_cache
    from .datasets import (SPLIT_BY_VALUE, _official_splits, recorded_split_params, recorded_split_rule,
                           split_dataset, split_description, train_files_sha1, user_data)
    params = recorded_split_params(training)
    rule = params.rule if params is not None else recorded_split_rule(training)
    if params is not None:
        tries = [(params.val_size, params.seed if seed is None else seed)]
    else:
        recipe = (training.get("hyper_parameters") or {}).get("seed")
        seeds = [seed] if seed is not None else list(dict.fromkeys(
            [recipe, 0] if isinstance(recipe, int) and not isinstance(recipe, bool) else [0]))
        n_val = training.get("n_val")
        sizes = [None] + ([n_val] if isinstance(n_val, int) and n_val > 0 else [])
        tries = [(k, s) for s in seeds for k in sizes]
    official = _official_splits(ds) is not None
    if official or rule != SPLIT_BY_VALUE or not user_data(ds):
        k, s = tries[0]
        if params is None or official:
            val = split_dataset(ds, val_size, s, rule=rule)[1]   # as before: CelebA's split 1, or a hold-out of val_size
        else:   # a pack: the hold-out of all images the run drew
            val = _at_most(ds, split_dataset(ds, k, s, rule=rule)[1], val_size, s)
        return val, split_description(ds, val, rule), "", None
    paths = [it.path for it in ds.items]
    cache = open_cache(paths, size, align, cache_dir, progress=progress)
    want = training.get("train_files_sha1")
    first = found = None
    for k, s in tries:
        train, val = split_dataset(ds, k, s, usable=cache.valid, rule=rule)
        first = first or (val, s)
        if want is None or train_files_sha1(paths, train) == want:
            found = (val, s)
            break
    warning = ""
    if found is None:
        why = ["other data", "a run with --exclude"]
        if params is None:
            why.append("another --val-size or --seed")
        elif seed is not None and seed != params.seed:
            why.append(f"--seed {seed} where the run split with {params.seed}")
        warning = ("the model's validation images could not be drawn again (its training images differ from these "
                   f"data's: {', '.join(why[:-1])} or {why[-1]}); where these are the data it trained on, some images "
                   "measured may be training images: give --val-list RUN_FOLDER/val_files.txt to measure on the run's own")
    val, s = found or first
    val = _at_most(ds, val, val_size, s)
    what = split_description(ds, val, rule)
    return val, (what + ", as the model's training drew it" if not warning else what), warning, cache


def _at_most(ds, val: np.ndarray, val_size, seed: int) -> np.ndarray:
    """The first `val_size` of `val` by hash (all where None), as CelebA's validation images are cut."""
    from .datasets import _hash_order
    return val if val_size is None or val_size >= len(val) else np.sort(_hash_order(ds, val, seed)[:val_size])


def main(argv: Optional[list] = None) -> int:
    """Entry point of `python -m training.evaluation`."""
    with TorchThreads() as threads:   # the caller's count put back: it may be called in-process
        return _main(argv, threads)


def _main(argv, threads: TorchThreads) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.at_range_ends and args.strength != 1.0:
            raise FaderError("give either --at-range-ends or --strength, not both")
        if not 0.0 < args.strength <= 20.0:
            raise FaderError(f"--strength must be in (0, 20], got {args.strength}")
        if args.val_size is not None and args.val_size < 1:
            raise FaderError(f"--val-size must be a positive integer, got {args.val_size}")
        if args.out:   # before the measurement, not a traceback after it
            _check_writable(args.out, "--out", args.overwrite,
                            [args.model, args.classifier, args.val_list, *args.data])
            if args.write_val_list and Path(args.out).absolute() == Path(args.write_val_list).absolute():
                raise FaderError("give --out and --write-val-list two different files")
        threads.set(usable_cores())
        res = measure_model(args.model, args.data, args.classifier, args.val_size, args.align,
                            args.device, args.cache_dir, args.seed, progress=stderr_is_terminal(),
                            at_range_ends=args.at_range_ends, strength=args.strength, val_list=args.val_list,
                            write_list=args.write_val_list, overwrite=args.overwrite)
    except FaderError as e:
        print(f"python -m training.evaluation: error: {e}", file=sys.stderr)
        return 2
    if res.get("split_warning"):
        print(f"python -m training.evaluation: warning: {res['split_warning']}", file=sys.stderr)
    for own, name in (res.get("data_attribute_names") or {}).items():
        print(f"python -m training.evaluation: the data's attribute {own!r} is the model's {name!r}", file=sys.stderr)
    for note in res.get("data_notes") or []:
        print(f"python -m training.evaluation: {note}", file=sys.stderr)
    if res.get("not_measured"):
        print(f"python -m training.evaluation: measured {', '.join(res['measured'])}; left out "
              f"{', '.join(res['not_measured'])} (not labelled by the data)", file=sys.stderr)
    text = json.dumps(res, indent=1, sort_keys=True)
    print(text)
    if args.out:
        try:
            write_bytes_atomic(args.out, (text + "\n").encode("utf-8"))
        except OSError as e:
            print(f"python -m training.evaluation: error: --out {args.out}: cannot write it ({os_reason(e)})",
                  file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
