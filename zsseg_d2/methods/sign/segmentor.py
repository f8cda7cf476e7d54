"""SIGN: Spatial-information Incorporated Generative Network (Cheng, Nandi, Natarajan, Abd-Almageed,
ICCV 2021).

Inference: image -> encoder E -> SIM (features ⊕ positional encoding, eq. 1) -> classifier C
(1x1, one output per class, seen and unseen) -> softmax, upsampled to the image. Training runs in
steps, chosen by ``MODEL.STAGE`` (each step starts from the previous one's weights):

- "train": Training Step (SIM), CE on seen classes plus alpha * KL (eq. 3-4), jointly with
  Training Step (G), beta * per-class MMD plus the adversarial loss (eq. 5-8) on detached real
  features, as the paper does ("the networks and losses do not overlap");
- "transfer": E, SIM and G frozen; C learns from real features (seen ground truth) and synthetic
  features G(e ⊕ z) of a random pseudo ground truth including unseen classes (eq. 9-10);
- "self_training": the transfer objective plus CE on unlabeled pixels that the transfer model
  predicts as unseen (its classifier kept frozen as the labeler), weighted by ST (the top fraction
  of each unseen class's pseudo labels over the training set, thresholds from a pass over it at
  the start: :meth:`SIGN.before_training`) or AST (eq. 17).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Callable

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ...modeling.segmentor import ZeroShotSegmentor
from .generator import FeatureDiscriminator, FeatureGenerator
from .losses import adversarial_loss, kl_to_standard_normal, per_class_mmd, weighted_cross_entropy
from .positional_encoding import PositionalEncoder
from .self_training import (
    SELF_TRAINING_MODES,
    confidence_histogram,
    fraction_thresholds,
    pseudo_label_unseen,
)
from .sim import SpatialInformationModule
from .transfer import random_relabel

logger = logging.getLogger(__name__)


def pixels_last(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, H, W, C]``."""
    return x.permute(0, 2, 3, 1)


@META_ARCH_REGISTRY.register()
class SIGN(ZeroShotSegmentor):
    """Encoder E -> SIM -> classifier C, with the feature generator G and discriminator D."""

    STAGES = ("train", "transfer", "self_training")
    OPEN_VOCABULARY = False

    @configurable
    def __init__(
        self,
        *,
        in_feature: str,
        sim: SpatialInformationModule,
        generator: FeatureGenerator,
        discriminator: FeatureDiscriminator,
        self_training: str = "none",
        kl_weight: float = 100.0,
        mmd_weight: float = 50.0,
        adv_weight: float = 1.0,
        mmd_max_pixels: int = 512,
        st_fraction: float = 0.75,
        st_thresholds: tuple[float, ...] = (),
        ast_temperature: float = 2.0,
        **base,
    ):
        super().__init__(**base)
        if self_training not in SELF_TRAINING_MODES:
            raise ValueError(
                f"MODEL.SIGN.SELF_TRAINING must be one of {SELF_TRAINING_MODES}, got {self_training!r}"
            )
        if (self.stage == "self_training") != (self_training != "none"):
            raise ValueError(
                f"MODEL.STAGE {self.stage!r} with MODEL.SIGN.SELF_TRAINING {self_training!r}: the "
                "'self_training' stage needs SELF_TRAINING 'st' or 'ast', and the other stages need 'none'"
            )
        self.in_feature, self.sim = in_feature, sim
        self.classifier = nn.Linear(sim.feature_dim, len(self.train_vocabulary))
        self.generator, self.discriminator = generator, discriminator
        self.self_training = self_training
        self.kl_weight, self.mmd_weight, self.adv_weight = kl_weight, mmd_weight, adv_weight
        self.mmd_max_pixels = mmd_max_pixels
        self.st_fraction, self.ast_temperature = st_fraction, ast_temperature
        seen, unseen = self.split.seen_ids, self.split.unseen_ids
        self.register_buffer("unseen_ids", torch.tensor(unseen, dtype=torch.long), False)
        self.register_buffer("seen_ids", torch.tensor(seen, dtype=torch.long), False)
        to_seen = torch.full((256,), self.ignore_value, dtype=torch.long)
        to_seen[seen] = torch.arange(len(seen))
        self.register_buffer("to_seen_index", to_seen, persistent=False)
        # Self-training: the classifier the stage starts from, frozen, labels the unseen pixels
        # (NaN until copied), and ST's per-class thresholds (NaN until the pass over the data).
        nan = float("nan")
        self.register_buffer("labeler_weight", torch.full_like(self.classifier.weight, nan))
        self.register_buffer("labeler_bias", torch.full_like(self.classifier.bias, nan))
        if st_thresholds and len(st_thresholds) != len(unseen):
            raise ValueError(
                f"MODEL.SIGN.ST_THRESHOLDS needs one value per unseen class {list(self.split.unseen)}, "
                f"got {list(st_thresholds)}"
            )
        thresholds = torch.tensor(list(st_thresholds) or [nan] * len(unseen), dtype=torch.float)
        self.register_buffer("st_thresholds", thresholds)
        if self.stage != "train":  # only C learns after the training step; SIM keeps sampling z
            self.freeze(self.backbone)
            self.freeze(self.sim, self.generator, self.discriminator, eval_mode=False)
        self.init_vocabulary()

    @classmethod
    def from_config(cls, cfg) -> dict:
        sign = cfg.MODEL.SIGN
        args = cls.base_config(cfg)
        shapes = args["backbone"].output_shape()
        if sign.IN_FEATURE not in shapes:
            raise ValueError(
                f"MODEL.SIGN.IN_FEATURE {sign.IN_FEATURE!r} is not a backbone output; it has {sorted(shapes)}"
            )
        encoder = PositionalEncoder(
            sign.POSITIONAL_ENCODING, sign.PE_DIM, sign.PE_SCALE, sign.PE_TRAIN_SIZE
        )
        sim = SpatialInformationModule(
            shapes[sign.IN_FEATURE].channels,
            encoder,
            sign.FEATURE_DIM,
            sign.LATENT_DIM,
            sign.SIM_TYPE,
            sign.SIM_HEADS,
            sign.SIM_FEEDFORWARD,
            sign.SIM_BLOCKS,
            sign.SIM_HIDDEN,
        )
        embed_dim = args["semantic_source"].dim
        return {
            **args,
            "in_feature": sign.IN_FEATURE,
            "sim": sim,
            "generator": FeatureGenerator(
                embed_dim, sign.LATENT_DIM, sign.GENERATOR_HIDDEN, sign.FEATURE_DIM
            ),
            "discriminator": FeatureDiscriminator(sign.FEATURE_DIM, sign.DISCRIMINATOR_HIDDEN),
            "self_training": sign.SELF_TRAINING,
            "kl_weight": sign.KL_WEIGHT,
            "mmd_weight": sign.MMD_WEIGHT,
            "adv_weight": sign.ADV_WEIGHT,
            "mmd_max_pixels": sign.MMD_MAX_PIXELS,
            "st_fraction": sign.ST_FRACTION,
            "st_thresholds": tuple(sign.ST_THRESHOLDS),
            "ast_temperature": sign.AST_TEMPERATURE,
        }

    def _features_and_labels(self, batched_inputs: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
        """E(x) and the labels nearest-resized to its resolution (where the losses are taken)."""
        images = self.preprocess(batched_inputs)
        features = self.backbone(images.tensor)[self.in_feature]
        labels = self.padded_labels(batched_inputs, images)
        labels = F.interpolate(labels[:, None].float(), size=features.shape[-2:], mode="nearest")
        return features, labels[:, 0].long()

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """The stage's weighted losses."""
        features, labels = self._features_and_labels(batched_inputs)
        if self.stage == "train":
            return self._training_step_losses(features, labels)
        return self._transfer_losses(features, labels)

    def before_training(self, data_loader: Callable[[], Iterable[list[dict]]]) -> None:
        """Run by the trainer once the stage's weights are loaded: the self-training stage keeps
        its starting classifier as the labeler and, for ST, computes the per-class thresholds
        over one pass of ``data_loader()`` (the training images, unseen pixels unlabeled)."""
        if self.stage != "self_training":
            return
        self._ensure_labeler()
        if self.self_training != "st" or not self.st_thresholds.isnan().any():
            return
        histogram = None
        with torch.no_grad():
            for batched_inputs in data_loader():
                features, labels = self._features_and_labels(batched_inputs)
                probs = self._labeler_probs(self.sim(features).features)
                counts = confidence_histogram(probs, labels, self.unseen_ids, self.ignore_value)
                histogram = counts if histogram is None else histogram + counts
        if histogram is None:
            raise ValueError("ST thresholds: the training data loader gave no image")
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(histogram)
        self.st_thresholds.copy_(fraction_thresholds(histogram, self.st_fraction).float())
        logger.info(
            f"ST thresholds (top {self.st_fraction:.0%} of each unseen class's "
            f"{histogram.sum(1).tolist()} pseudo labels): MODEL.SIGN.ST_THRESHOLDS "
            f"{[round(t, 4) for t in self.st_thresholds.tolist()]}"
        )

    def _ensure_labeler(self) -> None:
        if self.labeler_weight.isnan().any():
            with torch.no_grad():
                self.labeler_weight.copy_(self.classifier.weight)
                self.labeler_bias.copy_(self.classifier.bias)

    def _labeler_probs(self, features: torch.Tensor) -> torch.Tensor:
        """Softmax of the frozen starting classifier on F_x ``[B, D, h, w]``."""
        self._ensure_labeler()
        logits = pixels_last(features).matmul(self.labeler_weight.t()).add(self.labeler_bias)
        return logits.permute(0, 3, 1, 2).softmax(dim=1)

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        """Per image ``sem_seg`` [C, H, W]: softmax over the evaluation vocabulary's classes."""
        images = self.preprocess(batched_inputs)
        features = self.backbone(images.tensor)[self.in_feature]
        logits = self._classify(self.sim(features).features)[:, self.test_class_ids]
        logits = F.interpolate(
            logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )
        return [
            {"sem_seg": self.postprocess(image_logits, images, i, x).softmax(dim=0)}
            for i, (image_logits, x) in enumerate(zip(logits, batched_inputs))
        ]

    def _classify(self, features: torch.Tensor) -> torch.Tensor:
        return (
            pixels_last(features)
            .matmul(self.classifier.weight.t())
            .add(self.classifier.bias)
            .permute(0, 3, 1, 2)
        )

    def _training_step_losses(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        out = self.sim(features)
        seen_logits = self._classify(out.features)[:, self.seen_ids]
        losses = {
            "loss_ce": weighted_cross_entropy(
                seen_logits, self.to_seen_index[labels.clamp(max=255)], None, self.ignore_value
            ),
            "loss_kl": self.kl_weight * kl_to_standard_normal(out.mean, out.log_var),
        }
        valid = labels != self.ignore_value
        real = pixels_last(out.features)[valid].detach()
        fake = self.generator(
            self.train_class_vectors[labels[valid]], pixels_last(out.latent)[valid].detach()
        )
        if real.shape[0] == 0:  # no labelled pixel: G and D get a zero loss
            zero = self.zero_loss(self.generator, self.discriminator)
            return {**losses, "loss_mmd": zero, "loss_adv": zero}
        losses["loss_mmd"] = self.mmd_weight * per_class_mmd(
            real, fake, labels[valid], self.mmd_max_pixels
        )
        losses["loss_adv"] = self.adv_weight * adversarial_loss(self.discriminator, real, fake)
        return losses

    def _transfer_losses(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            out = self.sim(features)
            pseudo_gt = random_relabel(labels, len(self.train_vocabulary), self.ignore_value)
            valid = pseudo_gt != self.ignore_value
            synthetic = self.generator(
                self.train_class_vectors[pseudo_gt[valid]], pixels_last(out.latent)[valid]
            )
        logits = self._classify(out.features)
        losses = {
            "loss_ce": weighted_cross_entropy(logits, labels, None, self.ignore_value),
            "loss_ce_synthetic": weighted_cross_entropy(
                self.classifier(synthetic).t()[None, :, :, None],
                pseudo_gt[valid][None, :, None],
                None,
                self.ignore_value,
            ),
        }
        if self.self_training != "none":
            if self.self_training == "st" and self.st_thresholds.isnan().any():
                raise ValueError(
                    "SIGN's ST thresholds are not computed: train through tools/train_net.py (the "
                    "trainer runs SIGN.before_training, a pass over the training images) or set "
                    "MODEL.SIGN.ST_THRESHOLDS"
                )
            with torch.no_grad():
                probs = self._labeler_probs(out.features)
            pseudo = pseudo_label_unseen(
                probs,
                labels,
                self.unseen_ids,
                self.self_training,
                self.st_thresholds,
                self.ast_temperature,
                self.ignore_value,
            )
            losses["loss_ce_pseudo"] = weighted_cross_entropy(
                logits, pseudo.labels, pseudo.weights, self.ignore_value
            )
        return losses
