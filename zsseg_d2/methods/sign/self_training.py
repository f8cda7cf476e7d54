"""Self-training of SIGN (Sec. 3.4): pseudo labels for unlabeled pixels predicted as unseen.

The pseudo labels come from the model the self-training step starts from (its classifier is kept
frozen as the labeler, see ``SIGN``), on the unlabeled pixels it predicts as an unseen class:

- plain ST (ZS3Net's, "uses only the most confident 75% pseudo labels"): per unseen class, a
  confidence threshold below which 25% of the training set's pseudo labels of that class fall
  (:func:`confidence_histogram` over a pass on the training images, :func:`fraction_thresholds`);
  pixels at or above it weigh 1, the rest 0;
- AST (eq. 17): every pseudo-labelled pixel i gets w_i = softmax(p_i / T) / Z with Z making the
  largest weight 1, i.e. w_i = exp((p_i - max_j p_j) / T) over the pixels of one image.
Seen (ground-truth) pixels always weigh 1; they are not handled here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

SELF_TRAINING_MODES = ("none", "st", "ast")
HISTOGRAM_BINS = 10000  # confidence resolution of the ST thresholds: 1e-4


class PseudoLabels(NamedTuple):
    labels: torch.Tensor  # [B, H, W] class ids, ``ignore_value`` where no pseudo label
    weights: torch.Tensor  # [B, H, W] loss weight of each pixel (0 where no pseudo label)


def annealed_weights(confidence: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Eq. 17 on a 1-d tensor of confidences: softmax(p / T) rescaled so its maximum is 1."""
    if confidence.numel() == 0:
        return confidence.clone()
    weights = torch.softmax(confidence / temperature, dim=0)
    return weights / weights.max()


def _candidates(
    probs: torch.Tensor, labels: torch.Tensor, unseen_ids: torch.Tensor, ignore_value: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Confidence and predicted class per pixel, and the unlabeled pixels predicted unseen."""
    confidence, predicted = probs.max(dim=1)
    candidate = (labels == ignore_value) & torch.isin(predicted, unseen_ids)
    return confidence, predicted, candidate


def confidence_histogram(
    probs: torch.Tensor,
    labels: torch.Tensor,
    unseen_ids: torch.Tensor,
    ignore_value: int = 255,
    bins: int = HISTOGRAM_BINS,
) -> torch.Tensor:
    """``[U, bins]`` counts of the pseudo labels of each unseen class by confidence (bin k holds
    confidences in [k / bins, (k + 1) / bins)); sum them over a data set's batches."""
    confidence, predicted, candidate = _candidates(probs, labels, unseen_ids, ignore_value)
    index = (confidence * bins).long().clamp(max=bins - 1)
    return torch.stack(
        [
            torch.bincount(index[candidate & (predicted == c)], minlength=bins)
            for c in unseen_ids.tolist()
        ]
    )


def fraction_thresholds(histogram: torch.Tensor, fraction: float) -> torch.Tensor:
    """Per row of ``histogram``, the lowest confidence t such that the pseudo labels with
    confidence >= t are at least ``fraction`` of them (bin precision); +inf for an empty row."""
    bins = histogram.shape[1]
    from_top = histogram.flip(1).cumsum(1)  # pseudo labels in the top k + 1 bins
    keep = torch.ceil(fraction * histogram.sum(1).double()).clamp(min=1)
    reached = from_top.double() >= keep[:, None]
    first = reached.float().argmax(dim=1)  # top bins needed - 1
    thresholds = (bins - 1 - first).double() / bins
    return torch.where(histogram.sum(1) > 0, thresholds, torch.full_like(thresholds, float("inf")))


def pseudo_label_unseen(
    probs: torch.Tensor,
    labels: torch.Tensor,
    unseen_ids: torch.Tensor,
    mode: str,
    thresholds: torch.Tensor | None = None,
    temperature: float = 2.0,
    ignore_value: int = 255,
) -> PseudoLabels:
    """Pseudo labels on the unlabeled pixels (``labels == ignore_value``) whose prediction is
    unseen. ``probs`` [B, C, H, W] softmax scores of the labeler, ``labels`` [B, H, W]; ``mode``
    "st" (``thresholds``: one per entry of ``unseen_ids``) or "ast"."""
    if mode not in ("st", "ast"):
        raise ValueError(f"MODEL.SIGN.SELF_TRAINING must be 'st' or 'ast' here, got {mode!r}")
    confidence, predicted, candidate = _candidates(probs, labels, unseen_ids, ignore_value)
    weights = torch.zeros_like(confidence)
    if mode == "ast":
        for b in range(probs.shape[0]):
            weights[b][candidate[b]] = annealed_weights(confidence[b][candidate[b]], temperature)
    else:
        for class_id, threshold in zip(unseen_ids.tolist(), thresholds.tolist()):
            selected = candidate & (predicted == class_id) & (confidence >= threshold)
            weights[selected] = 1.0
    pseudo = torch.where(weights > 0, predicted, torch.full_like(predicted, ignore_value))
    return PseudoLabels(pseudo, weights)
