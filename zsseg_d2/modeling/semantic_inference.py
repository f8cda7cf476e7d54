"""Semantic segmentation from mask classification: eq. 4 of Dao et al. (2023)."""
from __future__ import annotations

import torch


def semantic_scores(probs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Eq. 4: S[c, h, w] = sum_q p_q(c) * M_q[h, w], for ``probs`` [Q,C] and ``masks`` [Q,H,W]."""
    return (probs.t() @ masks.flatten(1)).view(probs.shape[1], *masks.shape[1:])


def semantic_argmax(probs: torch.Tensor, masks: torch.Tensor, class_chunk: int) -> torch.Tensor:
    """argmax_c of eq. 4 computed ``class_chunk`` classes at a time ([H,W] long).

    Peak memory is O(class_chunk * H * W) instead of O(C * H * W), which matters for
    847-class vocabularies at full resolution.
    """
    flat = masks.flatten(1)
    best_score = torch.full(flat.shape[1:], -1.0, device=masks.device, dtype=masks.dtype)
    best_class = torch.zeros(flat.shape[1:], device=masks.device, dtype=torch.long)
    for start in range(0, probs.shape[1], class_chunk):
        chunk_score, chunk_class = (probs[:, start : start + class_chunk].t() @ flat).max(dim=0)
        better = chunk_score > best_score
        best_score = torch.where(better, chunk_score, best_score)
        best_class = torch.where(better, chunk_class + start, best_class)
    return best_class.view(masks.shape[1:])
