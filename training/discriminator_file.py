"""The discriminators a .fader model file leaves out, in a safetensors file beside it.

A .fader file holds what the app needs (auto-encoder, classifier). Continuing the training that
made it (`fader-train --continue`) also needs the networks trained against the auto-encoder: the
latent discriminator and the image critic. Started untrained, the critic pulled a continued
128 px model's reconstruction error from 0.009 to 0.035 within 30 steps and its PSNR down by
1.5-2.7 dB within 1,300 steps, while the same recipe resumed from a checkpoint (critic kept) held
its PSNR (docs/training.md). So every export writes `NAME.discriminators.safetensors` next to
`NAME.fader`, and --continue loads it when present.

Weights only: the discriminators' Adam moments rebuild within a few hundred steps and would
triple the file. The file names the auto-encoder weights it was trained against (a digest of
its parameters at half precision, so a model re-saved in float16 or with new metadata still
matches; not of the batch-norm statistics, which every export recalibrates on fresh batches),
and a file for other weights is refused rather than silently mixed in. safetensors never runs
code on load, so a hostile file can only fail the checks below.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from core.atomic_write import write_bytes_atomic
from core.attributes import counted, quoted
from core.errors import FaderError
from core.model_file import check_file, read_safetensors, with_digests

FORMAT = "fader-discriminators"
VERSION = 1
SUFFIX = ".discriminators.safetensors"
# The trainer's discriminator attributes, in the order they are stored.
NAMES = ("lat_dis", "ptc_dis", "clf_dis", "critic")
MAX_BYTES = 1 << 30


def discriminators_path(model_path) -> Path:
    """`RUN/model.fader` -> `RUN/model.discriminators.safetensors`."""
    p = Path(model_path)
    return p.with_name(p.stem + SUFFIX)


def weights_digest(autoencoder: nn.Module) -> str:
    """A digest of the auto-encoder's parameters rounded to float16 (the precision a half export
    stores, so the float32 and float16 files of one state agree). Buffers are left out: the
    batch-norm statistics are re-estimated at each export while the weights stay the same (a
    --critic-warmup-only continuation exports the same weights with new statistics)."""
    h = hashlib.sha256()
    params = dict(autoencoder.named_parameters())
    for k in sorted(params):
        t = params[k]
        h.update(k.encode("utf-8"))
        h.update(t.detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def save_discriminators(path, states: Dict[str, Optional[dict]], autoencoder: nn.Module, step: int,
                        half: bool = False) -> None:
    """Write the discriminators' state dicts (None entries skipped) atomically, tied to the
    auto-encoder weights they were trained against. FaderError if the file cannot be written."""
    from safetensors import SafetensorError
    from safetensors.torch import save
    path = Path(path)
    tensors, stored = {}, []
    for name in NAMES:
        sd = states.get(name)
        if sd is None:
            continue
        stored.append(name)
        for k, v in sd.items():
            t = v.detach().to("cpu").contiguous()
            if half and t.is_floating_point():
                t = t.half()
            tensors[f"{name}.{k}"] = t.clone()
    meta = {"format": FORMAT, "version": str(VERSION), "step": str(int(step)),
            "networks": json.dumps(stored), "autoencoder_digest": weights_digest(autoencoder)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # with the checksums a model file carries: a damaged file is refused, not trained on
        write_bytes_atomic(path, b"".join(with_digests(save(tensors, metadata=meta))))
    except OSError as e:
        raise FaderError(f"{path}: cannot write the discriminators: {e.strerror or e}") from e
    except SafetensorError as e:
        raise FaderError(f"{path}: cannot write the discriminators: {str(e).splitlines()[0][:200]}") from e


def load_discriminators(path, modules: Dict[str, Optional[nn.Module]], autoencoder: nn.Module) -> dict:
    """Load a discriminator file into `modules` (name -> module or None).

    Returns {"step": int, "loaded": [names], "fresh": {name: why}} — a network this run has but
    the file lacks, or one of another shape (e.g. another --critic-width), starts untrained.
    FaderError if the file is not a discriminator file, is damaged, or belongs to other weights.
    """
    path = Path(path)
    check_file(path, "discriminator", MAX_BYTES)
    meta, tensors = read_safetensors(path, "not a discriminator file, or damaged")
    if meta.get("format") != FORMAT:
        raise FaderError(f"{path}: not a discriminator file (format {meta.get('format')!r})")
    try:
        version, step, stored = int(meta["version"]), int(meta["step"]), json.loads(meta["networks"])
    except (KeyError, ValueError, TypeError):
        raise FaderError(f"{path}: damaged discriminator file header") from None
    if version > VERSION:
        raise FaderError(f"{path}: discriminator file version {version} is newer than this program's {VERSION}")
    if not isinstance(stored, list) or not set(stored) <= set(NAMES):
        raise FaderError(f"{path}: damaged discriminator file header (networks {stored!r})")
    if meta.get("autoencoder_digest") != weights_digest(autoencoder):
        raise FaderError(f"{path}: was saved with other auto-encoder weights than the model beside it; "
                         "remove it, or pass --fresh-discriminators to start the discriminators untrained")
    unknown = sorted(k for k in tensors if k.split(".", 1)[0] not in stored)
    if unknown:
        raise FaderError(f"{path}: {counted(len(unknown), 'unexpected tensor')}: {quoted(unknown, most=3)}")
    loaded, fresh = [], {}
    for name in NAMES:
        module = modules.get(name)
        if module is None:
            continue
        if name not in stored:
            fresh[name] = "not in the file"
            continue
        got = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        expected = module.state_dict()
        if set(got) != set(expected) or any(tuple(got[k].shape) != tuple(v.shape) for k, v in expected.items()):
            fresh[name] = "another architecture in the file"
            continue
        for k, ref in expected.items():
            t = got[k]
            if ref.is_floating_point():
                if not t.is_floating_point() or not bool(torch.isfinite(t.float()).all()):
                    raise FaderError(f"{path}: {name} tensor {k} is not finite floating point")
            got[k] = t.to(ref.dtype)
        module.load_state_dict(got, strict=True)
        loaded.append(name)
    return {"step": step, "loaded": loaded, "fresh": fresh}
