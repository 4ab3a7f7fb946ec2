"""Widen a run's decoder (`--dec-min-fm` on resume) so that it first decodes exactly as before.

A wider decoder trained from scratch would need the whole schedule again; widened in place it
keeps everything the run learned and gains room for detail. Each new feature map reads its
inputs through freshly initialised weights and is written to the old maps through zero
weights, so the network computes the same function; training then grows the new maps in.
"""
from __future__ import annotations

import torch

from core.errors import FaderError
from core.networks import ArchConfig, AutoEncoder, decoder_widths


def _layer_widths(key: str, old: ArchConfig, new: ArchConfig):
    """(old h-input, new h-input, old output, new output) maps of the decoder layer `key` belongs to."""
    i = int(key.split(".")[1])
    (h_old, o_old), (h_new, o_new) = decoder_widths(old)[i], decoder_widths(new)[i]
    return h_old, h_new, o_old, o_new


def _widen_tensor(key: str, src: torch.Tensor, dst: torch.Tensor, old: ArchConfig, new: ArchConfig,
                  transposed: bool) -> torch.Tensor:
    """`dst` (the new shape, new entries already filled) with `src` placed where it belongs."""
    h_old, h_new, o_old, o_new = _layer_widths(key, old, new)
    dst = dst.clone()
    if src.dim() == 1:  # batch norm parameter or statistic: one entry per output map
        dst[:o_old] = src
        return dst
    in_dim, out_dim = (0, 1) if transposed else (1, 0)
    rest = src.shape[in_dim] - h_old  # the attribute code planes and skip planes after h

    def sl(t, d_in, d_out):
        ix = [slice(None)] * t.dim()
        ix[in_dim], ix[out_dim] = d_in, d_out
        return tuple(ix)
    dst[sl(dst, slice(0, h_old), slice(0, o_old))] = src[sl(src, slice(0, h_old), slice(0, o_old))]
    dst[sl(dst, slice(h_new, h_new + rest), slice(0, o_old))] = src[sl(src, slice(h_old, h_old + rest), slice(0, o_old))]
    # the new input maps must not reach the old outputs, or the function would change
    dst[sl(dst, slice(h_old, h_new), slice(0, o_old))] = 0
    return dst


def widen_autoencoder_state(state: dict, old: ArchConfig, new: ArchConfig, seed: int = 0) -> dict:
    """The state dict of `AutoEncoder(new)` that computes what `state` (of `AutoEncoder(old)`) does.

    Only `dec_min_fm` may differ between the architectures, and only upwards.
    """
    check_widening(old, new)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = AutoEncoder(new).state_dict()
    out = {}
    for key, t in fresh.items():
        src = state[key]
        if src.shape == t.shape:
            out[key] = src.clone()
        elif key.startswith("dec_layers."):
            transposed = new.deconv_method == "convtranspose"
            out[key] = _widen_tensor(key, src, t.to(src.dtype), old, new, transposed)
        else:
            raise FaderError(f"cannot widen the decoder: tensor {key} changed shape outside it")
    return out


def widen_adam_state(opt_state: dict, param_names: list, old_state: dict, new_state: dict,
                     old: ArchConfig, new: ArchConfig) -> dict:
    """Adam's state for the widened parameters: zero momentum for the new weights and, for their
    second moment, the mean of the tensor's old one (zero would make the first steps of the new
    weights up to ~30x larger, Adam's bias correction being long past)."""
    transposed = new.deconv_method == "convtranspose"
    out = dict(opt_state)
    out["state"] = dict(opt_state["state"])
    for idx, name in enumerate(param_names):
        st = out["state"].get(idx)
        if st is None or old_state[name].shape == new_state[name].shape:
            continue
        st = dict(st)
        for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            v = st.get(k)
            if v is None:
                continue
            fill = v.mean() if k != "exp_avg" else 0.0
            dst = torch.full(new_state[name].shape, float(fill), dtype=v.dtype)
            dst = _widen_tensor(name, v, dst, old, new, transposed)
            if v.dim() > 1:  # the zeroed links from new inputs to old outputs start like new weights
                h_old, h_new, o_old, _ = _layer_widths(name, old, new)
                in_dim, out_dim = (0, 1) if transposed else (1, 0)
                ix = [slice(None)] * dst.dim()
                ix[in_dim], ix[out_dim] = slice(h_old, h_new), slice(0, o_old)
                dst[tuple(ix)] = fill
            st[k] = dst
        out["state"][idx] = st
    return out


def check_widening(old: ArchConfig, new: ArchConfig) -> None:
    """Raise FaderError unless `new` is `old` with a wider (or equal) decoder."""
    a, b = old.to_dict(), new.to_dict()
    a.pop("dec_min_fm"), b.pop("dec_min_fm")
    if a != b:
        diff = sorted(k for k in a if a[k] != b[k])
        raise FaderError(f"cannot widen the decoder: the architectures differ in {diff}")
    if new.dec_min_fm < old.dec_min_fm:
        raise FaderError(f"--dec-min-fm {new.dec_min_fm}: the run's decoder has at least {old.dec_min_fm} "
                         "feature maps per layer; a decoder can be widened, not narrowed")
    if new.deconv_method == "pixelshuffle" and new.dec_min_fm != old.dec_min_fm:
        raise FaderError("--dec-min-fm: a pixelshuffle decoder cannot be widened in place")


def widen_checkpoint(ck: dict, dec_min_fm: int, log=print) -> dict:
    """A checkpoint (training.trainer.Trainer.state) whose auto-encoder, weight average and Adam
    state are widened to `dec_min_fm`; the discriminators and the critic are unchanged."""
    old = ArchConfig.from_dict(ck["arch"])
    new = ArchConfig.from_dict({**ck["arch"], "dec_min_fm": dec_min_fm})
    check_widening(old, new)
    if new.dec_min_fm == old.dec_min_fm:
        return ck
    ck = dict(ck)
    old_ae = ck["ae"]
    ck["ae"] = widen_autoencoder_state(old_ae, old, new)
    if ck.get("ae_ema") is not None:
        # the average's new weights start as the live network's, so both grow them alike
        ema = widen_autoencoder_state(ck["ae_ema"], old, new)
        ck["ae_ema"] = ema
    names = [n for n, _ in AutoEncoder(new).named_parameters()]
    if ck.get("opt_ae") is not None:
        ck["opt_ae"] = widen_adam_state(ck["opt_ae"], names, old_ae, ck["ae"], old, new)
    ck["arch"] = new.to_dict()
    n_old = sum(t.numel() for k, t in old_ae.items() if k.startswith("dec_layers.") and t.dim() > 1)
    n_new = sum(t.numel() for k, t in ck["ae"].items() if k.startswith("dec_layers.") and t.dim() > 1)
    log(f"decoder widened to at least {dec_min_fm} feature maps per layer: {n_old:,} -> {n_new:,} weights; "
        "it decodes as before until training grows the new maps in")
    return ck
