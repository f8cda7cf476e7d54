"""Class-agnostic region proposals from a trained model's query masks (section 3.4)."""

from __future__ import annotations

import torch


def select_proposals(
    mask_probs: torch.Tensor,
    mask_threshold: float = 0.5,
    min_area: float = 0.0,
    topk: int = 0,
    min_quality: float = 0.0,
) -> torch.Tensor:
    """Binary proposals ``[K, H, W]`` from mask probabilities ``[Q, H, W]``, in query order.

    A proposal is ``sigma > mask_threshold``; empty masks, masks covering less than ``min_area``
    of the image and masks whose quality (the mean probability inside the binary mask, Mask2Former's
    mask score) is below ``min_quality`` are dropped; with ``topk > 0`` only the ``topk`` best by
    quality are kept, ties going to the lower query index. Junk queries (diffuse masks just above
    the threshold) would otherwise add crops to the max over crops of eq. 10.
    """
    binary = mask_probs > mask_threshold
    area = _area(binary)
    quality = mask_quality(mask_probs, binary)
    keep = (
        (area > 0)
        & (area >= min_area * mask_probs.shape[1] * mask_probs.shape[2])
        & (quality >= min_quality)
    )
    indices = keep.nonzero().flatten()
    if 0 < topk < len(indices):
        quality = quality[indices]
        best = quality.sort(descending=True, stable=True).indices[:topk]
        indices = indices[best.sort().values]
    return binary if len(indices) == len(binary) else binary[indices]


def mask_quality(mask_probs: torch.Tensor, binary: torch.Tensor) -> torch.Tensor:
    """Mean probability inside each binary mask (0 for an empty one): ``[Q]``."""
    inside = torch.where(binary, mask_probs, 0.0).flatten(1).sum(dim=1)
    return inside / _area(binary).clamp(min=1)


def _area(binary: torch.Tensor) -> torch.Tensor:
    """Pixels per mask: a uint8 sum into int32 (2-3x faster on CPU than summing bool tensors)."""
    return binary.view(torch.uint8).flatten(1).sum(dim=1, dtype=torch.int32)
