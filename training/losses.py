"""The training losses that are not plain library calls: the per-attribute cross-entropy of the
discriminators and classifiers, and the edit regularisers (chroma, total variation)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from core.attributes import Attribute


def attr_loss(logits: torch.Tensor, y: torch.Tensor, attrs: Sequence[Attribute], smooth: float = 0.0,
              weights: Optional[Sequence[float]] = None) -> torch.Tensor:
    """Sum over attributes of the cross-entropy of each attribute's logits block (reference get_attr_loss).

    `weights`: one factor per attribute on its term (the classifier loss's --clf-weight).
    """
    ns = {a.n for a in attrs}
    if len(ns) == 1 and weights is None:
        # All attributes have the same number of values: one fused cross-entropy (mean * k = sum of means).
        n = ns.pop()
        k = len(attrs)
        return F.cross_entropy(logits.view(-1, k, n).transpose(1, 2), y, label_smoothing=smooth) * k
    loss = 0
    start = 0
    for j, a in enumerate(attrs):
        term = F.cross_entropy(logits[:, start:start + a.n], y[:, j], label_smoothing=smooth)
        loss = loss + (term if weights is None else weights[j] * term)
        start += a.n
    return loss


def held_attr_loss(logits: torch.Tensor, reference: torch.Tensor, held: torch.Tensor,
                   attrs: Sequence[Attribute]) -> torch.Tensor:
    """Sum over attributes of the mean KL(softmax(reference) || softmax(logits)) over the rows where
    ``held[:, j]`` is 1: a classifier's reading of an attribute the edit keeps must not move."""
    loss = logits.new_zeros(())
    start = 0
    for j, a in enumerate(attrs):
        lp = F.log_softmax(logits[:, start:start + a.n], 1)
        lr = F.log_softmax(reference[:, start:start + a.n], 1)
        loss = loss + ((lr.exp() * (lr - lp)).sum(1) * held[:, j]).mean()
        start += a.n
    return loss


def chroma(d: torch.Tensor) -> torch.Tensor:
    """Mean absolute deviation of each pixel's channels from their mean (0 for grey changes)."""
    return (d - d.mean(1, keepdim=True)).abs().mean()


def total_variation(d: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of an NCHW batch (both directions summed)."""
    return (d[..., 1:, :] - d[..., :-1, :]).abs().mean() + (d[..., :, 1:] - d[..., :, :-1]).abs().mean()
