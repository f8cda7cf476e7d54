"""Semantic segmentation from mask classification: eq. 4 of Dao et al. (2023), in bounded memory.

At full resolution, Q masks of H x W pixels and C score maps do not fit in memory for big photos
(100 queries on 6000 x 4000 pixels are 9.6 GB of masks alone). Here masks are produced
``query_chunk`` queries at a time from the low-resolution mask logits, and scores are kept for
``class_chunk`` classes at a time when only the label map is needed: peak memory is
O((query_chunk + class_chunk) * H * W), for any number of queries and classes.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

# (start, stop) -> M_q for queries start..stop-1, [stop - start, H, W] probabilities
MaskChunks = Callable[[int, int], torch.Tensor]


def semantic_scores(probs: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Eq. 4: S[c, h, w] = sum_q p_q(c) * M_q[h, w], for ``probs`` [Q,C] and ``masks`` [Q,H,W]."""
    return (probs.t() @ masks.flatten(1)).view(probs.shape[1], *masks.shape[1:])


def tensor_chunks(masks: torch.Tensor) -> MaskChunks:
    """:data:`MaskChunks` of masks already in memory ([Q, H, W])."""
    return lambda start, stop: masks[start:stop]


def full_resolution_mask_chunks(
    mask_logits: torch.Tensor,
    padded_size: tuple[int, int],
    image_size: tuple[int, int],
    output_size: tuple[int, int],
) -> MaskChunks:
    """Masks M_q = sigmoid of ``mask_logits`` [Q, h, w] upsampled to the padded input
    (``padded_size``), cropped to the resized image (``image_size``) and resized to
    ``output_size``; each chunk of queries is computed on demand."""
    height, width = image_size

    def chunk(start: int, stop: int) -> torch.Tensor:
        padded = F.interpolate(
            mask_logits[None, start:stop].float(),
            size=padded_size,
            mode="bilinear",
            align_corners=False,
        )
        return F.interpolate(
            padded[:, :, :height, :width], size=output_size, mode="bilinear", align_corners=False
        )[0].sigmoid_()

    return chunk


def _scores_of_classes(
    probs: torch.Tensor, mask_chunks: MaskChunks, query_chunk: int
) -> torch.Tensor:
    """Eq. 4 for all columns of ``probs`` [Q, c], summed over chunks of queries: [c, H*W]."""
    scores = None
    for start in range(0, probs.shape[0], query_chunk):
        masks = mask_chunks(start, start + query_chunk).flatten(1)
        weights = probs[start : start + query_chunk].t().to(masks.dtype)
        scores = weights @ masks if scores is None else scores.addmm_(weights, masks)
    return scores


def chunked_semantic_scores(
    probs: torch.Tensor, mask_chunks: MaskChunks, size: tuple[int, int], query_chunk: int
) -> torch.Tensor:
    """Eq. 4 as :func:`semantic_scores` ([C, H, W], H x W = ``size``), ``query_chunk`` masks at a time."""
    return _scores_of_classes(probs, mask_chunks, query_chunk).view(probs.shape[1], *size)


def semantic_argmax(
    probs: torch.Tensor,
    mask_chunks: MaskChunks,
    size: tuple[int, int],
    class_chunk: int,
    query_chunk: int,
) -> torch.Tensor:
    """argmax_c of eq. 4 ([H, W] long) with ``class_chunk`` score maps and ``query_chunk`` masks in
    memory at a time (the masks are recomputed for each chunk of classes when there are several)."""
    best_score = best_class = None
    for start in range(0, probs.shape[1], class_chunk):
        chunk_score, chunk_class = _scores_of_classes(
            probs[:, start : start + class_chunk], mask_chunks, query_chunk
        ).max(dim=0)
        if best_score is None:
            best_score, best_class = chunk_score, chunk_class
            continue
        better = chunk_score > best_score
        best_score = torch.where(better, chunk_score, best_score)
        best_class = torch.where(better, chunk_class + start, best_class)
    return best_class.view(size)
