"""The loss terms of the CEL model, one function per equation, as pure tensor functions.

Equation numbers refer to Dao et al. 2023, "Class Enhancement Losses with Pseudo Labels for
Zero-shot Semantic Segmentation". The weighting of eq. 8 (alpha, beta, gamma) and the
normalisation by the number of masks are applied by :class:`~zsseg_d2.modeling.losses.CELCriterion`.

Mask losses work on point samples: ``logits``, ``targets`` and ``weights`` are [M, P] (M masks,
P points per mask); ``weights`` (0/1, or None for all ones) removes ignored points, and each mask's
loss is the weighted mean over its points (0 when all its points weigh 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _weighted_point_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per-mask weighted mean over points [M, P] -> [M]; 0 for masks whose weights sum to 0."""
    if weights is None:
        return values.mean(dim=1)
    total = weights.sum(dim=1).clamp(min=torch.finfo(values.dtype).tiny)
    return (values * weights).sum(dim=1) / total


def sigmoid_ce_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy of mask logits (the sigmoid-CE part of L_mask, eq. 8).

    Returns the sum over the M masks of each mask's weighted mean point loss.
    """
    per_point = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return _weighted_point_mean(per_point, weights).sum()


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    alpha: float = 0.25,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Focal loss (Lin et al. 2017) of mask logits, the MODEL.CEL.LOSS.FOCAL variant of L_mask.

    Per point: ``a_t * (1 - p_t) ** gamma * BCE`` with ``p_t = p*t + (1-p)*(1-t)`` and
    ``a_t = alpha*t + (1-alpha)*(1-t)`` (no alpha factor when ``alpha < 0``). Returns the sum over
    masks of the weighted mean point loss.
    """
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    per_point = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        per_point = per_point * (alpha * targets + (1 - alpha) * (1 - targets))
    return _weighted_point_mean(per_point, weights).sum()


def dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Dice loss of mask logits (the dice part of L_mask, eq. 8), smoothed by 1.

    Per mask, with ``s = sigmoid(logits)`` and point weights ``w`` (all ones when None):
    ``1 - (2 * sum(w*s*t) + 1) / (sum(w*s) + sum(w*t) + 1)``. Returns the sum over masks.
    """
    prob = logits.sigmoid()
    if weights is not None:
        targets = targets * weights
        prob_sum = (prob * weights).sum(dim=1)
    else:
        prob_sum = prob.sum(dim=1)
    numerator = 2 * (prob * targets).sum(dim=1) + 1
    denominator = prob_sum + targets.sum(dim=1) + 1
    return (1 - numerator / denominator).sum()


def matched_class_ce(logits_matched: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-query cross-entropy ``-log p_q(c_q)`` [M] of matched queries (first term of eq. 5).

    ``logits_matched`` [M, C] are cosine similarities over tau (eq. 2), ``labels`` [M] class ids.
    """
    return F.cross_entropy(logits_matched, labels, reduction="none")


def uniform_kl(logits_unmatched: torch.Tensor) -> torch.Tensor:
    """Per-query ``KL(p_q || Uniform_C) = log C - H(p_q)`` [U] of unmatched queries (eq. 5).

    ``p_q = softmax(logits_unmatched)`` over the C classes (eq. 2).
    """
    num_classes = logits_unmatched.shape[-1]
    log_prob = logits_unmatched.log_softmax(dim=-1)
    neg_entropy = (log_prob.exp() * log_prob).sum(dim=-1)
    return neg_entropy + math.log(num_classes)


def background_aware_class_loss(
    logits: torch.Tensor,
    matched_mask: torch.Tensor,
    labels: torch.Tensor,
    lam: float,
    num_matched: float | None = None,
    num_unmatched: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The background-aware class loss of eq. 5, returned as its two terms.

    Args:
        logits: [B, Q, C] class logits (eq. 2), no background column.
        matched_mask: [B, Q] bool, True for queries matched to a ground-truth mask.
        labels: [B, Q] class ids; read only where ``matched_mask`` is True.
        lam: lambda of eq. 5.
        num_matched, num_unmatched: the divisors of the two sums; by default the numbers of
            matched and unmatched queries of this batch (see :class:`CELCriterion` for the
            multi-process counts).

    Returns:
        ``(lam * CE, (1 - lam) * KL)`` whose sum is eq. 5, where CE is the mean of
        :func:`matched_class_ce` over the matched queries of the whole batch and KL the mean of
        :func:`uniform_kl` over its unmatched queries. An empty set gives a term of 0 (still
        attached to the graph of ``logits``).
    """
    # Every query's terms, summed where they apply: no boolean indexing (a host-device sync).
    flat_logits, flat_matched = logits.flatten(0, 1), matched_mask.flatten()
    if num_matched is None:
        num_matched = flat_matched.sum().clamp(min=1)
    if num_unmatched is None:
        num_unmatched = (~flat_matched).sum().clamp(min=1)
    ce = matched_class_ce(flat_logits, torch.where(flat_matched, labels.flatten(), 0))
    ce = torch.where(flat_matched, ce, 0.0).sum() / num_matched
    kl = torch.where(flat_matched, 0.0, uniform_kl(flat_logits)).sum() / num_unmatched
    return lam * ce, (1 - lam) * kl


def background_class_ce(
    logits: torch.Tensor, matched_mask: torch.Tensor, labels: torch.Tensor, no_object_weight: float
) -> torch.Tensor:
    """Class loss of the learned-background baseline (MODEL.CEL.BACKGROUND "learned").

    As in prior mask-classification methods (MaskFormer, Mask2Former): ``logits`` [B, Q, C+1]
    with the background class last; matched queries target ``labels`` [B, Q] (read only where
    ``matched_mask`` is True), unmatched ones the background class C. Cross-entropy with class
    weights 1 and ``no_object_weight`` for the background, averaged with those weights
    (``sum_q w_q CE_q / sum_q w_q`` over all B*Q queries).
    """
    background = logits.shape[-1] - 1
    targets = torch.where(matched_mask, labels, torch.full_like(labels, background))
    class_weights = torch.ones(logits.shape[-1], dtype=logits.dtype, device=logits.device)
    class_weights[background] = no_object_weight
    return F.cross_entropy(logits.transpose(1, 2), targets, weight=class_weights)


def image_label_mask(
    image_labels: Sequence[torch.Tensor], num_classes: int, device: torch.device
) -> torch.Tensor:
    """[B, C] bool mask of each image's positive classes from a list of class-id tensors.

    Its one host-device sync is the check that the ids are in range.
    """
    positives = torch.zeros(len(image_labels), num_classes, dtype=torch.bool, device=device)
    lengths = [len(labels) for labels in image_labels]
    if sum(lengths) == 0:
        return positives
    class_index = torch.cat([labels.to(device=device, dtype=torch.long) for labels in image_labels])
    if ((class_index < 0) | (class_index >= num_classes)).any():
        raise ValueError(
            f"image_labels must be class ids in [0, {num_classes}); got min {int(class_index.min())}, "
            f"max {int(class_index.max())} (check the image-level labels against the training vocabulary)"
        )
    image_index = torch.tensor([image for image, n in enumerate(lengths) for _ in range(n)])
    positives[image_index.to(device, non_blocking=True), class_index] = True
    return positives


def multilabel_ranking_loss(
    similarity: torch.Tensor,
    image_labels: Sequence[torch.Tensor] | torch.Tensor,
    num_ranked_images: float | None = None,
    scale: float = 1.0,
) -> torch.Tensor:
    """Multi-label ranking loss over image-level labels (eq. 6-7).

    ``r*_k = scale * max_q similarity[b, q, k]`` (eq. 6; ``scale`` 1 is the paper's literal text,
    where cosines in [-1, 1] bound every margin to [-2, 2]). For an image with positive classes P and
    negatives N (all other classes of the C), eq. 7 is
    ``(1/|P|) * sum_{j in P} sum_{k in N} log(1 + exp(r*_k - r*_j))``.
    The result is the mean of eq. 7 over the images with at least one positive; images without
    positives contribute nothing, and a batch without any gives 0 (attached to the graph).

    Args:
        similarity: [B, Q, C] raw cosine similarities r_qk (no background column).
        image_labels: B tensors of positive class ids (may be empty; duplicates count once), or
            their [B, C] bool mask (:func:`image_label_mask`).
        num_ranked_images: the divisor of the sum over images; by default this batch's number
            of images with a positive.
        scale: factor on the similarities (``MODEL.CEL.LOSS.RANK_SCALE``), > 0.
    """
    if scale <= 0:
        raise ValueError(f"MODEL.CEL.LOSS.RANK_SCALE must be > 0, got {scale}")
    if len(image_labels) != similarity.shape[0]:
        raise ValueError(
            f"got {len(image_labels)} image_labels for a batch of {similarity.shape[0]} images"
        )
    best = scale * similarity.max(dim=1).values  # [B, C], eq. 6
    if isinstance(image_labels, torch.Tensor):
        positives = image_labels
    else:
        positives = image_label_mask(image_labels, best.shape[1], best.device)
    pair_mask = positives.unsqueeze(1) & ~positives.unsqueeze(2)  # [B, k (negative), j (positive)]
    margins = F.softplus(best.unsqueeze(2) - best.unsqueeze(1))  # [B, k, j] = softplus(r*_k - r*_j)
    num_positives = positives.sum(dim=1)
    per_image = torch.where(pair_mask, margins, 0.0).sum(dim=(1, 2)) / num_positives.clamp(min=1)
    if num_ranked_images is None:
        num_ranked_images = (num_positives > 0).sum().clamp(min=1)
    return per_image.sum() / num_ranked_images
