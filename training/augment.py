"""Attribute classifiers trained on photo-like faces: the augmentation (what a face goes through
between a camera and an exported photo: JPEG, shift/scale/rotation/flip, down-and-up resampling,
blur, colour, noise) and the training loop that uses it.

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


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of an (N, C, H, W) batch, kernel 2*ceil(2*sigma)+1, reflected borders (the
    same as torchvision's ``gaussian_blur``, which the packaged app does not bundle): the
    augmentation's blur and the trainer's --clf-blur."""
    k = 2 * math.ceil(2 * sigma) + 1
    t = torch.linspace(-(k - 1) / 2, (k - 1) / 2, k, device=x.device, dtype=torch.float32)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = (g / g.sum()).to(x.dtype)
    c, r = x.size(1), k // 2
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(y, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


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
        x[i:i + 1] = gaussian_blur(x[i:i + 1], float(rng.uniform(0.4, 1.6)))
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


def fit_on_augmented(net: torch.nn.Module, images, train_idx, epochs: float, batch_size: int, lr: float,
                     seed: int, prepare, loss_fn, desc: str, amp="auto", progress: bool = True,
                     should_stop=None, clip: float | None = None, redraw_s: float = 30) -> None:
    """Train ``net`` in place on augmented batches of ``images[train_idx]`` for ``epochs`` passes:
    AdamW (weight decay 5e-4) with a one-cycle rate peaking at ``lr``, bf16 autocast for the
    forward pass as ``amp`` says ("auto": where the CPU has native bf16; "bf16"; "off"; True/False
    for "bf16"/"off"). ``prepare(x)`` maps the augmented [0, 1] batch to the network's
    input, ``loss_fn(logits, idx)`` gives the loss of the batch ``idx``; ``clip`` bounds the
    gradient norm. ``should_stop()`` returning true raises KeyboardInterrupt."""
    from .precision import fit_uses_bf16
    from .progress import progress_bar
    use_bf16 = fit_uses_bf16(amp)
    rng = np.random.default_rng(seed)
    train_idx = np.asarray(train_idx)
    total = max(1, int(round(epochs * max(1, len(train_idx) // batch_size))))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    bar = None
    if progress:
        bar = progress_bar(total, desc, "step", log_seconds=redraw_s)
    order = np.array([], np.int64)
    run_loss = 0.0
    net.train()
    try:
        for step in range(total):
            if should_stop is not None and should_stop():
                raise KeyboardInterrupt
            if len(order) < batch_size:
                order = np.concatenate([order, rng.permutation(train_idx)])
            idx, order = np.sort(order[:batch_size]), order[batch_size:]
            x = augment(np.asarray(images[idx]), rng)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
                logits = net(prepare(x))
            loss = loss_fn(logits.float(), idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            opt.step()
            sched.step()
            run_loss = 0.98 * run_loss + 0.02 * loss.item() if step else loss.item()
            if bar is not None:
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix_str(f"loss {run_loss:.3f}")
    finally:
        if bar is not None:
            bar.close()
    net.eval()


def add_fit_options(p, batch_size: int) -> None:
    """The command-line options of `fit_on_augmented`'s callers: --epochs, --batch-size, --lr,
    --seed, --threads, --amp (--no-amp)."""
    p.add_argument("--epochs", type=float, default=8.0, help="passes over the training images (default 8)")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"images per step (default {batch_size})")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the one-cycle schedule (default 0.001)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    p.add_argument("--amp", choices=("auto", "bf16", "off"), default="auto",
                   help="bf16 autocast: auto (default) where the CPU computes bf16 natively (AVX512-BF16/AMX), "
                        "elsewhere plain fp32 (emulated bf16 ran 17x slower); bf16 forces it, off disables it")
    p.add_argument("--no-amp", dest="amp", action="store_const", const="off", help="the same as --amp off")
