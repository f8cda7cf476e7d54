"""Self-training of SIGN (Sec. 3.4): pseudo labels for unlabeled pixels predicted as unseen.

- plain ST (ZS3Net's): per unseen class, the top ``fraction`` most confident pseudo-labelled pixels
  of the batch get weight 1, the rest 0;
- AST (eq. 17): every pseudo-labelled pixel i gets w_i = softmax(p_i / T) / Z with Z making the
  largest weight 1, i.e. w_i = exp((p_i - max_j p_j) / T) over the pixels of one image.
Seen (ground-truth) pixels always weigh 1; they are not handled here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

SELF_TRAINING_MODES = ("none", "st", "ast")


class PseudoLabels(NamedTuple):
    labels: torch.Tensor  # [B, H, W] class ids, ``ignore_value`` where no pseudo label
    weights: torch.Tensor  # [B, H, W] loss weight of each pixel (0 where no pseudo label)


def annealed_weights(confidence: torch.Tensor, temperature: float = 2.0) -> torch.Tensor:
    """Eq. 17 on a 1-d tensor of confidences: softmax(p / T) rescaled so its maximum is 1."""
    if confidence.numel() == 0:
        return confidence.clone()
    weights = torch.softmax(confidence / temperature, dim=0)
    return weights / weights.max()


def top_fraction_mask(confidence: torch.Tensor, fraction: float) -> torch.Tensor:
    """True for the ceil(fraction * N) largest confidences of a 1-d tensor (ties broken by order)."""
    keep = int(torch.ceil(torch.tensor(fraction * confidence.numel())).item())
    mask = torch.zeros_like(confidence, dtype=torch.bool)
    mask[torch.topk(confidence, keep).indices] = True
    return mask


def pseudo_label_unseen(
    probs: torch.Tensor,
    labels: torch.Tensor,
    unseen_ids: torch.Tensor,
    mode: str,
    fraction: float = 0.75,
    temperature: float = 2.0,
    ignore_value: int = 255,
) -> PseudoLabels:
    """Pseudo labels on the unlabeled pixels (``labels == ignore_value``) whose prediction is unseen.

    ``probs`` [B, C, H, W] softmax scores, ``labels`` [B, H, W]; ``mode`` "st" or "ast"."""
    if mode not in ("st", "ast"):
        raise ValueError(f"MODEL.SIGN.SELF_TRAINING must be 'st' or 'ast' here, got {mode!r}")
    confidence, predicted = probs.max(dim=1)
    candidate = (labels == ignore_value) & torch.isin(predicted, unseen_ids)
    weights = torch.zeros_like(confidence)
    if mode == "ast":
        for b in range(probs.shape[0]):
            weights[b][candidate[b]] = annealed_weights(confidence[b][candidate[b]], temperature)
    else:
        for class_id in unseen_ids.tolist():
            selected = candidate & (predicted == class_id)
            weights[selected] = top_fraction_mask(confidence[selected], fraction).float()
    pseudo = torch.where(weights > 0, predicted, torch.full_like(predicted, ignore_value))
    return PseudoLabels(pseudo, weights)
