"""ZS3Net (Bucher et al. 2019) and its recursive training with the ZS-MMD loss.

Wang, Farazi, Barnes, "Recursive Training for Zero-Shot Semantic Segmentation" (sections III,
IV-A). A DeepLab-v3+ backbone gives a 256-d feature per pixel, a 1x1 convolution classifies it
over the full label space (seen and unseen classes). Three stages, one ``tools/train_net.py`` run
each, every stage starting from the previous stage's weights (``MODEL.ZS3NET.STAGE``):

- ``"segmentation"``: backbone and classifier trained with cross-entropy on the seen classes;
- ``"generator"`` (ZS3Net): backbone frozen; the GMMN generator learns, per seen class present in
  an image, to match the real features of that class (MMD, eq. 1); the classifier is retrained
  over all classes on real features of images without unseen pixels and on generated features
  (at every labelled pixel) of images with unseen pixels;
- ``"recursive"`` (ZS-MMD): as ``"generator"``, plus, per unseen class, generated features that
  the classifier assigns to their class with confidence above tau are pseudo-labels for the
  generator through the confidence-weighted ZS-MMD (eq. 2), scaled by gamma.

Where unseen pixels are comes from the ground truth (ZS3Net's protocol): the data set mapper
``"zs_full_label"`` keeps unseen labels; see README for the critique of this protocol.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY, build_backbone
from detectron2.modeling.backbone import Backbone
from detectron2.structures import ImageList
from torch import nn

from ...data import training_vocabulary
from ...data.splits import unseen_class_ids
from ..generators import GMMNGenerator
from ..losses.mmd import mmd_squared, zs_mmd_loss
from ..semantic import build_semantic_source

logger = logging.getLogger(__name__)

STAGES = ("segmentation", "generator", "recursive")
GENERATOR_IMAGES = ("unseen_free", "all")


def select_confident(probs: torch.Tensor, target_class: int, threshold: float) -> torch.Tensor:
    """Boolean mask of the samples whose arg-max class is ``target_class`` with probability above
    ``threshold`` (section III-B: correct and confident predictions); ``probs`` is ``[N, C]``."""
    return (probs.argmax(dim=1) == target_class) & (probs[:, target_class] > threshold)


def _model_classes(cfg) -> list[str]:
    if cfg.DATASETS.TRAIN:
        return training_vocabulary(cfg)
    if not cfg.DATASETS.TEST:
        raise ValueError(
            "ZS3Net needs a data set for its label space: set DATASETS.TRAIN or DATASETS.TEST"
        )
    return list(MetadataCatalog.get(cfg.DATASETS.TEST[0]).stuff_classes)


def _unseen_mask(cfg, class_names: Sequence[str]) -> torch.Tensor:
    metadata = MetadataCatalog.get((cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)[0])
    unseen_names = {metadata.stuff_classes[i] for i in unseen_class_ids(metadata)}
    return torch.tensor([name in unseen_names for name in class_names])


def _check_previous_stage_weights(stage: str, weights: str) -> None:
    """Stages after the first start from the previous stage's checkpoint: fail at once without it."""
    if stage not in STAGES[1:]:
        return
    previous = STAGES[STAGES.index(stage) - 1]
    hint = (
        f"MODEL.ZS3NET.STAGE {stage!r} starts from the {previous!r} stage's weights: train that stage first "
        f"(tools/train_net.py with its config), then pass MODEL.WEIGHTS <its OUTPUT_DIR>/model_final.pth"
    )
    if not weights:
        raise ValueError(f"{hint}; MODEL.WEIGHTS is empty")
    if "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"{hint}; MODEL.WEIGHTS {weights!r} does not exist")


@META_ARCH_REGISTRY.register()
class ZS3Net(nn.Module):
    """DeepLab features -> 1x1 pixel classifier, with a GMMN generator of unseen-class features."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        generator: GMMNGenerator,
        class_names: Sequence[str],
        class_embeddings: torch.Tensor,
        unseen: torch.Tensor,
        stage: str,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        unseen_class_weight: float = 100.0,
        generator_batch: int = 128,
        bandwidths: Sequence[float] = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0),
        confidence_threshold: float = 0.7,
        zs_mmd_weight: float = 1.0 / 80,
        equal_weight: bool = False,
        generator_images: str = "unseen_free",
        ignore_value: int = 255,
    ):
        super().__init__()
        if stage not in STAGES:
            raise ValueError(f"MODEL.ZS3NET.STAGE must be one of {STAGES}, got {stage!r}")
        if generator_images not in GENERATOR_IMAGES:
            raise ValueError(
                f"MODEL.ZS3NET.GENERATOR_IMAGES must be one of {GENERATOR_IMAGES}, got {generator_images!r}"
            )
        if len(class_names) != len(class_embeddings) or len(unseen) != len(class_names):
            raise ValueError("one class embedding and one seen/unseen flag per class name")
        self.backbone = backbone
        self.generator = generator
        self.classifier = nn.Conv2d(backbone.output_shape()["dense"].channels, len(class_names), 1)
        self.class_names = list(class_names)
        self.stage = stage
        self.unseen_class_weight = unseen_class_weight
        self.generator_batch = generator_batch
        self.bandwidths = tuple(bandwidths)
        self.confidence_threshold = confidence_threshold
        self.zs_mmd_weight = zs_mmd_weight
        self.equal_weight = equal_weight
        self.generator_images = generator_images
        self.ignore_value = ignore_value
        self.register_buffer("class_embeddings", class_embeddings.float(), persistent=False)
        self.register_buffer("unseen", unseen.bool(), persistent=False)
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self._freeze_for_stage()

    @classmethod
    def from_config(cls, cfg) -> dict:
        zs3 = cfg.MODEL.ZS3NET
        _check_previous_stage_weights(zs3.STAGE, cfg.MODEL.WEIGHTS)
        backbone = build_backbone(cfg)
        class_names = _model_classes(cfg)
        embeddings = build_semantic_source(cfg)(class_names)
        unseen = _unseen_mask(cfg, class_names)
        if not unseen.any():
            raise ValueError(
                f"data set {(cfg.DATASETS.TRAIN or cfg.DATASETS.TEST)[0]!r} has no unseen classes: ZS3Net needs a GZS3 split"
            )
        return {
            "backbone": backbone,
            "generator": GMMNGenerator(
                embeddings.shape[1],
                backbone.output_shape()["dense"].channels,
                zs3.GENERATOR_HIDDEN_DIM,
                zs3.GENERATOR_DROPOUT,
            ),
            "class_names": class_names,
            "class_embeddings": embeddings,
            "unseen": unseen,
            "stage": zs3.STAGE,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "unseen_class_weight": zs3.UNSEEN_CLASS_WEIGHT,
            "generator_batch": zs3.GENERATOR_BATCH,
            "bandwidths": zs3.MMD_BANDWIDTHS,
            "confidence_threshold": zs3.CONFIDENCE_THRESHOLD,
            "zs_mmd_weight": zs3.ZS_MMD_WEIGHT,
            "equal_weight": zs3.EQUAL_WEIGHT,
            "generator_images": zs3.GENERATOR_IMAGES,
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def _freeze_for_stage(self) -> None:
        """Segmentation: the generator is idle. Later stages: the backbone is frozen (sec. IV-A)."""
        frozen = self.generator if self.stage == "segmentation" else self.backbone
        for param in frozen.parameters():
            param.requires_grad_(False)

    def train(self, mode: bool = True) -> ZS3Net:
        super().train(mode)
        if self.stage != "segmentation":
            self.backbone.eval()  # frozen: batch-norm statistics too
        return self

    def set_vocabulary(
        self, class_names: Sequence[str], unseen_classes: Sequence[str] | None = None
    ) -> None:
        """The pixel classifier has a fixed label space: evaluation data must use the same classes."""
        if list(class_names) != self.class_names:
            raise ValueError(
                f"ZS3Net classifies into the {len(self.class_names)} classes it was trained with {self.class_names}; "
                f"the evaluated data set has {list(class_names)}. Evaluate on a data set with the training classes"
            )

    def forward(self, batched_inputs: list[dict]):
        """Training: a dict of losses for the stage. Inference: per image ``sem_seg`` [C, H, W],
        softmax probabilities at the requested output size."""
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        if not self.training:
            return self._inference(images, batched_inputs)
        labels = ImageList.from_tensors(
            [x["sem_seg"].to(self.device) for x in batched_inputs],
            self.backbone.size_divisibility,
            pad_value=self.ignore_value,
        ).tensor
        if self.stage == "segmentation":
            return {
                "loss_sem_seg": self._seen_cross_entropy(
                    self.backbone(images.tensor)["dense"], labels
                )
            }
        with torch.no_grad():
            features = self.backbone(images.tensor)["dense"]
        losses = self._generative_losses(features, labels)
        if self.stage == "recursive":
            losses["loss_zs_mmd"] = self.zs_mmd_weight * self._recursive_loss()
        return losses

    def _logits(self, features: torch.Tensor, size) -> torch.Tensor:
        return F.interpolate(
            self.classifier(features), size=size, mode="bilinear", align_corners=False
        )

    def _seen_cross_entropy(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over the seen classes only (the mapper already ignores unseen pixels)."""
        seen_ids = (~self.unseen).nonzero().flatten()
        to_column = torch.full((256,), self.ignore_value, dtype=torch.long, device=self.device)
        to_column[seen_ids] = torch.arange(len(seen_ids), device=self.device)
        logits = self._logits(features, labels.shape[-2:])[:, seen_ids]
        return F.cross_entropy(logits, to_column[labels], ignore_index=self.ignore_value)

    def _generative_losses(
        self, features: torch.Tensor, labels: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """ZS3Net's step: the GMMN on the seen classes of unseen-free images (or of every image,
        ``generator_images`` "all"); the classifier on real features of unseen-free images and
        generated features of the others."""
        small_labels = F.interpolate(
            labels[:, None].float(), size=features.shape[-2:], mode="nearest"
        )[:, 0].long()
        mmd_terms, training_features = [], []
        for image_features, image_labels in zip(features, small_labels):
            pixels = image_features.flatten(1).t()  # [h*w, F]
            flat_labels = image_labels.flatten()
            classes = flat_labels[flat_labels != self.ignore_value].unique()
            has_unseen = bool(self.unseen[classes].any())
            if has_unseen:
                training_features.append(
                    self._generated_map(pixels, flat_labels, classes).t().view_as(image_features)
                )
            else:
                training_features.append(image_features)
            if not has_unseen or self.generator_images == "all":
                mmd_terms += [
                    self._class_mmd(pixels[flat_labels == c], c)
                    for c in classes
                    if not self.unseen[c]
                ]
        loss_gmmn = torch.stack(mmd_terms).mean() if mmd_terms else self._zero_generator_loss()
        weights = torch.where(self.unseen, self.unseen_class_weight, 1.0)
        logits = self._logits(torch.stack(training_features).detach(), labels.shape[-2:])
        loss_sem_seg = F.cross_entropy(
            logits, labels, weight=weights, ignore_index=self.ignore_value
        )
        return {"loss_sem_seg": loss_sem_seg, "loss_gmmn": loss_gmmn}

    def _class_mmd(self, class_pixels: torch.Tensor, c: int) -> torch.Tensor:
        """Eq. 1 between ``generator_batch`` real features of class ``c`` (drawn with replacement)
        and as many generated from its embedding."""
        real = class_pixels[
            torch.randint(len(class_pixels), (self.generator_batch,), device=self.device)
        ]
        fake = self.generator(self.class_embeddings[c].expand(self.generator_batch, -1))
        return mmd_squared(fake, real, self.bandwidths)

    def _generated_map(
        self, pixels: torch.Tensor, flat_labels: torch.Tensor, classes: torch.Tensor
    ) -> torch.Tensor:
        """Generated features at every labelled pixel, from the pixel's class embedding (ZS3Net
        replaces the whole map of an image with unseen pixels; ignored pixels stay zero)."""
        generated = torch.zeros_like(pixels)
        for c in classes:
            at_class = flat_labels == c
            generated[at_class] = self.generator(
                self.class_embeddings[c].expand(int(at_class.sum()), -1)
            )
        return generated

    def _zero_generator_loss(self) -> torch.Tensor:
        return sum(p.sum() for p in self.generator.parameters()) * 0.0

    def _recursive_loss(self) -> torch.Tensor:
        """Mean over unseen classes of the ZS-MMD (eq. 2) between the confident generated features
        (weights c_i, or 1 with ``equal_weight``) and the generated batch they come from."""
        terms = []
        for c in self.unseen.nonzero().flatten():
            generated = self.generator(self.class_embeddings[c].expand(self.generator_batch, -1))
            probs = F.linear(
                generated, self.classifier.weight.flatten(1), self.classifier.bias
            ).softmax(dim=1)
            confident = select_confident(probs, int(c), self.confidence_threshold)
            weights = (
                torch.ones_like(probs[confident, c]) if self.equal_weight else probs[confident, c]
            )
            terms.append(zs_mmd_loss(generated[confident], weights, generated, self.bandwidths))
        return torch.stack(terms).mean()

    def _inference(self, images: ImageList, batched_inputs: list[dict]) -> list[dict]:
        logits = self._logits(self.backbone(images.tensor)["dense"], images.tensor.shape[-2:])
        results = []
        for image_logits, (h, w), x in zip(logits, images.image_sizes, batched_inputs):
            size = (x.get("height", h), x.get("width", w))
            scores = F.interpolate(
                image_logits[None, :, :h, :w], size=size, mode="bilinear", align_corners=False
            )[0]
            results.append({"sem_seg": scores.softmax(dim=0)})
        return results
