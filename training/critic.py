"""The image critic: realism and attributes judged by one network, on augmented images.

The reference's optional classifier loss (a stand-alone attribute classifier on the decodes) taught
the decoder patterns that classifiers of that design read as the attribute: thin lines for
glasses, colour casts for age. Following AttGAN/STGAN, one trunk here carries two heads:
  - a patch real/fake head (hinge loss), so a pattern that moves the attribute head but looks
    unreal is also evidence of a fake, which the auto-encoder pays for;
  - an attribute head, trained on real images only (cross-entropy per attribute).
Spectral normalisation keeps the trunk smooth (its gradients are not a high-frequency pattern),
and both real and decoded images go through the same random differentiable augmentation
(after DiffAugment, Zhao et al. 2020: colour, translation, cutout; plus down-and-up resampling
and blur here), so 1-pixel lines and faint casts that do not survive a shift or a resample do not pay.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class Critic(nn.Module):
    """Spectral-norm conv trunk (4 stride-2 layers) with a patch realism head and an attribute head."""

    def __init__(self, img_size: int, n_attr: int, width: int = 32, max_width: int = 256):
        super().__init__()
        # A fixed low-pass (5-tap binomial, sigma ~1 px) before the first strided convolution: the
        # gradient of a stride-2 convolution is a checkerboard, and without it the auto-encoder
        # covered reconstructions and edits with one within 900 steps at 128 px (PSNR 25.9 -> 22.3).
        # Not a parameter and not in the state dict: checkpoints of the unfiltered critic load.
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k = (k[:, None] * k[None, :]) / 256.0
        self.register_buffer("lowpass", k.expand(3, 1, 5, 5).contiguous(), persistent=False)
        layers, n_in, w = [], 3, width
        for _ in range(4):
            layers += [spectral_norm(nn.Conv2d(n_in, w, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
            n_in, w = w, min(2 * w, max_width)
        self.trunk = nn.Sequential(*layers)
        self.patch = spectral_norm(nn.Conv2d(n_in, 1, 3, 1, 1))
        side = img_size // 16
        # down to a 4x4 (or smaller) map before the linear layer, whatever the image size
        extra = max(0, int(math.log2(side)) - 2)
        head = []
        for _ in range(extra):
            head += [spectral_norm(nn.Conv2d(n_in, n_in, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)]
        self.attr_conv = nn.Sequential(*head)
        side = max(1, side // 2 ** extra)
        # the attribute head's last layer is left free: a spectral norm there capped its logits and
        # held a 32 px test run at 0.62 accuracy where the plain layer learns
        self.attr_fc = nn.Linear(n_in * side * side, n_attr)

    def forward(self, x: torch.Tensor) -> tuple:
        """(patch realism logits (N, h*w), attribute logits (N, n_attr))."""
        x = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.lowpass.to(x.dtype), groups=3)
        h = self.trunk(x)
        a = self.attr_conv(h)
        return self.patch(h).flatten(1), self.attr_fc(a.flatten(1))


def diff_augment(x: torch.Tensor, gen: torch.Generator | None = None, cutout: float = 0.25,
                 shift: float = 1 / 16, rand=None) -> torch.Tensor:
    """A random differentiable augmentation of an NCHW batch in [-1, 1] (one draw per image).

    Brightness, saturation and contrast; translation by up to ``shift`` of the side (zero fill);
    cutout of a square of ``cutout`` of the side; for a quarter of the images a down-and-up
    resampling (to 5/8 of the side), and for another quarter a 3x3 blur. ``rand(shape)`` draws
    the per-image uniform numbers (first dimension = the batch; data-parallel training passes its
    rank's rows of the global batch's draw), by default from ``gen``. Milder than
    DiffAugment's GAN setting (1/8 shift, 1/2 cutout), which hid the mouth or eyes so often that an
    attribute head learned little (0.60 vs 0.74 accuracy in a 160-step 32 px run).
    """
    n, _, h, w = x.shape
    dev, dt = x.device, x.dtype

    def rnd(*shape):
        if rand is not None:
            return rand(shape).to(dev, dt)
        return torch.rand(*shape, generator=gen, device="cpu").to(dev, dt)

    # colour
    x = x + (rnd(n, 1, 1, 1) - 0.5) * 0.3
    m = x.mean(1, keepdim=True)
    x = (x - m) * (rnd(n, 1, 1, 1) * 0.8 + 0.6) + m
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * (rnd(n, 1, 1, 1) * 0.5 + 0.75) + m
    # translation (integer shifts, zero fill): an affine grid with nearest sampling stays exact
    sx = ((rnd(n) * 2 - 1) * round(w * shift)).round()
    sy = ((rnd(n) * 2 - 1) * round(h * shift)).round()
    theta = torch.zeros(n, 2, 3, device=dev, dtype=dt)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * sx / w
    theta[:, 1, 2] = -2 * sy / h
    grid = F.affine_grid(theta, [n, x.size(1), h, w], align_corners=False)
    x = F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    # cutout
    ch, cw = max(1, int(h * cutout)), max(1, int(w * cutout))
    cy = (rnd(n) * (h + 1 - ch % 2)).long().view(n, 1, 1)
    cx = (rnd(n) * (w + 1 - cw % 2)).long().view(n, 1, 1)
    yy = torch.arange(h, device=dev).view(1, h, 1)
    xx = torch.arange(w, device=dev).view(1, 1, w)
    keep = ~(((yy - cy).abs() <= ch // 2) & ((xx - cx).abs() <= cw // 2))
    x = x * keep.unsqueeze(1).to(dt)
    # resampling and blur on parts of the batch
    pick = rnd(n)
    down = pick < 0.25
    if down.any():
        k = max(8, h * 5 // 8)
        sub = F.interpolate(x[down], size=(k, k), mode="bilinear", antialias=True, align_corners=False)
        x = x.clone()
        x[down] = F.interpolate(sub, size=(h, w), mode="bilinear", align_corners=False).to(dt)
    blur = (pick >= 0.25) & (pick < 0.5)
    if blur.any():
        kern = torch.tensor([1.0, 2.0, 1.0], device=dev, dtype=dt)
        kern = (kern[:, None] * kern[None, :] / 16).expand(x.size(1), 1, 3, 3)
        x = x.clone() if not down.any() else x
        # .to(dt): under autocast the convolution answers in half precision
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), kern, groups=x.size(1)).to(dt)
    return x
