"""The Relation Network's loss (Zhang & Khriyenko, eq. 5): pixel-wise binary cross-entropy between
relation scores r = sigmoid(logit) and y in {0, 1}, over the episode's classes and the pixels that
belong to one of them (unselected and unseen classes are ignored). The paper writes a sum; it is
averaged here over the counted (pixel, class) pairs so the loss does not scale with image size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relation_bce(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``logits``, ``targets`` [B, K, H, W], ``valid`` [B, H, W] -> mean BCE over valid pixels x K."""
    per_pair = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    mask = valid[:, None].expand_as(per_pair)
    if not mask.any():
        return logits.sum() * 0.0
    return per_pair[mask].mean()
