"""SIGN: Spatial-information Incorporated Generative Network (Cheng, Nandi, Natarajan, Abd-Almageed,
ICCV 2021).

Inference: image -> encoder E -> SIM (features ⊕ positional encoding, eq. 1) -> classifier C
(1x1, one output per class, seen and unseen) -> softmax, upsampled to the image. Training runs in
steps, chosen by ``MODEL.SIGN.STEP`` (each step starts from the previous one's weights):

- "train": Training Step (SIM), CE on seen classes plus alpha * KL (eq. 3-4), jointly with
  Training Step (G), beta * per-class MMD plus the adversarial loss (eq. 5-8) on detached real
  features, as the paper does ("the networks and losses do not overlap");
- "transfer": E, SIM and G frozen; C learns from real features (seen ground truth) and synthetic
  features G(e ⊕ z) of a random pseudo ground truth including unseen classes (eq. 9-10);
- "self_training": the transfer objective plus CE on unlabeled pixels that the model predicts as
  unseen, weighted by ST (top fraction) or AST (eq. 17).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.backbone import Backbone
from detectron2.structures import ImageList
from torch import nn

from ..class_split import split_classes
from ..losses.sign_losses import (
    adversarial_loss,
    kl_to_standard_normal,
    per_class_mmd,
    weighted_cross_entropy,
)
from ..semantic import build_semantic_source
from ..sign import (
    SELF_TRAINING_MODES,
    FeatureDiscriminator,
    FeatureGenerator,
    PositionalEncoder,
    SpatialInformationModule,
    pseudo_label_unseen,
    random_relabel,
)

STEPS = ("train", "transfer", "self_training")


def pixels_last(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W]`` -> ``[B, H, W, C]``."""
    return x.permute(0, 2, 3, 1)


@META_ARCH_REGISTRY.register()
class SIGN(nn.Module):
    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        sim: SpatialInformationModule,
        generator: FeatureGenerator,
        discriminator: FeatureDiscriminator,
        class_embeddings: torch.Tensor,
        class_names: Sequence[str],
        unseen_ids: Sequence[int],
        step: str = "train",
        self_training: str = "none",
        kl_weight: float = 100.0,
        mmd_weight: float = 50.0,
        adv_weight: float = 1.0,
        mmd_max_pixels: int = 512,
        st_fraction: float = 0.75,
        ast_temperature: float = 2.0,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        ignore_value: int = 255,
    ):
        super().__init__()
        if step not in STEPS:
            raise ValueError(f"MODEL.SIGN.STEP must be one of {STEPS}, got {step!r}")
        if self_training not in SELF_TRAINING_MODES:
            raise ValueError(
                f"MODEL.SIGN.SELF_TRAINING must be one of {SELF_TRAINING_MODES}, got {self_training!r}"
            )
        if (step == "self_training") != (self_training != "none"):
            raise ValueError(
                f"MODEL.SIGN.STEP {step!r} with MODEL.SIGN.SELF_TRAINING {self_training!r}: the 'self_training' "
                "step needs SELF_TRAINING 'st' or 'ast', and the other steps need 'none'"
            )
        self.backbone, self.in_feature, self.sim = backbone, in_feature, sim
        self.classifier = nn.Linear(sim.feature_dim, len(class_names))
        self.generator, self.discriminator = generator, discriminator
        self.class_names = list(class_names)
        self.step, self.self_training = step, self_training
        self.kl_weight, self.mmd_weight, self.adv_weight = kl_weight, mmd_weight, adv_weight
        self.mmd_max_pixels, self.st_fraction, self.ast_temperature = (
            mmd_max_pixels,
            st_fraction,
            ast_temperature,
        )
        self.ignore_value = ignore_value
        self.register_buffer("class_embeddings", class_embeddings.float(), persistent=False)
        self.register_buffer(
            "unseen_ids", torch.tensor(sorted(unseen_ids), dtype=torch.long), persistent=False
        )
        seen = [i for i in range(len(class_names)) if i not in set(unseen_ids)]
        self.register_buffer("seen_ids", torch.tensor(seen, dtype=torch.long), persistent=False)
        to_seen = torch.full((256,), ignore_value, dtype=torch.long)
        to_seen[seen] = torch.arange(len(seen))
        self.register_buffer("to_seen_index", to_seen, persistent=False)
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.register_buffer("test_class_ids", torch.arange(len(class_names)), persistent=False)
        if step != "train":  # only C learns after the training step
            for module in (self.backbone, self.sim, self.generator, self.discriminator):
                module.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg) -> dict:
        sign = cfg.MODEL.SIGN
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        if sign.IN_FEATURE not in shapes:
            raise ValueError(
                f"MODEL.SIGN.IN_FEATURE {sign.IN_FEATURE!r} is not a backbone output; it has {sorted(shapes)}"
            )
        class_names, unseen_ids = split_classes(cfg)
        embeddings = build_semantic_source(cfg)(class_names)
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
        )
        return {
            "backbone": backbone,
            "in_feature": sign.IN_FEATURE,
            "sim": sim,
            "generator": FeatureGenerator(
                embeddings.shape[1], sign.LATENT_DIM, sign.GENERATOR_HIDDEN, sign.FEATURE_DIM
            ),
            "discriminator": FeatureDiscriminator(sign.FEATURE_DIM, sign.DISCRIMINATOR_HIDDEN),
            "class_embeddings": embeddings,
            "class_names": class_names,
            "unseen_ids": unseen_ids,
            "step": sign.STEP,
            "self_training": sign.SELF_TRAINING,
            "kl_weight": sign.KL_WEIGHT,
            "mmd_weight": sign.MMD_WEIGHT,
            "adv_weight": sign.ADV_WEIGHT,
            "mmd_max_pixels": sign.MMD_MAX_PIXELS,
            "st_fraction": sign.ST_FRACTION,
            "ast_temperature": sign.AST_TEMPERATURE,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def train(self, mode: bool = True) -> SIGN:
        """After the training step the encoder stays in eval mode (frozen normalisation statistics);
        SIM keeps sampling z in training mode."""
        super().train(mode)
        if self.step != "train":
            self.backbone.eval()
        return self

    def set_vocabulary(
        self, class_names: Sequence[str], unseen_classes: Sequence[str] | None = None
    ) -> None:
        """Score ``class_names`` (a subset of the training classes: C has one output per class)."""
        unknown = [name for name in class_names if name not in self.class_names]
        if unknown:
            raise ValueError(
                f"SIGN's classifier knows the classes {self.class_names}, not {unknown}: evaluate on a data set "
                "with the training set's classes"
            )
        ids = [self.class_names.index(name) for name in class_names]
        self.test_class_ids = torch.tensor(ids, dtype=torch.long, device=self.device)

    def forward(self, batched_inputs: list[dict]):
        """Training: the step's weighted losses. Inference: per image ``sem_seg`` [C, H, W] softmax scores."""
        images = self._images(batched_inputs)
        features = self.backbone(images.tensor)[self.in_feature]
        if not self.training:
            return self._inference(features, images, batched_inputs)
        labels = self._labels(batched_inputs, images, features.shape[-2:])
        if self.step == "train":
            return self._training_step_losses(features, labels)
        return self._transfer_losses(features, labels)

    def _images(self, batched_inputs: list[dict]) -> ImageList:
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        return ImageList.from_tensors(images, self.backbone.size_divisibility)

    def _labels(self, batched_inputs: list[dict], images: ImageList, size) -> torch.Tensor:
        """Ground truth padded like the images, then nearest-resized to the feature map."""
        labels = ImageList.from_tensors(
            [x["sem_seg"].to(self.device) for x in batched_inputs],
            self.backbone.size_divisibility,
            pad_value=self.ignore_value,
        ).tensor
        labels = labels[..., : images.tensor.shape[-2], : images.tensor.shape[-1]]
        return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()

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
            self.class_embeddings[labels[valid]], pixels_last(out.latent)[valid].detach()
        )
        if (
            real.shape[0] == 0
        ):  # no labelled pixel: G and D get a zero loss (keeps DDP's graph whole)
            zero = (
                sum(
                    p.sum()
                    for p in (*self.generator.parameters(), *self.discriminator.parameters())
                )
                * 0.0
            )
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
            pseudo_gt = random_relabel(labels, len(self.class_names), self.ignore_value)
            valid = pseudo_gt != self.ignore_value
            synthetic = self.generator(
                self.class_embeddings[pseudo_gt[valid]], pixels_last(out.latent)[valid]
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
            pseudo = pseudo_label_unseen(
                logits.detach().softmax(dim=1),
                labels,
                self.unseen_ids,
                self.self_training,
                self.st_fraction,
                self.ast_temperature,
                self.ignore_value,
            )
            losses["loss_ce_pseudo"] = weighted_cross_entropy(
                logits, pseudo.labels, pseudo.weights, self.ignore_value
            )
        return losses

    def _inference(
        self, features: torch.Tensor, images: ImageList, batched_inputs: list[dict]
    ) -> list[dict]:
        logits = self._classify(self.sim(features).features)[:, self.test_class_ids]
        logits = F.interpolate(
            logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )
        results = []
        for image_logits, (h, w), x in zip(logits, images.image_sizes, batched_inputs):
            size = (x.get("height", h), x.get("width", w))
            resized = F.interpolate(
                image_logits[None, :, :h, :w], size=size, mode="bilinear", align_corners=False
            )[0]
            results.append({"sem_seg": resized.softmax(dim=0)})
        return results
