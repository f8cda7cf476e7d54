"""Class-agnostic region proposals from a trained model's query masks (section 3.4)."""
from __future__ import annotations

from typing import Tuple

import torch


def select_proposals(
    mask_probs: torch.Tensor, mask_threshold: float = 0.5, min_area: float = 0.0, topk: int = 0
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Binary proposals ``[K, H, W]`` and their quality ``[K]`` from mask probabilities ``[Q, H, W]``.

    A proposal is ``sigma > mask_threshold``; empty masks and masks covering less than
    ``min_area`` of the image are dropped; with ``topk > 0`` only the ``topk`` best by quality
    (the mean probability inside the binary mask) are kept, ties going to the lower query index.
    Proposals keep their query order.
    """
    binary = mask_probs > mask_threshold
    area = binary.sum(dim=(1, 2))
    keep = (area > 0) & (area >= min_area * mask_probs.shape[1] * mask_probs.shape[2])
    quality = (mask_probs * binary).sum(dim=(1, 2)) / area.clamp(min=1)
    indices = keep.nonzero().flatten()
    if 0 < topk < len(indices):
        best = quality[indices].sort(descending=True, stable=True).indices[:topk]
        indices = indices[best.sort().values]
    return binary[indices], quality[indices]
