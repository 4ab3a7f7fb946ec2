"""Photo-like augmentation for attribute classifiers: what a face goes through between a camera and
an exported photo (JPEG, shift/scale/rotation/flip, down-and-up resampling, blur, colour, noise).

Shared by the independent judge (`training/judge.py`) and the slider classifier a model file
carries (`training/classifier.py`), so that neither reads an attribute from a pattern that one
photo's compression, size or colour cast happens to carry.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# What `augment` does, as recorded in the metadata of the files trained with it.
AUGMENTATION = ("shift, scale, rotation, flip, JPEG q25-90, down-up resampling 0.3-0.8x, blur sigma 0.4-1.6, "
                "brightness/contrast/saturation, noise")


def to_unit_tensor(u8: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1], channels-last."""
    return torch.from_numpy(np.ascontiguousarray(u8)).permute(0, 3, 1, 2).float().div_(255.0)


def augment(u8: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """A randomly degraded copy of a uint8 (N, S, S, 3) batch as float NCHW in [0, 1]."""
    n, s = u8.shape[0], u8.shape[1]
    import cv2
    u8 = u8.copy()
    for i in np.flatnonzero(rng.random(n) < 0.3):  # JPEG at a random quality
        ok, buf = cv2.imencode(".jpg", u8[i], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        if ok:
            u8[i] = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    x = to_unit_tensor(u8)
    # shift / scale / small rotation / flip (one affine grid for the batch)
    ang = torch.from_numpy(rng.uniform(-6, 6, n) * math.pi / 180).float()
    sc = torch.from_numpy(rng.uniform(0.9, 1.1, n)).float()
    flip = torch.from_numpy(np.where(rng.random(n) < 0.5, -1.0, 1.0)).float()
    tx, ty = (torch.from_numpy(rng.uniform(-0.08, 0.08, n)).float() for _ in range(2))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = torch.cos(ang) / sc * flip
    theta[:, 0, 1] = -torch.sin(ang) / sc
    theta[:, 1, 0] = torch.sin(ang) / sc * flip
    theta[:, 1, 1] = torch.cos(ang) / sc
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # down-and-up resampling (a small face in a photo, a 64 px model's output)
    for i in np.flatnonzero(rng.random(n) < 0.3):
        k = max(16, int(s * rng.uniform(0.3, 0.8)))
        small = F.interpolate(x[i:i + 1], size=(k, k), mode="bilinear", antialias=True, align_corners=False)
        x[i:i + 1] = F.interpolate(small, size=(s, s), mode="bilinear", align_corners=False)
    # blur
    for i in np.flatnonzero(rng.random(n) < 0.25):
        sigma = float(rng.uniform(0.4, 1.6))
        r = int(math.ceil(2 * sigma))
        t = torch.arange(-r, r + 1, dtype=torch.float32)
        g = torch.exp(-t ** 2 / (2 * sigma ** 2))
        g = g / g.sum()
        xi = F.pad(x[i:i + 1], (r, r, r, r), mode="reflect")
        xi = F.conv2d(xi, g.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
        x[i:i + 1] = F.conv2d(xi, g.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    # colour: brightness, contrast, saturation
    b = torch.from_numpy(rng.uniform(-0.12, 0.12, (n, 1, 1, 1))).float()
    c = torch.from_numpy(rng.uniform(0.75, 1.25, (n, 1, 1, 1))).float()
    sat = torch.from_numpy(rng.uniform(0.6, 1.3, (n, 1, 1, 1))).float()
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * sat
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * c + m + b
    noisy = torch.from_numpy(rng.random(n) < 0.2)
    if noisy.any():
        x[noisy] += torch.randn_like(x[noisy]) * float(rng.uniform(0.01, 0.04))
    return x.clamp_(0, 1).contiguous(memory_format=torch.channels_last)
