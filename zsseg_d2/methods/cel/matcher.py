"""Hungarian matching of queries to the (seen-class) ground-truth masks of each image."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from scipy.optimize import linear_sum_assignment
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .point_sampling import nearest_pixel_index, point_sample


def pairwise_sigmoid_ce(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Weighted mean over points of BCE for every (prediction, target) pair -> [..., Q, n].

    ``logits`` [..., Q, K], ``targets`` [..., n, K] in [0, 1], ``weights`` [..., K] (0 for ignored
    points); leading dimensions are batch dimensions (one per image).
    Uses ``BCE(x, t) = softplus(x) - x * t`` so the pair term is one matmul.
    """
    positive_part = F.softplus(logits) @ weights.unsqueeze(-1)  # [..., Q, 1]
    cost = positive_part - logits @ (targets * weights.unsqueeze(-2)).transpose(-1, -2)
    return cost / weights.sum(dim=-1).clamp(min=1)[..., None, None]


def pairwise_dice(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Dice loss (smoothed by 1, weighted sums over points) for every (prediction, target) pair
    -> [..., Q, n]; shapes as in :func:`pairwise_sigmoid_ce`.

    Per pair: ``1 - (2 * sum(w*s*t) + 1) / (sum(w*s) + sum(w*t) + 1)`` with ``s = sigmoid(logits)``.
    """
    prob = logits.sigmoid()
    weighted_targets = targets * weights.unsqueeze(-2)  # [..., n, K]
    numerator = 2 * prob @ weighted_targets.transpose(-1, -2) + 1
    denominator = (prob @ weights.unsqueeze(-1)) + weighted_targets.sum(dim=-1).unsqueeze(-2) + 1
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
        return self.batch_cost_matrices(
            pred_logits[None], pred_masks[None], [labels], [target_masks], ignore_mask[None],
            coords[None],
        )[0]  # fmt: skip

    def batch_cost_matrices(
        self,
        pred_logits: torch.Tensor,
        pred_masks: torch.Tensor,
        labels: Sequence[torch.Tensor],
        target_masks: Sequence[torch.Tensor],
        ignore_masks: torch.Tensor,
        coords: torch.Tensor,
    ) -> torch.Tensor:
        """Matching costs [B, Q, n_max] of B images at once, targets padded to the most of any
        image (image b's cost is ``[b, :, :len(labels[b])]``; the padding columns are meaningless).

        Args:
            pred_logits: [B, Q, C'] class logits; pred_masks: [B, Q, h, w] mask logits.
            labels: B tensors [n_b] of class ids; target_masks: B tensors [n_b, H, W] bool.
            ignore_masks: [B, H, W] bool.
            coords: [B, K, 2] points in [0, 1] (x, y), per image, where its masks are compared.
        """
        padded_labels = pad_sequence(list(labels), batch_first=True).long()  # [B, n_max]
        probs = pred_logits.float().softmax(dim=-1)
        class_cost = -probs.gather(2, padded_labels.unsqueeze(1).expand(-1, probs.shape[1], -1))
        pred_points = point_sample(pred_masks.float(), coords)  # [B, Q, K]
        pixels = nearest_pixel_index(coords, *ignore_masks.shape[-2:])  # [B, K]
        masks = pad_sequence([m.flatten(1) for m in target_masks], batch_first=True)
        index = pixels.unsqueeze(1).expand(-1, masks.shape[1], -1)
        target_points = masks.gather(2, index).float()  # [B, n_max, K]
        weights = (~ignore_masks.flatten(1).gather(1, pixels)).float()  # [B, K]
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

        The costs of all images are computed in one batched pass on the predictions' device and
        copied to the host once, for the assignment solver.

        Args:
            outputs: {"pred_logits": [B, Q, C'], "pred_masks": [B, Q, h, w], ...}.
            targets: B dicts with "labels" [n_b], "masks" [n_b, H, W], "ignore_mask" [H, W],
                all padded to one size H x W.

        Returns:
            B pairs ``(query_idx, target_idx)`` of int64 tensors (on CPU) of length min(Q, n_b).
        """
        pred_logits, pred_masks = outputs["pred_logits"], outputs["pred_masks"]
        if len(targets) != pred_logits.shape[0]:
            raise ValueError(
                f"got {len(targets)} targets for a batch of {pred_logits.shape[0]} images"
            )
        check_one_target_size(targets)
        counts = [len(target["labels"]) for target in targets]
        empty = torch.zeros(0, dtype=torch.long)
        indices = [(empty, empty.clone()) for _ in targets]
        if not any(counts):
            return indices
        device = pred_masks.device
        with torch.autocast(device_type=device.type, enabled=False):
            # The images with targets draw their points in turn (one draw of the same numbers).
            drawn = iter(torch.rand(sum(n > 0 for n in counts), self.num_points, 2, device=device))
            coords = torch.stack(
                [
                    next(drawn) if n else torch.zeros(self.num_points, 2, device=device)
                    for n in counts
                ]
            )
            costs = self.batch_cost_matrices(
                pred_logits,
                pred_masks,
                [t["labels"] for t in targets],
                [t["masks"] for t in targets],
                torch.stack([t["ignore_mask"] for t in targets]),
                coords,
            ).cpu()
        for image, count in enumerate(counts):
            if count:
                indices[image] = _assign(costs[image, :, :count], image)
        return indices


def check_one_target_size(targets: Sequence[dict[str, torch.Tensor]]) -> None:
    """Target masks and ignore masks of a batch must share one (padded) size."""
    sizes = {tuple(t["masks"].shape[-2:]) for t in targets} | {
        tuple(t["ignore_mask"].shape) for t in targets
    }
    if len(sizes) > 1:
        raise ValueError(
            f"target masks and ignore masks must be padded to one batch size; got sizes {sorted(sizes)}"
        )


def _assign(cost: torch.Tensor, image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost one-to-one assignment of a [Q, n] cost matrix (on CPU), as int64 tensors."""
    cost = cost.numpy()
    if not np.isfinite(cost).all():
        raise FloatingPointError(
            f"matching cost of image {image} in the batch is not finite: the predictions contain "
            "nan/inf (lower the learning rate or check the inputs)"
        )
    query_idx, target_idx = linear_sum_assignment(cost)
    return torch.as_tensor(query_idx, dtype=torch.long), torch.as_tensor(
        target_idx, dtype=torch.long
    )
