"""The networks of Fader Networks (Lample et al., 2017), structured like the reference code.

Module and parameter names follow facebookresearch/FaderNetworks `src/model.py` so that state
dicts of reference checkpoints load unchanged (see legacy_import.py).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Mapping

import torch
from torch import nn
import torch.nn.functional as F

from .attributes import quoted
from .errors import FaderError

DECONV_METHODS = ("convtranspose", "upsampling", "pixelshuffle")
# Upper bounds on the sizes an architecture may ask for (from a model file, a checkpoint or an
# option), checked before any layer is built: the reference uses max_fm 512, hid_dim 512 and 40
# attributes; these leave room to grow, not to allocate terabytes.
MAX_ARCH = {"img_fm": 4, "init_fm": 2048, "max_fm": 2048, "hid_dim": 8192, "n_attr": 2048}


@dataclass
class ArchConfig:
    """Architecture hyper-parameters (the reference implementation's knobs and defaults)."""

    img_size: int = 256
    img_fm: int = 3
    init_fm: int = 32
    max_fm: int = 512
    n_layers: int = 6
    n_skip: int = 0
    deconv_method: str = "convtranspose"
    instance_norm: bool = False
    enc_dropout: float = 0.0
    dec_dropout: float = 0.0
    lat_dis_dropout: float = 0.3
    hid_dim: int = 512
    n_attr: int = 0  # sum of the attributes' value counts
    # Decoder hidden layers have at least this many feature maps (0: the encoder's widths, as the
    # reference): the high-resolution decoder layers are the narrow ones that draw the detail.
    dec_min_fm: int = 0

    def validate(self) -> None:
        """Raise FaderError naming the first invalid field."""
        def bad(msg):
            raise FaderError(f"invalid architecture: {msg}")
        for f in ("img_size", "img_fm", "init_fm", "max_fm", "n_layers", "hid_dim", "n_attr"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                bad(f"{f} must be a positive integer, got {v!r}")
            if v > MAX_ARCH.get(f, v):
                bad(f"{f} = {v} exceeds the limit of {MAX_ARCH[f]}")
        if not 32 <= self.img_size <= 256 or self.img_size & (self.img_size - 1):
            bad(f"img_size must be a power of two in 32..256, got {self.img_size}")
        if not isinstance(self.dec_min_fm, int) or isinstance(self.dec_min_fm, bool) \
                or not 0 <= self.dec_min_fm <= MAX_ARCH["max_fm"]:
            bad(f"dec_min_fm must be an integer in 0..{MAX_ARCH['max_fm']}, got {self.dec_min_fm!r}")
        if self.init_fm > self.max_fm:
            bad(f"init_fm ({self.init_fm}) must not exceed max_fm ({self.max_fm})")
        if self.n_layers > int(math.log2(self.img_size)):
            bad(f"n_layers ({self.n_layers}) must be at most log2(img_size) = {int(math.log2(self.img_size))}")
        if not isinstance(self.n_skip, int) or not 0 <= self.n_skip <= self.n_layers - 1:
            bad(f"n_skip must be in 0..n_layers-1, got {self.n_skip!r}")
        if self.deconv_method not in DECONV_METHODS:
            bad(f"deconv_method must be one of {DECONV_METHODS}, got {self.deconv_method!r}")
        if not isinstance(self.instance_norm, bool):
            bad(f"instance_norm must be true or false, got {self.instance_norm!r}")
        if self.instance_norm and self.n_layers == int(math.log2(self.img_size)):
            # the last encoder layer's output is 1x1, where instance norm is undefined
            bad(f"instance_norm needs n_layers < log2(img_size) = {int(math.log2(self.img_size))}, got {self.n_layers}")
        for f in ("enc_dropout", "dec_dropout", "lat_dis_dropout"):
            v = getattr(self, f)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v < 1:
                bad(f"{f} must be in [0, 1), got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "ArchConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise FaderError(f"invalid architecture: unknown field{'s' if len(unknown) > 1 else ''} "
                             f"{quoted(sorted(unknown))}")
        cfg = cls(**dict(d))
        cfg.validate()
        return cfg

    @property
    def latent_size(self) -> int:
        return self.img_size // 2 ** self.n_layers

    @property
    def latent_fm(self) -> int:
        return min(self.init_fm * 2 ** (self.n_layers - 1), self.max_fm)


def _decoder_layer_widths(k: int, n_layers: int, enc_in: int, enc_out: int, dec_min_fm: int) -> tuple:
    """(maps read from the layer above, maps written) of the decoder layer mirroring encoder layer
    k (enc_in -> enc_out maps). The top one reads the latent code; the image layer writes img_fm."""
    h = enc_out if k == n_layers - 1 else max(enc_out, dec_min_fm)
    return h, (enc_in if k == 0 else max(enc_in, dec_min_fm))


def build_layers(img_size, img_fm, init_fm, max_fm, n_layers, n_attr, n_skip,
                 deconv_method, instance_norm, enc_dropout, dec_dropout, dec_min_fm=0):
    """Encoder and decoder layer lists, exactly as in the reference `build_layers` when
    `dec_min_fm` is 0; otherwise each decoder hidden layer has at least dec_min_fm maps."""
    norm_fn = nn.InstanceNorm2d if instance_norm else nn.BatchNorm2d
    enc_layers, dec_layers = [], []
    n_in, n_out = img_fm, init_fm
    for i in range(n_layers):
        enc_layer, dec_layer = [], []
        skip_connection = n_layers - (n_skip + 1) <= i < n_layers - 1
        n_dec_h, n_dec_out = _decoder_layer_widths(i, n_layers, n_in, n_out, dec_min_fm)
        n_dec_in = n_dec_h + n_attr + (n_out if skip_connection else 0)

        enc_layer.append(nn.Conv2d(n_in, n_out, 4, 2, 1))
        if i > 0:
            enc_layer.append(norm_fn(n_out, affine=True))
        enc_layer.append(nn.LeakyReLU(0.2, inplace=True))
        if enc_dropout > 0:
            enc_layer.append(nn.Dropout(enc_dropout))

        if deconv_method == "upsampling":
            dec_layer.append(nn.UpsamplingNearest2d(scale_factor=2))
            dec_layer.append(nn.Conv2d(n_dec_in, n_dec_out, 3, 1, 1))
        elif deconv_method == "convtranspose":
            dec_layer.append(nn.ConvTranspose2d(n_dec_in, n_dec_out, 4, 2, 1, bias=False))
        else:
            dec_layer.append(nn.Conv2d(n_dec_in, n_dec_out * 4, 3, 1, 1))
            dec_layer.append(nn.PixelShuffle(2))
        if i > 0:
            dec_layer.append(norm_fn(n_dec_out, affine=True))
            if dec_dropout > 0 and i >= n_layers - 3:
                dec_layer.append(nn.Dropout(dec_dropout))
            dec_layer.append(nn.ReLU(inplace=True))
        else:
            dec_layer.append(nn.Tanh())

        n_in = n_out
        n_out = min(2 * n_out, max_fm)
        enc_layers.append(nn.Sequential(*enc_layer))
        dec_layers.insert(0, nn.Sequential(*dec_layer))
    return enc_layers, dec_layers


def decoder_widths(c: ArchConfig) -> list:
    """(maps read from the layer above, maps written) of each decoder layer, top first, as
    build_layers makes them; the attribute planes and skip planes come on top of the first."""
    enc = [c.img_fm] + [min(c.init_fm * 2 ** k, c.max_fm) for k in range(c.n_layers)]
    return [_decoder_layer_widths(k, c.n_layers, enc[k], enc[k + 1], c.dec_min_fm)
            for k in reversed(range(c.n_layers))]


def _split_code_ok(conv: nn.Module, h: torch.Tensor) -> bool:
    """Whether _conv_transpose_with_code computes this layer (the reference's 4x4/2 deconvolution, on CPU)."""
    return (h.device.type == "cpu" and type(conv) is nn.ConvTranspose2d and conv.bias is None
            and conv.kernel_size == (4, 4) and conv.stride == (2, 2) and conv.padding == (1, 1)
            and conv.output_padding == (0, 0) and conv.groups == 1 and conv.dilation == (1, 1))


def _conv_transpose_with_code(conv: nn.ConvTranspose2d, h: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
    """``conv(cat([h, code planes]))`` without building the planes (CPU, the image layer).

    The code planes are constant, so their part of the output is a fixed pattern per attribute
    value: conv of a one-hot plane batch (tiny), mixed per image by one matrix product. oneDNN's
    transposed convolution to 3 channels ran 1.3-2x faster on the 32 feature maps alone than on
    the 42 maps with the planes (fwd + bwd, 64 px, measured), which is the point. The result is
    the same up to float rounding, and the parameters are unchanged.
    """
    ch, na = h.size(1), code.size(1)
    w_h, w_c = conv.weight.split([ch, na], 0)
    out = F.conv_transpose2d(h, w_h, stride=2, padding=1)
    n, co, ho, wo = out.shape
    fmt = torch.channels_last if out.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    unit = torch.eye(na, dtype=h.dtype, device=h.device)[:, :, None, None]
    unit = unit.expand(na, na, h.size(2), h.size(3)).contiguous(memory_format=fmt)
    pattern = F.conv_transpose2d(unit, w_c, stride=2, padding=1)  # (na, co, ho, wo)
    code = code.to(out.dtype)
    if fmt == torch.channels_last:
        mixed = torch.addmm(out.permute(0, 2, 3, 1).reshape(n, -1), code, pattern.permute(0, 2, 3, 1).reshape(na, -1))
        return mixed.view(n, ho, wo, co).permute(0, 3, 1, 2)
    return torch.addmm(out.reshape(n, -1), code, pattern.reshape(na, -1)).view(n, co, ho, wo)


class AutoEncoder(nn.Module):
    """Encoder E(x) and attribute-conditioned decoder D(E(x), y)."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        config.validate()
        self.config = config
        c = config
        enc, dec = build_layers(c.img_size, c.img_fm, c.init_fm, c.max_fm, c.n_layers, c.n_attr,
                                c.n_skip, c.deconv_method, c.instance_norm, c.enc_dropout, c.dec_dropout,
                                c.dec_min_fm)
        self.enc_layers = nn.ModuleList(enc)
        self.dec_layers = nn.ModuleList(dec)
        # The image layer's code planes through a precomputed pattern (see _conv_transpose_with_code);
        # bench/train_speed.py's plain baseline turns it off.
        self.split_code_planes = True

    def encode(self, x: torch.Tensor) -> list:
        """All encoder activations: [x, h1, ..., h_n]; the last one is the latent code."""
        c = self.config
        if tuple(x.shape[1:]) != (c.img_fm, c.img_size, c.img_size):
            raise ValueError(f"expected input (N, {c.img_fm}, {c.img_size}, {c.img_size}), got {tuple(x.shape)}")
        outs = [x]
        for layer in self.enc_layers:
            outs.append(layer(outs[-1]))
        return outs

    def decode(self, enc_outputs: list, y: torch.Tensor) -> list:
        """Decoder activations; the attribute code y (N, n_attr) is fed to every layer.

        Only enc_outputs[-1] and the n_skip activations before it are read, so a cached
        latent may hold None in the other positions.
        """
        c = self.config
        z = enc_outputs[-1]
        bs = z.size(0)
        if tuple(y.shape) != (bs, c.n_attr):
            raise ValueError(f"expected attribute code ({bs}, {c.n_attr}), got {tuple(y.shape)}")
        y = y.to(z.dtype).unsqueeze(2).unsqueeze(3)
        dec_outputs = [z]
        for i, layer in enumerate(self.dec_layers):
            h = dec_outputs[-1]
            inp = [h, y.expand(bs, c.n_attr, h.size(2), h.size(3))]
            if 0 < i <= c.n_skip:
                inp.append(enc_outputs[-1 - i])
            if self.split_code_planes and i == len(self.dec_layers) - 1 and len(inp) == 2 \
                    and _split_code_ok(layer[0], h):
                dec_outputs.append(layer[1:](_conv_transpose_with_code(layer[0], h, y.flatten(1))))
                continue
            h = torch.cat(inp, 1)
            if inp[0].dim() == 4 and not h.is_contiguous() and inp[0].is_contiguous(memory_format=torch.channels_last):
                # cat falls back to NCHW next to the expanded attribute planes; oneDNN then
                # reorders inside the convolution, which is slower than one copy here.
                h = h.contiguous(memory_format=torch.channels_last)
            dec_outputs.append(layer(h))
        return dec_outputs

    def forward(self, x, y, y_extra=None):
        """(encoder activations, decoder activations). With `y_extra` (a second code per image) the
        decoder runs once on both codes stacked, [y; y_extra], so that batch normalization sees one
        batch: decoded separately, each pass would be normalized by its own batch's statistics and
        the decoder could tell a reconstruction from an edit by them, which inference cannot."""
        enc_outputs = self.encode(x)
        if y_extra is None:
            return enc_outputs, self.decode(enc_outputs, y)
        k = self.config.n_skip
        twice = [None] * (len(enc_outputs) - 1 - k) + [torch.cat([e, e]) for e in enc_outputs[-1 - k:]]
        return enc_outputs, self.decode(twice, torch.cat([y, y_extra]))


class LatentDiscriminator(nn.Module):
    """Predicts the attributes from the latent code (conv down to 1x1, then two linear layers)."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        c = config
        self.config = c
        self.n_dis_layers = int(math.log2(c.img_size))
        self.conv_in_size = c.img_size // 2 ** (c.n_layers - c.n_skip)
        self.conv_in_fm = min(c.init_fm * 2 ** (c.n_layers - c.n_skip - 1), c.max_fm)
        self.conv_out_fm = min(c.init_fm * 2 ** (self.n_dis_layers - 1), c.max_fm)
        enc, _ = build_layers(c.img_size, c.img_fm, c.init_fm, c.max_fm, self.n_dis_layers, c.n_attr,
                              0, "convtranspose", False, c.lat_dis_dropout, 0)
        self.conv_layers = nn.Sequential(*enc[c.n_layers - c.n_skip:])
        self.proj_layers = nn.Sequential(nn.Linear(self.conv_out_fm, c.hid_dim),
                                         nn.LeakyReLU(0.2, inplace=True),
                                         nn.Linear(c.hid_dim, c.n_attr))

    def forward(self, z):
        h = self.conv_layers(z)
        return self.proj_layers(h.reshape(z.size(0), self.conv_out_fm))


class PatchDiscriminator(nn.Module):
    """The reference's optional PatchGAN-style image discriminator (real vs reconstructed/swapped)."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        c = config
        self.config = c
        n_layers = 3
        layers = [nn.Conv2d(c.img_fm, c.init_fm, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        n_in = c.init_fm
        n_out = min(2 * n_in, c.max_fm)
        for n in range(n_layers):
            stride = 1 if n == n_layers - 1 else 2
            layers += [nn.Conv2d(n_in, n_out, 4, stride, 1), nn.BatchNorm2d(n_out), nn.LeakyReLU(0.2, True)]
            if n < n_layers - 1:
                n_in = n_out
                n_out = min(2 * n_out, c.max_fm)
        layers += [nn.Conv2d(n_out, 1, 4, 1, 1), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x).reshape(x.size(0), -1).mean(1)


class Classifier(nn.Module):
    """Attribute classifier on images: used for swap accuracy and to start sliders at a photo's values."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        c = config
        self.config = c
        self.n_clf_layers = int(math.log2(c.img_size))
        self.conv_out_fm = min(c.init_fm * 2 ** (self.n_clf_layers - 1), c.max_fm)
        enc, _ = build_layers(c.img_size, c.img_fm, c.init_fm, c.max_fm, self.n_clf_layers, c.n_attr,
                              0, "convtranspose", False, 0, 0)
        self.conv_layers = nn.Sequential(*enc)
        self.proj_layers = nn.Sequential(nn.Linear(self.conv_out_fm, c.hid_dim),
                                         nn.LeakyReLU(0.2, inplace=True),
                                         nn.Linear(c.hid_dim, c.n_attr))

    def forward(self, x):
        h = self.conv_layers(x)
        return self.proj_layers(h.reshape(x.size(0), self.conv_out_fm))


def split_logits(logits: torch.Tensor, sizes) -> list:
    """Split (N, sum n) logits into one (N, n_i) block per attribute."""
    return list(torch.split(logits, list(sizes), dim=1))
