"""The training objective of the CEL model (eq. 8) over all decoder layers."""

from __future__ import annotations

import itertools
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
    image_label_mask,
    multilabel_ranking_loss,
    sigmoid_ce_loss,
    sigmoid_focal_loss,
)
from .matcher import HungarianMatcher, check_one_target_size
from .point_sampling import nearest_pixel_index, point_sample, sample_points_by_uncertainty

Indices = list[tuple[torch.Tensor, torch.Tensor]]
BACKGROUND_MODES = ("none", "learned")


@dataclass(frozen=True)
class BatchTargets:
    """The targets of a batch in the layouts the losses read, built once for all decoder layers.

    ``labels`` [N] and ``masks`` [N, H*W] (bool): every target of the batch, images concatenated;
    ``first_row``: where each image's targets start (on the host); ``ignore`` [B, H*W] bool;
    ``size``: (H, W); ``positives`` [B, C] bool: each image's image-level labels (None when not
    asked for: without the ranking loss).
    """

    labels: torch.Tensor
    masks: torch.Tensor
    first_row: list[int]
    ignore: torch.Tensor
    size: tuple[int, int]
    positives: torch.Tensor | None

    @classmethod
    def of_batch(
        cls,
        targets: Sequence[dict[str, torch.Tensor]],
        num_classes: int | None,
        device: torch.device,
    ) -> BatchTargets:
        """``num_classes``: the columns of ``positives``; None for no ``positives``."""
        check_one_target_size(targets)
        counts = [len(t["labels"]) for t in targets]
        return cls(
            labels=torch.cat([t["labels"] for t in targets]).to(device).long(),
            masks=torch.cat([t["masks"] for t in targets]).to(device).flatten(1),
            first_row=[0, *itertools.accumulate(counts)][:-1],
            ignore=torch.stack([t["ignore_mask"] for t in targets]).to(device).flatten(1),
            size=tuple(targets[0]["ignore_mask"].shape),
            positives=None
            if num_classes is None
            else image_label_mask([t["image_labels"] for t in targets], num_classes, device),
        )


@dataclass(frozen=True)
class MatchedPairs:
    """The matched (query, target) pairs of one layer, as index tensors on the predictions'
    device: ``image`` and ``query`` [M] index the predictions, ``target_row`` [M] the rows of
    :class:`BatchTargets`; ``count`` = M, known on the host."""

    image: torch.Tensor
    query: torch.Tensor
    target_row: torch.Tensor
    count: int

    @classmethod
    def of_indices(
        cls, indices: Indices, first_row: list[int], device: torch.device
    ) -> MatchedPairs:
        """From the matcher's host indices with one (non-blocking) copy to ``device``."""
        image = torch.cat([torch.full_like(query, i) for i, (query, _) in enumerate(indices)])
        query = torch.cat([query for query, _ in indices])
        row = torch.cat([first_row[i] + target for i, (_, target) in enumerate(indices)])
        packed = torch.stack([image, query, row]).to(device, non_blocking=True)
        return cls(*packed.unbind(0), count=len(query))


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
        world_size = comm.get_world_size()
        if world_size > 1:  # the only host-device sync of the criterion's counts
            summed = torch.tensor(counts, dtype=torch.float64, device=device)
            torch.distributed.all_reduce(summed)
            counts = summed.tolist()
        return cls(*(max(count / world_size, 1.0) for count in counts))


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
        device = outputs["pred_masks"].device
        divisors = LossDivisors.of_batch(targets, outputs["pred_logits"].shape[1], device)
        num_classes = outputs["pred_similarity"].shape[-1] if self.use_rank else None
        batch = BatchTargets.of_batch(targets, num_classes, device)
        losses = self.layer_losses(outputs, targets, batch, divisors)
        if self.deep_supervision:
            for layer, aux_outputs in enumerate(outputs.get("aux_outputs", [])):
                aux_losses = self.layer_losses(aux_outputs, targets, batch, divisors)
                losses.update({f"{name}_{layer}": value for name, value in aux_losses.items()})
        return losses

    def layer_losses(
        self,
        outputs: dict[str, torch.Tensor],
        targets: Sequence[dict[str, torch.Tensor]],
        batch: BatchTargets,
        divisors: LossDivisors,
    ) -> dict[str, torch.Tensor]:
        """Eq. 8 for the predictions of one decoder layer."""
        self._check_columns(outputs)
        indices = self.matcher(outputs, targets)
        pairs = MatchedPairs.of_indices(indices, batch.first_row, outputs["pred_masks"].device)
        losses = self.class_losses(outputs, batch, pairs, divisors)
        losses.update(self.mask_losses(outputs, batch, pairs, divisors.masks))
        if self.use_rank:
            losses["loss_rank"] = self.rank_weight * multilabel_ranking_loss(
                outputs["pred_similarity"].float(),
                batch.positives,
                divisors.ranked_images,
                self.rank_scale,
            )
        return losses

    def class_losses(
        self,
        outputs: dict[str, torch.Tensor],
        batch: BatchTargets,
        pairs: MatchedPairs,
        divisors: LossDivisors,
    ) -> dict[str, torch.Tensor]:
        """alpha * L_class: eq. 5 (or plain CE / the learned-background CE, see the class docstring)."""
        logits = outputs["pred_logits"].float()
        matched = torch.zeros(logits.shape[:2], dtype=torch.bool, device=logits.device)
        matched[pairs.image, pairs.query] = True
        labels = torch.zeros(logits.shape[:2], dtype=torch.long, device=logits.device)
        labels[pairs.image, pairs.query] = batch.labels[pairs.target_row]
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
        batch: BatchTargets,
        pairs: MatchedPairs,
        num_masks: float,
    ) -> dict[str, torch.Tensor]:
        """beta * L_mask: sigmoid-CE (or focal) and dice on points of the matched masks."""
        pred_masks = outputs["pred_masks"]
        if pairs.count == 0:
            zero = pred_masks.sum() * 0.0  # keeps every mask logit in the graph
            return {"loss_mask": zero, "loss_dice": zero.clone()}
        matched_logits = pred_masks[pairs.image, pairs.query].float().unsqueeze(1)  # [M, 1, h, w]
        with torch.no_grad():
            coords = sample_points_by_uncertainty(
                matched_logits, self.num_points, self.oversample_ratio, self.importance_sample_ratio
            )
            target_points, weights = _sample_targets(batch, pairs, coords)
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


def _sample_targets(
    batch: BatchTargets, pairs: MatchedPairs, coords: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Matched target masks and point weights (0 where ignored) at ``coords`` [M, P, 2] -> 2 x [M, P]."""
    pixels = nearest_pixel_index(coords, *batch.size)  # [M, P]
    target_points = batch.masks[pairs.target_row.unsqueeze(1), pixels].float()
    weights = (~batch.ignore[pairs.image.unsqueeze(1), pixels]).float()
    return target_points, weights
