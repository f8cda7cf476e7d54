"""The training objective of the CEL model (eq. 8) over all decoder layers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from detectron2.config import configurable
from detectron2.utils import comm
from torch import nn

from .losses import (
    background_aware_class_loss,
    background_class_ce,
    dice_loss,
    multilabel_ranking_loss,
    sigmoid_ce_loss,
    sigmoid_focal_loss,
)
from .matcher import HungarianMatcher
from .point_sampling import nearest_pixel_index, point_sample, sample_points_by_uncertainty

Indices = list[tuple[torch.Tensor, torch.Tensor]]
BACKGROUND_MODES = ("none", "learned")


@dataclass(frozen=True)
class LossDivisors:
    """The counts the loss means divide by, each summed over processes / their number, at least 1.

    ``masks``: ground-truth masks; ``matched`` / ``unmatched``: queries matched or not (each image
    matches min(Q, n) queries); ``ranked_images``: images with at least one image-level label.
    """

    masks: float
    matched: float
    unmatched: float
    ranked_images: float

    @classmethod
    def of_batch(
        cls, targets: Sequence[dict[str, torch.Tensor]], num_queries: int, device: torch.device
    ) -> LossDivisors:
        num_masks = [len(t["labels"]) for t in targets]
        matched = sum(min(n, num_queries) for n in num_masks)
        counts = [
            sum(num_masks),
            matched,
            len(targets) * num_queries - matched,
            sum(len(t["image_labels"]) > 0 for t in targets),
        ]
        counts = torch.tensor(counts, dtype=torch.float64, device=device)
        world_size = comm.get_world_size()
        if world_size > 1:
            torch.distributed.all_reduce(counts)
        return cls(*(max(count / world_size, 1.0) for count in counts.tolist()))


class CELCriterion(nn.Module):
    """Eq. 8, ``alpha * L_class + beta * L_mask + gamma * L_rank``, for every decoder layer.

    ``forward`` returns already-weighted terms whose sum is the total loss:

    * ``loss_ce``, ``loss_kl``: ``alpha * lam * CE`` and ``alpha * (1 - lam) * KL`` of eq. 5
      (with USE_KL False: ``loss_ce = alpha * CE`` and no ``loss_kl``; with BACKGROUND "learned":
      ``loss_ce = alpha *`` the background-class CE of prior work and no ``loss_kl``).
    * ``loss_mask``, ``loss_dice``: beta-weighted sigmoid-CE (or focal) and dice on uncertainty-
      sampled points of the matched masks, divided by the number of ground-truth masks.
    * ``loss_rank``: ``gamma *`` eq. 6-7 (absent with USE_RANK False).

    Every mean (over masks; over matched and unmatched queries in eq. 5; over images with labels
    in eq. 7) divides by the batch's count summed over processes and divided by their number
    (:class:`LossDivisors`). DDP averages gradients over processes, so a batch split across N
    processes gets exactly the gradient of the whole batch in one. (The learned-background
    baseline's CE keeps a per-process mean.)

    With deep supervision every entry ``i`` of ``outputs["aux_outputs"]`` adds the same keys
    suffixed ``_{i}``; each layer is matched on its own.
    """

    @configurable
    def __init__(
        self,
        *,
        matcher: HungarianMatcher,
        class_weight: float,
        mask_weight: float,
        dice_weight: float,
        rank_weight: float,
        rank_scale: float,
        kl_lambda: float,
        use_kl: bool,
        use_rank: bool,
        background: str,
        no_object_weight: float,
        focal: bool,
        focal_alpha: float,
        focal_gamma: float,
        deep_supervision: bool,
        num_points: int,
        oversample_ratio: float,
        importance_sample_ratio: float,
    ):
        super().__init__()
        if background not in BACKGROUND_MODES:
            raise ValueError(
                f"MODEL.CEL.BACKGROUND must be one of {BACKGROUND_MODES}, got {background!r}"
            )
        if not 0.0 <= kl_lambda <= 1.0:
            raise ValueError(f"MODEL.CEL.LOSS.KL_LAMBDA must be in [0, 1], got {kl_lambda}")
        self.matcher = matcher
        self.class_weight = class_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.rank_weight = rank_weight
        self.rank_scale = rank_scale
        self.kl_lambda = kl_lambda
        self.use_kl = use_kl
        self.use_rank = use_rank
        self.background = background
        self.no_object_weight = no_object_weight
        self.focal = focal
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.deep_supervision = deep_supervision
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    @classmethod
    def from_config(cls, cfg) -> dict:
        loss = cfg.MODEL.CEL.LOSS
        return {
            "matcher": HungarianMatcher(cfg),
            "class_weight": loss.CLASS_WEIGHT,
            "mask_weight": loss.MASK_WEIGHT,
            "dice_weight": loss.DICE_WEIGHT,
            "rank_weight": loss.RANK_WEIGHT,
            "rank_scale": loss.RANK_SCALE,
            "kl_lambda": loss.KL_LAMBDA,
            "use_kl": loss.USE_KL,
            "use_rank": loss.USE_RANK,
            "background": cfg.MODEL.CEL.BACKGROUND,
            "no_object_weight": loss.NO_OBJECT_WEIGHT,
            "focal": loss.FOCAL,
            "focal_alpha": loss.FOCAL_ALPHA,
            "focal_gamma": loss.FOCAL_GAMMA,
            "deep_supervision": loss.DEEP_SUPERVISION,
            "num_points": loss.TRAIN_NUM_POINTS,
            "oversample_ratio": loss.OVERSAMPLE_RATIO,
            "importance_sample_ratio": loss.IMPORTANCE_SAMPLE_RATIO,
        }

    def forward(
        self, outputs: dict[str, object], targets: Sequence[dict[str, torch.Tensor]]
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms (see the class docstring) of ``outputs`` against ``targets``."""
        if len(targets) != outputs["pred_logits"].shape[0]:
            raise ValueError(
                f"got {len(targets)} targets for a batch of {outputs['pred_logits'].shape[0]} images"
            )
        divisors = LossDivisors.of_batch(
            targets, outputs["pred_logits"].shape[1], outputs["pred_masks"].device
        )
        losses = self.layer_losses(outputs, targets, divisors)
        if self.deep_supervision:
            for layer, aux_outputs in enumerate(outputs.get("aux_outputs", [])):
                aux_losses = self.layer_losses(aux_outputs, targets, divisors)
                losses.update({f"{name}_{layer}": value for name, value in aux_losses.items()})
        return losses

    def layer_losses(
        self,
        outputs: dict[str, torch.Tensor],
        targets: Sequence[dict[str, torch.Tensor]],
        divisors: LossDivisors,
    ) -> dict[str, torch.Tensor]:
        """Eq. 8 for the predictions of one decoder layer."""
        self._check_columns(outputs)
        indices = self.matcher(outputs, targets)
        losses = self.class_losses(outputs, targets, indices, divisors)
        losses.update(self.mask_losses(outputs, targets, indices, divisors.masks))
        if self.use_rank:
            image_labels = [t["image_labels"] for t in targets]
            losses["loss_rank"] = self.rank_weight * multilabel_ranking_loss(
                outputs["pred_similarity"].float(),
                image_labels,
                divisors.ranked_images,
                self.rank_scale,
            )
        return losses

    def class_losses(
        self,
        outputs: dict[str, torch.Tensor],
        targets: Sequence[dict[str, torch.Tensor]],
        indices: Indices,
        divisors: LossDivisors,
    ) -> dict[str, torch.Tensor]:
        """alpha * L_class: eq. 5 (or plain CE / the learned-background CE, see the class docstring)."""
        logits = outputs["pred_logits"].float()
        batch_idx, query_idx = _matched_queries(indices, logits.device)
        matched = torch.zeros(logits.shape[:2], dtype=torch.bool, device=logits.device)
        matched[batch_idx, query_idx] = True
        labels = torch.zeros(logits.shape[:2], dtype=torch.long, device=logits.device)
        labels[batch_idx, query_idx] = _matched_target_labels(targets, indices, logits.device)
        if self.background == "learned":
            return {
                "loss_ce": self.class_weight
                * background_class_ce(logits, matched, labels, self.no_object_weight)
            }
        lam = self.kl_lambda if self.use_kl else 1.0
        ce, kl = background_aware_class_loss(
            logits, matched, labels, lam, divisors.matched, divisors.unmatched
        )
        losses = {"loss_ce": self.class_weight * ce}
        if self.use_kl:
            losses["loss_kl"] = self.class_weight * kl
        return losses

    def mask_losses(
        self,
        outputs: dict[str, torch.Tensor],
        targets: Sequence[dict[str, torch.Tensor]],
        indices: Indices,
        num_masks: float,
    ) -> dict[str, torch.Tensor]:
        """beta * L_mask: sigmoid-CE (or focal) and dice on points of the matched masks."""
        pred_masks = outputs["pred_masks"]
        batch_idx, query_idx = _matched_queries(indices, pred_masks.device)
        if len(batch_idx) == 0:
            zero = pred_masks.sum() * 0.0  # keeps every mask logit in the graph
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        matched_logits = pred_masks[batch_idx, query_idx].float().unsqueeze(1)  # [M, 1, h, w]
        with torch.no_grad():
            coords = sample_points_by_uncertainty(
                matched_logits, self.num_points, self.oversample_ratio, self.importance_sample_ratio
            )
            target_points, weights = _sample_targets(targets, indices, batch_idx, coords)
        point_logits = point_sample(matched_logits, coords)[:, 0]
        if self.focal:
            mask_term = sigmoid_focal_loss(
                point_logits, target_points, weights, self.focal_alpha, self.focal_gamma
            )
        else:
            mask_term = sigmoid_ce_loss(point_logits, target_points, weights)
        return {
            "loss_mask": self.mask_weight * mask_term / num_masks,
            "loss_dice": self.dice_weight
            * dice_loss(point_logits, target_points, weights)
            / num_masks,
        }

    def _check_columns(self, outputs: dict[str, torch.Tensor]) -> None:
        num_classes = outputs["pred_similarity"].shape[-1]
        expected = num_classes + (1 if self.background == "learned" else 0)
        if outputs["pred_logits"].shape[-1] != expected:
            raise ValueError(
                f"pred_logits has {outputs['pred_logits'].shape[-1]} columns but MODEL.CEL.BACKGROUND="
                f"{self.background!r} with {num_classes} classes in pred_similarity needs {expected}"
            )


def _matched_queries(indices: Indices, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(image index, query index) of every matched query of the batch, images concatenated."""
    batch_idx = torch.cat(
        [torch.full_like(query, image) for image, (query, _) in enumerate(indices)]
    )
    query_idx = torch.cat([query for query, _ in indices])
    return batch_idx.to(device), query_idx.to(device)


def _matched_target_labels(
    targets: Sequence[dict[str, torch.Tensor]], indices: Indices, device: torch.device
) -> torch.Tensor:
    """Class ids of the targets matched by ``indices``, in the order of :func:`_matched_queries`."""
    return torch.cat(
        [t["labels"].to(device)[tgt.to(device)] for t, (_, tgt) in zip(targets, indices)]
    ).long()


def _sample_targets(
    targets: Sequence[dict[str, torch.Tensor]],
    indices: Indices,
    batch_idx: torch.Tensor,
    coords: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Matched target masks and point weights (0 where ignored) at ``coords`` [M, P, 2] -> 2 x [M, P]."""
    sizes = {tuple(t["masks"].shape[-2:]) for t in targets} | {
        tuple(t["ignore_mask"].shape) for t in targets
    }
    if len(sizes) > 1:
        raise ValueError(
            f"target masks and ignore masks must be padded to one batch size; got sizes {sorted(sizes)}"
        )
    device = coords.device
    all_masks = torch.cat([t["masks"] for t in targets]).to(device).flatten(1)  # [sum n_b, H*W]
    ignore = torch.stack([t["ignore_mask"] for t in targets]).to(device).flatten(1)  # [B, H*W]
    first_mask = torch.tensor([0] + [len(t["labels"]) for t in targets[:-1]], device=device).cumsum(
        0
    )
    mask_rows = torch.cat(
        [first_mask[image] + tgt.to(device) for image, (_, tgt) in enumerate(indices)]
    )
    pixels = nearest_pixel_index(coords, *targets[0]["masks"].shape[-2:])  # [M, P]
    target_points = all_masks[mask_rows.unsqueeze(1), pixels].float()
    weights = (~ignore[batch_idx.unsqueeze(1), pixels]).float()
    return target_points, weights
