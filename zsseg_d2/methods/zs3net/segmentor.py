"""ZS3Net (Bucher et al. 2019) and its recursive training with the ZS-MMD loss.

Wang, Farazi, Barnes, "Recursive Training for Zero-Shot Semantic Segmentation" (sections III,
IV-A). A DeepLab-v3+ backbone gives a 256-d feature per pixel, a 1x1 convolution classifies it
over the full label space (seen and unseen classes). Three stages, one ``tools/train_net.py`` run
each, every stage starting from the previous stage's weights (``MODEL.STAGE``):

- ``"segmentation"``: backbone and classifier trained with cross-entropy on the seen classes;
- ``"generator"`` (ZS3Net): backbone frozen; the GMMN generator learns, per seen class present in
  an image, to match the real features of that class (MMD, eq. 1); the classifier is retrained
  over all classes on real features of images without unseen pixels and on generated features
  (at every labelled pixel) of images with unseen pixels;
- ``"recursive"`` (ZS-MMD): as ``"generator"``, plus, from iteration ``zs_mmd_start_iter`` of the
  stage on, per unseen class, generated features that the classifier assigns to their class with
  confidence above tau are pseudo-labels for the generator through the confidence-weighted ZS-MMD
  (eq. 2), scaled by gamma. It starts from the segmentation stage's weights and runs as long as
  the generator stage, so the ZS3Net and ZS-MMD rows train the classifier equally long.

Where unseen pixels are comes from the ground truth (ZS3Net's protocol): the data set mapper
``"zs_full_label"`` keeps unseen labels; configs/zs3net/README.md discusses this protocol.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

from ...modeling.mmd import mmd_squared, zs_mmd_loss
from ...modeling.segmentor import ZeroShotSegmentor
from .generator import GMMNGenerator

logger = logging.getLogger(__name__)

GENERATOR_IMAGES = ("unseen_free", "all")


def select_confident(probs: torch.Tensor, target_class: int, threshold: float) -> torch.Tensor:
    """Boolean mask of the samples whose arg-max class is ``target_class`` with probability above
    ``threshold`` (section III-B: correct and confident predictions); ``probs`` is ``[N, C]``."""
    return (probs.argmax(dim=1) == target_class) & (probs[:, target_class] > threshold)


@META_ARCH_REGISTRY.register()
class ZS3Net(ZeroShotSegmentor):
    """DeepLab features -> 1x1 pixel classifier, with a GMMN generator of unseen-class features."""

    STAGES = ("segmentation", "generator", "recursive")
    OPEN_VOCABULARY = False

    @configurable
    def __init__(
        self,
        *,
        generator: GMMNGenerator,
        unseen_class_weight: float = 100.0,
        generator_batch: int = 128,
        bandwidths: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0),
        confidence_threshold: float = 0.7,
        zs_mmd_weight: float = 1.0 / 80,
        equal_weight: bool = False,
        zs_mmd_start_iter: int = 0,
        generator_images: str = "unseen_free",
        **base,
    ):
        super().__init__(**base)
        if generator_images not in GENERATOR_IMAGES:
            raise ValueError(
                f"MODEL.ZS3NET.GENERATOR_IMAGES must be one of {GENERATOR_IMAGES}, got {generator_images!r}"
            )
        if not self.split.unseen:
            raise ValueError(
                "the data set of DATASETS.TRAIN (or TEST) has no unseen classes: ZS3Net needs a GZS3 split"
            )
        self.generator = generator
        channels = self.backbone.output_shape()["dense"].channels
        self.classifier = nn.Conv2d(channels, len(self.train_vocabulary), 1)
        self.unseen_class_weight = unseen_class_weight
        self.generator_batch = generator_batch
        self.bandwidths = tuple(bandwidths)
        self.confidence_threshold = confidence_threshold
        self.zs_mmd_weight = zs_mmd_weight
        self.equal_weight = equal_weight
        self.zs_mmd_start_iter = zs_mmd_start_iter
        self.generator_images = generator_images
        # training iterations of this stage so far (saved, so a resumed run keeps counting)
        self.register_buffer("stage_iteration", torch.zeros((), dtype=torch.long))
        unseen = torch.zeros(len(self.train_vocabulary), dtype=torch.bool)
        unseen[self.split.unseen_ids] = True
        self.register_buffer("unseen", unseen, persistent=False)
        if self.stage == "segmentation":  # the generator is idle (sec. IV-A)
            self.freeze(self.generator, eval_mode=False)
        else:  # the backbone is frozen, batch-norm statistics too
            self.freeze(self.backbone)
        self.init_vocabulary()

    @classmethod
    def from_config(cls, cfg) -> dict:
        zs3 = cfg.MODEL.ZS3NET
        args = cls.base_config(cfg)
        generator = GMMNGenerator(
            args["semantic_source"].dim,
            args["backbone"].output_shape()["dense"].channels,
            zs3.GENERATOR_HIDDEN_DIM,
            zs3.GENERATOR_DROPOUT,
        )
        return {
            **args,
            "generator": generator,
            "unseen_class_weight": zs3.UNSEEN_CLASS_WEIGHT,
            "generator_batch": zs3.GENERATOR_BATCH,
            "bandwidths": zs3.MMD_BANDWIDTHS,
            "confidence_threshold": zs3.CONFIDENCE_THRESHOLD,
            "zs_mmd_weight": zs3.ZS_MMD_WEIGHT,
            "equal_weight": zs3.EQUAL_WEIGHT,
            "zs_mmd_start_iter": zs3.ZS_MMD_START_ITER,
            "generator_images": zs3.GENERATOR_IMAGES,
        }

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """The stage's losses."""
        images = self.preprocess(batched_inputs)
        labels = self.padded_labels(batched_inputs, images)
        if self.stage == "segmentation":
            features = self.backbone(images.tensor)["dense"]
            return {"loss_sem_seg": self._seen_cross_entropy(features, labels)}
        with torch.no_grad():
            features = self.backbone(images.tensor)["dense"]
        losses = self._generative_losses(features, labels)
        if self.stage == "recursive":
            zs_mmd = (
                self._recursive_loss()
                if self.stage_iteration >= self.zs_mmd_start_iter
                else self.zero_loss(self.generator)
            )
            losses["loss_zs_mmd"] = self.zs_mmd_weight * zs_mmd
        self.stage_iteration += 1
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
        loss_gmmn = torch.stack(mmd_terms).mean() if mmd_terms else self.zero_loss(self.generator)
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
        fake = self.generator(self.train_class_vectors[c].expand(self.generator_batch, -1))
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
                self.train_class_vectors[c].expand(int(at_class.sum()), -1)
            )
        return generated

    def _recursive_loss(self) -> torch.Tensor:
        """Mean over unseen classes of the ZS-MMD (eq. 2) between a = the confident generated
        features (c_i > tau, predicted as their class) with weights c_i and b = the generated batch
        they come from; with ``equal_weight`` (Table III), a = a second, independent generated
        batch, all selected, weights 1."""
        terms = []
        for c in self.unseen.nonzero().flatten():
            embeddings = self.train_class_vectors[c].expand(self.generator_batch, -1)
            generated = self.generator(embeddings)
            if self.equal_weight:
                pseudo = self.generator(embeddings)
                weights = torch.ones(len(pseudo), device=self.device)
            else:
                probs = F.linear(
                    generated, self.classifier.weight.flatten(1), self.classifier.bias
                ).softmax(dim=1)
                confident = select_confident(probs, int(c), self.confidence_threshold)
                pseudo, weights = generated[confident], probs[confident, c]
            terms.append(zs_mmd_loss(pseudo, weights, generated, self.bandwidths))
        return torch.stack(terms).mean()

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        """Per image ``sem_seg`` [C, H, W]: softmax over the evaluation vocabulary's classes, at
        the requested output size."""
        images = self.preprocess(batched_inputs)
        logits = self._logits(self.backbone(images.tensor)["dense"], images.tensor.shape[-2:])
        logits = logits[:, self.test_class_ids]
        return [
            {"sem_seg": self.postprocess(image_logits, images, i, x).softmax(dim=0)}
            for i, (image_logits, x) in enumerate(zip(logits, batched_inputs))
        ]
