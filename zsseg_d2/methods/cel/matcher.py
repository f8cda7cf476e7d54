"""Hungarian matching of queries to the (seen-class) ground-truth masks of each image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from scipy.optimize import linear_sum_assignment
from torch import nn

from .point_sampling import nearest_pixel_index, point_sample


def pairwise_sigmoid_ce(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted mean over points of BCE for every (prediction, target) pair -> [Q, n].

    ``logits`` [Q, K], ``targets`` [n, K] in [0, 1], ``weights`` [K] (0 for ignored points).
    Uses ``BCE(x, t) = softplus(x) - x * t`` so the pair term is one matmul.
    """
    positive_part = F.softplus(logits) @ weights  # [Q]
    cost = positive_part.unsqueeze(1) - logits @ (targets * weights).T
    return cost / weights.sum().clamp(min=1)


def pairwise_dice(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Dice loss (smoothed by 1, weighted sums over points) for every (prediction, target) pair -> [Q, n].

    Per pair: ``1 - (2 * sum(w*s*t) + 1) / (sum(w*s) + sum(w*t) + 1)`` with ``s = sigmoid(logits)``.
    """
    prob = logits.sigmoid()
    weighted_targets = targets * weights
    numerator = 2 * prob @ weighted_targets.T + 1
    denominator = (prob @ weights).unsqueeze(1) + weighted_targets.sum(dim=1).unsqueeze(0) + 1
    return 1 - numerator / denominator


class HungarianMatcher(nn.Module):
    """One-to-one assignment of queries to ground-truth masks minimising, per image,

    ``cost_class * (-p_q(c)) + cost_mask * sigmoid-CE + cost_dice * dice``,

    with ``p_q = softmax(pred_logits)`` over all columns (including a learned background column)
    and the mask costs on ``num_points`` uniform random points shared by all masks of the image
    (predictions sampled bilinearly, targets and ignore mask at the pixel containing the point;
    ignored points excluded). Computed in fp32 without gradients.
    """

    @configurable
    def __init__(self, *, cost_class: float, cost_mask: float, cost_dice: float, num_points: int):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError(
                "MODEL.CEL.MATCHER: COST_CLASS, COST_MASK and COST_DICE cannot all be 0"
            )
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    @classmethod
    def from_config(cls, cfg) -> dict[str, float]:
        matcher = cfg.MODEL.CEL.MATCHER
        return {
            "cost_class": matcher.COST_CLASS,
            "cost_mask": matcher.COST_MASK,
            "cost_dice": matcher.COST_DICE,
            "num_points": matcher.NUM_POINTS,
        }

    def cost_matrix(
        self,
        pred_logits: torch.Tensor,
        pred_masks: torch.Tensor,
        labels: torch.Tensor,
        target_masks: torch.Tensor,
        ignore_mask: torch.Tensor,
        coords: torch.Tensor,
    ) -> torch.Tensor:
        """Matching cost [Q, n] of one image.

        Args:
            pred_logits: [Q, C'] class logits; pred_masks: [Q, h, w] mask logits.
            labels: [n] class ids; target_masks: [n, H, W] bool; ignore_mask: [H, W] bool.
            coords: [K, 2] points in [0, 1] (x, y) where all masks are compared.
        """
        class_cost = -pred_logits.float().softmax(dim=-1)[:, labels]
        pred_points = point_sample(pred_masks.unsqueeze(0).float(), coords.unsqueeze(0))[
            0
        ]  # [Q, K]
        pixels = nearest_pixel_index(coords, *target_masks.shape[-2:])  # [K]
        target_points = target_masks.flatten(1)[:, pixels].float()  # [n, K]
        weights = (~ignore_mask.flatten()[pixels]).float()  # [K]
        return (
            self.cost_class * class_cost
            + self.cost_mask * pairwise_sigmoid_ce(pred_points, target_points, weights)
            + self.cost_dice * pairwise_dice(pred_points, target_points, weights)
        )

    @torch.no_grad()
    def forward(
        self, outputs: dict[str, torch.Tensor], targets: Sequence[dict[str, torch.Tensor]]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Match each image's queries to its targets.

        Args:
            outputs: {"pred_logits": [B, Q, C'], "pred_masks": [B, Q, h, w], ...}.
            targets: B dicts with "labels" [n_b], "masks" [n_b, H, W], "ignore_mask" [H, W].

        Returns:
            B pairs ``(query_idx, target_idx)`` of int64 tensors (on CPU) of length min(Q, n_b).
        """
        pred_logits, pred_masks = outputs["pred_logits"], outputs["pred_masks"]
        if len(targets) != pred_logits.shape[0]:
            raise ValueError(
                f"got {len(targets)} targets for a batch of {pred_logits.shape[0]} images"
            )
        device = pred_masks.device
        indices = []
        with torch.autocast(device_type=device.type, enabled=False):
            for image, target in enumerate(targets):
                if len(target["labels"]) == 0:
                    empty = torch.zeros(0, dtype=torch.long)
                    indices.append((empty, empty.clone()))
                    continue
                coords = torch.rand(self.num_points, 2, device=device)
                cost = self.cost_matrix(
                    pred_logits[image],
                    pred_masks[image],
                    target["labels"],
                    target["masks"],
                    target["ignore_mask"],
                    coords,
                )
                indices.append(_assign(cost, image))
        return indices


def _assign(cost: torch.Tensor, image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost one-to-one assignment of a [Q, n] cost matrix, as int64 index tensors."""
    cost = cost.cpu()
    if not torch.isfinite(cost).all():
        raise FloatingPointError(
            f"matching cost of image {image} in the batch is not finite: the predictions contain "
            "nan/inf (lower the learning rate or check the inputs)"
        )
    query_idx, target_idx = linear_sum_assignment(cost.numpy())
    return torch.as_tensor(query_idx, dtype=torch.long), torch.as_tensor(
        target_idx, dtype=torch.long
    )
