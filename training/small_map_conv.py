"""Faster CPU kernels for convolutions whose output is only a few pixels.

The latent discriminator and the classifiers end in 4x4/stride-2 convolutions that shrink a
4x4 or 2x2 map to 2x2 or 1x1 with 256-512 channels. oneDNN handles these tiny maps badly: on
this project's CPU their backward pass took over 40% of a training iteration (bench/train_speed.py
profile), several times the cost of the same arithmetic done as one matrix product. Here such
a convolution is computed as im2col + one GEMM. The parameters and the function are unchanged,
so state dicts, the reference checkpoints and the model files are unaffected; results differ
from ``nn.Conv2d`` only by float rounding.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Output maps with at most this many pixels take the GEMM path (measured: 1x1 and 2x2 outputs
# win clearly; from 4x4 up oneDNN is as fast or faster).
MAX_GEMM_OUTPUT_PIXELS = 4


def output_size(conv: nn.Conv2d, h: int, w: int) -> tuple:
    """(ho, wo) of `conv` on an h x w input (dilation 1)."""
    return tuple((s + 2 * p - k) // st + 1 for s, p, k, st in zip((h, w), conv.padding, conv.kernel_size, conv.stride))


def live_taps_window(conv: nn.Conv2d, h: int, w: int) -> tuple:
    """(ph, pw, hh, ww) for a 1x1 output on an h x w input: the one window reads input rows
    -ph..kh-ph-1, so kernel taps ph..ph+hh-1 (x pw..pw+ww-1) lie over input rows 0..hh-1 (x cols
    0..ww-1) and every other tap only ever multiplies padding."""
    (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
    return ph, pw, min(h, kh - ph), min(w, kw - pw)


def live_taps_of(weight: torch.Tensor, window: tuple) -> torch.Tensor:
    """The live taps of an (o, c, kh, kw) tensor as (o, hh*ww*c), in channels-last tap order."""
    ph, pw, hh, ww = window
    return weight.permute(0, 2, 3, 1)[:, ph:ph + hh, pw:pw + ww, :].reshape(weight.size(0), -1)


def live_taps_input(x: torch.Tensor, window: tuple) -> torch.Tensor:
    """The input pixels under the live taps, (n, hh*ww*c) in the same order (no copy for a
    channels-last input)."""
    _, _, hh, ww = window
    return x[:, :, :hh, :ww].permute(0, 2, 3, 1).reshape(x.size(0), -1)


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that switches to a matrix product when its output map is tiny (CPU only)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return super().forward(x)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph, pw = self.padding
        ho, wo = output_size(self, h, w)
        if ho < 1 or wo < 1 or ho * wo > MAX_GEMM_OUTPUT_PIXELS:
            return super().forward(x)
        o = self.out_channels
        w_ = self.weight
        if ho == 1 and wo == 1:
            return self._one_pixel(x)
        k = kh * kw
        if torch.get_num_threads() > 1:
            # im2col as a view (pad, then sliding windows): F.unfold and its backward F.fold ran
            # 1.1-2.4x slower with two threads than with one on these maps; this path's backward
            # (unfold_backward) scales, but with one thread it is the slower of the two (measured).
            win = F.pad(x, (pw, pw, ph, ph)).unfold(2, kh, sh).unfold(3, kw, sw)  # (n, c, ho, wo, kh, kw)
        else:
            win = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
            win = win.reshape(n, c, kh, kw, ho, wo).permute(0, 1, 4, 5, 2, 3)   # same view layout
        if w_.is_contiguous(memory_format=torch.channels_last) and not w_.is_contiguous():
            # Read channels-last weights as (o, kh*kw*c) views, so that the weight gradient comes
            # back in the parameter's own layout (no strided copy of it per step).
            wm = w_.permute(0, 2, 3, 1).reshape(o, k * c)
            cols = win.permute(0, 2, 3, 4, 5, 1).reshape(n * ho * wo, k * c)
        else:
            wm = w_.reshape(o, c * k)
            cols = win.permute(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * k)
        # Weight on the left: its gradient (grad @ cols) then comes out contiguous in wm's
        # layout; with cols @ wm.t() it would come out transposed and be copied every step.
        out = torch.mm(wm, cols.t()).t()
        if self.bias is not None:
            out = out + self.bias
        # (n, ho, wo, o) viewed as NCHW is channels-last in memory.
        return out.reshape(n, ho, wo, o).permute(0, 3, 1, 2)

    def _one_pixel(self, x: torch.Tensor) -> torch.Tensor:
        """A 1x1 output: one window, so only the kernel taps over the input (not the padding) count.

        On the latent discriminator's 2x2 -> 1x1 layer that is 4 of 16 taps: the GEMM shrinks 4x and
        a channels-last input needs no im2col at all. Forward + backward at batch 32, 512 channels,
        2 threads (measured): 14.4 -> 11.8 ms with the weight gradient and 13.1 -> 3.5 ms without for
        NCHW weights (the trainer's), 13.4 -> 7.0 / 11.2 -> 2.4 ms for channels-last ones, even with
        the strided copy of the live taps each call.
        """
        window = live_taps_window(self, x.size(2), x.size(3))
        out = torch.mm(live_taps_of(self.weight, window), live_taps_input(x, window).t()).t()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(x.size(0), 1, 1, self.out_channels).permute(0, 3, 1, 2)


def use_small_map_convs(module: nn.Module) -> nn.Module:
    """Switch every plain ``nn.Conv2d`` in ``module`` (groups 1, dilation 1) to SmallMapConv2d, in place.

    The module keeps its parameters and state-dict keys; convolutions on large maps behave
    exactly as before.
    """
    for m in module.modules():
        if type(m) is nn.Conv2d and m.groups == 1 and m.dilation == (1, 1) \
                and m.padding_mode == "zeros" and isinstance(m.padding, tuple):
            m.__class__ = SmallMapConv2d
    return module
