"""Train a one-pixel-output convolution on only the kernel taps its input reaches.

The latent discriminator's last convolution maps the 2x2 latent map (64 px models) to 1x1 with a
4x4 kernel and padding 1: 12 of its 16 taps only ever multiply padding. Their gradient is exactly
zero, so Adam never moves them (its moments stay zero) and they never change the output. Storing
them as a trainable parameter still costs every step: the backward pass writes a full-size weight
gradient, gradient clipping and Adam read and write 4x the data that matters (on the 512x512 layer,
about 11 ms of a ~230 ms CPU iteration went to the gradient alone).

During training such a layer is replaced by ``LiveTapConv2d``: a matrix product over the live
taps, with the dead ones kept as a constant buffer. Its state dict is the convolution's own (the
full ``weight``), and ``optimizer_state_full`` / ``optimizer_state_live`` convert Adam's state
between the two shapes, so checkpoints keep the ordinary layout and resume across versions.
"""
from __future__ import annotations

import copy
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .small_map_conv import live_taps_input, live_taps_of, live_taps_window, output_size


class LiveTapConv2d(nn.Module):
    """A ``nn.Conv2d`` fixed to one input size whose output is 1x1, trained on its live taps only."""

    def __init__(self, conv: nn.Conv2d, in_size: Tuple[int, int]):
        super().__init__()
        self.in_size = tuple(in_size)
        self.out_channels, self.in_channels = conv.out_channels, conv.in_channels
        self.taps = live_taps_window(conv, *self.in_size)
        full = conv.weight.detach()
        self.register_buffer("full_weight", full.clone(), persistent=False)
        self.weight = nn.Parameter(live_taps_of(full, self.taps).clone())
        self.bias = conv.bias
        self.register_state_dict_post_hook(_full_weight_in_state_dict)
        self.register_load_state_dict_pre_hook(_live_weight_from_state_dict)

    def to_full(self, live: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """`base` (full shape) with its live taps replaced by `live`."""
        ph, pw, hh, ww = self.taps
        out = base.detach().clone()
        out.permute(0, 2, 3, 1)[:, ph:ph + hh, pw:pw + ww, :] = \
            live.detach().reshape(self.out_channels, hh, ww, self.in_channels)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        if (h, w) != self.in_size:
            raise ValueError(f"LiveTapConv2d was built for {self.in_size[0]}x{self.in_size[1]} inputs, got {h}x{w}")
        out = F.linear(live_taps_input(x, self.taps), self.weight, self.bias)
        return out.reshape(x.size(0), self.out_channels, 1, 1)


def _full_weight_in_state_dict(module: LiveTapConv2d, state_dict, prefix, local_metadata):
    state_dict[prefix + "weight"] = module.to_full(module.weight, module.full_weight)


def _live_weight_from_state_dict(module: LiveTapConv2d, state_dict, prefix, local_metadata, strict,
                                 missing_keys, unexpected_keys, error_msgs):
    key = prefix + "weight"
    full = state_dict.get(key)
    if full is not None and full.shape == module.full_weight.shape:
        module.full_weight.copy_(full)
        state_dict[key] = live_taps_of(full, module.taps)


def use_live_taps(seq: nn.Sequential, in_size: Tuple[int, int]) -> nn.Sequential:
    """Replace, in place, each plain convolution in `seq` (nested Sequentials in order) whose output
    is 1x1 for inputs of `in_size` and whose kernel reaches past the input, by a LiveTapConv2d."""
    size = tuple(in_size)

    def walk(parent: nn.Module):
        nonlocal size
        for name, m in parent.named_children():
            if isinstance(m, nn.Conv2d):
                out = output_size(m, *size)
                _, _, hh, ww = live_taps_window(m, *size)
                dead_taps = (hh, ww) != m.kernel_size
                if out == (1, 1) and dead_taps and m.groups == 1 and m.dilation == (1, 1) \
                        and m.padding_mode == "zeros":
                    setattr(parent, name, LiveTapConv2d(m, size))
                size = out
            elif isinstance(m, nn.Sequential):
                walk(m)
    walk(seq)
    return seq


def _live_layers(module: nn.Module) -> Dict[int, LiveTapConv2d]:
    """Index (in module.parameters() order) of each LiveTapConv2d weight."""
    owner = {id(m.weight): m for m in module.modules() if isinstance(m, LiveTapConv2d)}
    return {i: owner[id(p)] for i, p in enumerate(module.parameters()) if id(p) in owner}


def optimizer_state_full(opt_state: dict, module: nn.Module) -> dict:
    """`opt.state_dict()` of an optimizer over `module.parameters()`, with the live-tap weights'
    per-parameter tensors (Adam's moments) widened to the convolution's full shape (zeros at the
    dead taps, which is what they are when the full weight is trained)."""
    return _convert(opt_state, module, widen=True)


def optimizer_state_live(opt_state: dict, module: nn.Module) -> dict:
    """The inverse of `optimizer_state_full`: narrow full-shape state to the live taps."""
    return _convert(opt_state, module, widen=False)


def _convert(opt_state: dict, module: nn.Module, widen: bool) -> dict:
    layers = _live_layers(module)
    if not layers:
        return opt_state
    out = copy.copy(opt_state)
    out["state"] = dict(opt_state["state"])
    params = [i for g in opt_state["param_groups"] for i in g["params"]]
    for pos, layer in layers.items():
        key = params[pos]
        st = out["state"].get(key)
        if st is None:
            continue
        st = dict(st)
        for k, v in st.items():
            if not torch.is_tensor(v) or v.dim() == 0:
                continue
            if widen and v.shape == layer.weight.shape:
                st[k] = layer.to_full(v, torch.zeros_like(layer.full_weight, dtype=v.dtype))
            elif not widen and v.shape == layer.full_weight.shape:
                st[k] = live_taps_of(v, layer.taps).clone()
        out["state"][key] = st
    return out
