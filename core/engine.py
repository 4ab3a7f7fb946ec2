"""Inference engine: encode a face once, decode it for every slider change.

The encoder output does not depend on the attributes, so a slider move costs one decoder pass.
On CPU the decoder runs channels-last with batch-norm folded into the preceding convolution; on
CUDA it runs in half precision when that keeps the output within a small tolerance of fp32.
"""
from __future__ import annotations

import copy
import os
import threading
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from .attributes import Attribute, attribute_code, code_to_value
from .errors import FaderError
from .model_file import FaderModel
from .networks import decoder_widths

# fp16 on CUDA is used only if a probe decode stays this close to fp32 (in 0..255 units).
HALF_TOLERANCE = 1.0


def resolve_device(device: str = "auto") -> torch.device:
    """Map 'auto' | 'cpu' | 'cuda' | 'cuda:N' to a torch device, with a clear error if unavailable."""
    d = (device or "auto").lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d == "cpu":
        return torch.device("cpu")
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise FaderError("CUDA was requested (--device cuda) but no CUDA device is available; use --device cpu or auto")
        return torch.device(d)
    raise FaderError(f"unknown device {device!r}: use auto, cpu or cuda")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, else every
    core): the one count that engine, batch and training threads are sized from."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def default_threads() -> int:
    """Intra-op threads: all cores but one.

    Measured on a 2-core machine (bench/latency.py): with both cores, any other work (the GUI
    thread, image decoding, another process) makes the threads wait on each other and a ~2 MP
    slider change took 88 ms; with one thread, 13 ms.
    """
    return max(1, usable_cores() - 1)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Return an eval-only copy of a decoder/encoder Sequential stack with BatchNorm folded away."""
    m = copy.deepcopy(module).eval()
    for seq in m.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        children = list(seq.children())
        for i, bn in enumerate(children):
            if not isinstance(bn, nn.BatchNorm2d) or i == 0:
                continue
            # the BN may follow conv directly or conv + PixelShuffle
            j = i - 1
            shuffle = 1
            if isinstance(children[j], nn.PixelShuffle):
                shuffle = children[j].upscale_factor ** 2
                j -= 1
            conv = children[j]
            if not isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            shift = bn.bias - bn.running_mean * scale
            if shuffle > 1:
                scale = scale.repeat_interleave(shuffle)
                shift = shift.repeat_interleave(shuffle)
            with torch.no_grad():
                if isinstance(conv, nn.ConvTranspose2d):
                    conv.weight.mul_(scale.view(1, -1, 1, 1))
                else:
                    conv.weight.mul_(scale.view(-1, 1, 1, 1))
                bias = conv.bias * scale + shift if conv.bias is not None else shift
                conv.bias = nn.Parameter(bias.detach().clone())
            seq[i] = nn.Identity()
    return m


class CodePlaneLayer(nn.Module):
    """A decoder layer whose attribute-code planes enter as a precomputed pattern (inference).

    The planes are constant over the image, so the transposed convolution's response to them is
    a fixed pattern per code entry, mixed per face by one small matrix product; the convolution
    itself then reads only the feature maps (and skip maps), not the expanded and concatenated
    planes. Same output up to float rounding, fewer multiply-adds and no concatenation copy.
    """

    def __init__(self, layer: nn.Sequential, n_h: int, n_code: int, in_size: int):
        super().__init__()
        conv = layer[0]
        w_h, w_c, w_s = conv.weight.detach().split([n_h, n_code, conv.in_channels - n_h - n_code], 0)
        self.conv = nn.ConvTranspose2d(conv.in_channels - n_code, conv.out_channels, conv.kernel_size, conv.stride,
                                       conv.padding, conv.output_padding, conv.groups, conv.bias is not None,
                                       conv.dilation)
        with torch.no_grad():
            self.conv.weight.copy_(torch.cat([w_h, w_s], 0))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)
            unit = torch.eye(n_code, dtype=w_c.dtype, device=w_c.device)[:, :, None, None].expand(n_code, n_code, in_size, in_size)
            pattern = F.conv_transpose2d(unit.contiguous(), w_c, None, conv.stride, conv.padding, conv.output_padding,
                                         conv.groups, conv.dilation)
        # (code entry, pixels) in both layouts the output may have
        self.register_buffer("pattern_nchw", pattern.reshape(n_code, -1).contiguous())
        self.register_buffer("pattern_nhwc", pattern.permute(0, 2, 3, 1).reshape(n_code, -1).contiguous())
        self.rest = layer[1:]

    @staticmethod
    def applies(layer: nn.Module) -> bool:
        return isinstance(layer, nn.Sequential) and len(layer) > 0 and type(layer[0]) is nn.ConvTranspose2d

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        n, co, ho, wo = out.shape
        if out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous():
            out.permute(0, 2, 3, 1).reshape(n, -1).addmm_(code, self.pattern_nhwc)
        else:
            out = out.contiguous()
            out.view(n, -1).addmm_(code, self.pattern_nchw)
        return self.rest(out)


class Latent:
    """Encoder outputs of a batch of faces (only the positions the decoder reads).

    A ``mirrored`` latent also holds the encoding of each face's mirror image: its tensors have 2N
    rows, the N faces first and then their N mirror images in the same order."""

    def __init__(self, outputs: list, mirrored: bool = False):
        self.outputs = outputs
        self.mirrored = mirrored

    def __len__(self) -> int:
        n = int(self.outputs[-1].shape[0])
        return n // 2 if self.mirrored else n

    def select(self, idx) -> "Latent":
        if isinstance(idx, int):
            idx = [idx]
        idx = list(idx)
        if self.mirrored:
            n = len(self)
            idx = idx + [i + n for i in idx]
        index = torch.as_tensor(idx, dtype=torch.long, device=self.outputs[-1].device)
        return Latent([o.index_select(0, index) if o is not None else None for o in self.outputs], self.mirrored)

    def __getitem__(self, i: int) -> "Latent":
        return self.select([i])

    def plain(self) -> "Latent":
        """The faces' own encodings, without the mirror images' (itself when not mirrored)."""
        if not self.mirrored:
            return self
        return Latent([o.chunk(2)[0] if o is not None else None for o in self.outputs])

    @staticmethod
    def cat(latents: Sequence["Latent"]) -> "Latent":
        mirrored = latents[0].mirrored
        if any(l.mirrored != mirrored for l in latents):
            raise ValueError("cannot join mirrored and plain latents")
        n = len(latents[0].outputs)

        def join(k):
            if latents[0].outputs[k] is None:
                return None
            if not mirrored:
                return torch.cat([l.outputs[k] for l in latents])
            halves = [l.outputs[k].chunk(2) for l in latents]
            return torch.cat([h[0] for h in halves] + [h[1] for h in halves])
        return Latent([join(k) for k in range(n)], mirrored)


class Engine:
    """Runs a FaderModel for inference. Safe to call from one worker thread (calls are serialised)."""

    def __init__(self, model: FaderModel, device: str = "auto", threads: int | None = None):
        self.model = model
        self.device = resolve_device(device)
        self.attributes: list[Attribute] = list(model.attributes)
        self.image_size = model.config.img_size
        self._lock = threading.Lock()
        if self.device.type == "cpu":
            torch.set_num_threads(threads or default_threads())
        ae = model.autoencoder  # copied below (and put in eval mode there); the caller's model is left as is
        self._enc = fold_batchnorm(ae.enc_layers).to(self.device) if not model.config.instance_norm else copy.deepcopy(ae.enc_layers).eval().to(self.device)
        self._dec = fold_batchnorm(ae.dec_layers).to(self.device) if not model.config.instance_norm else copy.deepcopy(ae.dec_layers).eval().to(self.device)
        self._dec = self._split_code_planes(self._dec, model)
        self._clf = copy.deepcopy(model.classifier).eval().to(self.device) if model.classifier is not None else None
        self.mirror_reading = True
        # Decode each face and its mirror image and average the two (flipped back): the decoder's
        # errors are partly asymmetric, so the average reconstructs faces closer to the input
        # (+0.5 dB PSNR for the default model) and its edits carry fewer one-sided blotches.
        self.mirror_decode = bool(model.meta.get("mirror_decode", False))
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self._enc = self._enc.to(memory_format=self.memory_format)
        self._dec = self._dec.to(memory_format=self.memory_format)
        self.dtype = torch.float32
        if self.device.type == "cuda":
            self._try_half()

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _split_code_planes(dec: nn.ModuleList, model: FaderModel) -> nn.ModuleList:
        c = model.config
        widths = decoder_widths(c)
        return nn.ModuleList([
            CodePlaneLayer(layer, widths[i][0], c.n_attr, c.latent_size * 2 ** i).to(layer[0].weight.device)
            if CodePlaneLayer.applies(layer) else layer
            for i, layer in enumerate(dec)])

    def _try_half(self) -> None:
        probe = torch.rand(2, 3, self.image_size, self.image_size, device=self.device) * 2 - 1
        vals = [{}, {a.name: (1.0 if a.is_binary else [0.0] * (a.n - 1) + [1.0]) for a in self.attributes}]
        with torch.inference_mode():
            ref = self._decode_tensor(self._encode_tensor(probe), vals)
            enc16, dec16 = copy.deepcopy(self._enc).half(), copy.deepcopy(self._dec).half()
            enc32, dec32 = self._enc, self._dec
            self._enc, self._dec, self.dtype = enc16, dec16, torch.float16
            out = self._decode_tensor(self._encode_tensor(probe), vals).float()
        if float((out - ref).abs().max()) * 127.5 > HALF_TOLERANCE * 4 or float((out - ref).abs().mean()) * 127.5 > HALF_TOLERANCE:
            self._enc, self._dec, self.dtype = enc32, dec32, torch.float32

    def _to_tensor(self, crops) -> torch.Tensor:
        arr = np.asarray(crops)
        if arr.ndim == 3:
            arr = arr[None]
        s = self.image_size
        if arr.ndim != 4 or arr.shape[1:] != (s, s, 3):
            raise FaderError(f"expected face crops of shape (N, {s}, {s}, 3), got {arr.shape}")
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        x = x.permute(0, 3, 1, 2).to(self.dtype).div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=self.memory_format)

    def _encode_tensor(self, x: torch.Tensor) -> Latent:
        outs = [x]
        for layer in self._enc:
            outs.append(layer(outs[-1]))
        n_skip = self.model.config.n_skip
        keep = set(range(len(outs) - 1 - n_skip, len(outs)))
        return Latent([o if i in keep else None for i, o in enumerate(outs)])

    def _encode_maybe_mirrored(self, x: torch.Tensor) -> Latent:
        if not self.mirror_decode:
            return self._encode_tensor(x)
        lat = self._encode_tensor(torch.cat([x, x.flip(3)]))
        lat.mirrored = True
        return lat

    def _decode_tensor(self, latent: Latent, values_list) -> torch.Tensor:
        if len(values_list) != len(latent):
            raise FaderError(f"got {len(values_list)} value sets for {len(latent)} faces")
        if latent.mirrored:
            values_list = list(values_list) * 2
        y = attribute_code(self.attributes, values_list, device=self.device, dtype=self.dtype)
        enc = latent.outputs
        h = enc[-1]
        bs = h.size(0)
        n_attr = y.size(1)
        y = y.view(bs, n_attr, 1, 1)
        n_skip = self.model.config.n_skip
        for i, layer in enumerate(self._dec):
            if isinstance(layer, CodePlaneLayer):
                x = torch.cat([h, enc[-1 - i]], 1) if 0 < i <= n_skip else h
                h = layer(x, y.view(bs, n_attr))
                continue
            inp = [h, y.expand(bs, n_attr, h.size(2), h.size(3))]
            if 0 < i <= n_skip:
                inp.append(enc[-1 - i])
            h = layer(torch.cat(inp, 1))
        if latent.mirrored:
            a, b = h.chunk(2)
            h = (a + b.flip(3)) * 0.5
        return h

    # -- public API ----------------------------------------------------------------------------
    def encode(self, crops) -> Latent:
        """Encode uint8 RGB face crops (N, S, S, 3) once; the result is reused for every decode."""
        with self._lock, torch.inference_mode():
            return self._encode_maybe_mirrored(self._to_tensor(crops))

    def decode_float(self, latent: Latent, values: Sequence[Mapping] | Mapping, draft: bool = False) -> np.ndarray:
        """Decode faces at the given attribute values; float32 (N, S, S, 3) in [0, 255].

        A mirrored latent (``mirror_decode``) is decoded with its mirror images and averaged;
        ``draft`` decodes the faces alone instead (about 1.5x faster: a slider being dragged)."""
        values_list = [values] * len(latent) if isinstance(values, Mapping) else list(values)
        if draft:
            latent = latent.plain()
        with self._lock, torch.inference_mode():
            out = self._decode_tensor(latent, values_list).float()
            if not bool(torch.isfinite(out).all()):
                # weights finite in the file can still overflow (a damaged or hostile file): an
                # error, not a face quietly left unchanged or painted black
                raise FaderError(f"the model {self.model.name!r} decoded NaN or infinite values; "
                                 "its file is damaged or was not trained properly")
            out = out.add_(1.0).mul_(127.5).clamp_(0.0, 255.0)
            return out.permute(0, 2, 3, 1).contiguous().cpu().numpy()

    def decode(self, latent: Latent, values: Sequence[Mapping] | Mapping, draft: bool = False) -> np.ndarray:
        """Decode faces at the given attribute values; uint8 (N, S, S, 3)."""
        return np.rint(self.decode_float(latent, values, draft)).astype(np.uint8)

    def predict_probabilities(self, crops) -> list:
        """Per face, per attribute: the classifier's probability of each value (None without classifier).

        With ``mirror_reading`` (the default) the face and its mirror image are both read and the
        probabilities averaged: a face's attributes do not change in a mirror, the classifier's
        errors partly do."""
        if self._clf is None:
            return None
        with self._lock, torch.inference_mode():
            x = self._to_tensor(crops).float().contiguous()
            n = x.size(0)
            if self.mirror_reading:
                x = torch.cat([x, x.flip(3)])
            logits = self._clf(x).float().cpu()
        out = []
        for i in range(n):
            probs, k = {}, 0
            for a in self.attributes:
                p = torch.softmax(logits[i, k:k + a.n], 0)
                if self.mirror_reading:
                    p = (p + torch.softmax(logits[n + i, k:k + a.n], 0)) / 2
                probs[a.name] = p.tolist()
                k += a.n
            out.append(probs)
        return out

    def predict_values(self, crops) -> list:
        """The faces' own attribute values (the classifier's most likely value as a slider value).

        Hard values are used because the decoder was trained on one-hot codes, so they give the
        most faithful reconstruction. Without a classifier every attribute starts at its first value.
        """
        n = len(np.asarray(crops)) if np.asarray(crops).ndim == 4 else 1
        return self.values_from_probabilities(self.predict_probabilities(crops), n)

    def values_from_probabilities(self, probs, n: int) -> list:
        """predict_values from probabilities already read (``probs`` None: no classifier)."""
        result = []
        for i in range(n):
            vals = {}
            for a in self.attributes:
                if probs is None:
                    p = [1.0] + [0.0] * (a.n - 1)
                else:
                    p = probs[i][a.name]
                    best = int(np.argmax(p))
                    p = [1.0 if j == best else 0.0 for j in range(a.n)]
                vals[a.name] = code_to_value(a, p)
            result.append(vals)
        return result
