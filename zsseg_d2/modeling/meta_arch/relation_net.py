"""Relation Network for zero-shot semantic segmentation (Zhang & Khriyenko).

Every pixel of an image is paired with every class's semantic vector: r = g(f_1(v_c) ⊕ f_2(x))
(eq. 4), a sigmoid relation score per pixel and class; the prediction is the class of highest
score (Fig. 9). Training is episodic: each iteration draws an episode's classes (``episodes.py``)
and applies the pixel-wise BCE of eq. 5 to them only. Any class names can be scored at inference
(``set_vocabulary``): the unseen classes for ZLSS, all classes for GZLSS (``TEST.LABEL_SPACE`` of
the evaluator), or each class against background (binary ZLSS, ``MODEL.RELATION_NET.BINARY``).
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
from ..losses.relation_loss import relation_bce
from ..relation_net import (
    EPISODE_POOLS,
    RelationHead,
    binary_prediction,
    episode_targets,
    sample_episode,
)
from ..semantic import SemanticSource, build_semantic_source, validate_class_names


@META_ARCH_REGISTRY.register()
class RelationNet(nn.Module):
    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        in_feature: str,
        head: RelationHead,
        semantic_source: SemanticSource,
        class_names: Sequence[str],
        unseen_ids: Sequence[int],
        episode_classes: int = 10,
        episode_pool: str = "all",
        binary: bool = False,
        binary_threshold: float = 0.5,
        class_chunk: int = 32,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        ignore_value: int = 255,
    ):
        super().__init__()
        self.backbone, self.in_feature, self.head = backbone, in_feature, head
        self.semantic_source = semantic_source
        self.class_names = validate_class_names(class_names, "the training classes")
        self.seen_ids = [i for i in range(len(class_names)) if i not in set(unseen_ids)]
        self.episode_classes, self.episode_pool = episode_classes, episode_pool
        self.binary, self.binary_threshold, self.class_chunk = binary, binary_threshold, class_chunk
        self.ignore_value = ignore_value
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.register_buffer(
            "class_vectors", semantic_source(self.class_names).float(), persistent=False
        )
        self.register_buffer("test_class_vectors", self.class_vectors.clone(), persistent=False)
        if episode_pool not in EPISODE_POOLS:
            raise ValueError(
                f"MODEL.RELATION_NET.EPISODE_POOL must be one of {EPISODE_POOLS}, got {episode_pool!r}"
            )

    @classmethod
    def from_config(cls, cfg) -> dict:
        rn = cfg.MODEL.RELATION_NET
        backbone = build_backbone(cfg)
        shapes = backbone.output_shape()
        if rn.IN_FEATURE not in shapes:
            raise ValueError(
                f"MODEL.RELATION_NET.IN_FEATURE {rn.IN_FEATURE!r} is not a backbone output; it has {sorted(shapes)}"
            )
        source = build_semantic_source(cfg)
        class_names, unseen_ids = split_classes(cfg)
        embed_dim = source(class_names[:1]).shape[1]
        return {
            "backbone": backbone,
            "in_feature": rn.IN_FEATURE,
            "head": RelationHead(
                shapes[rn.IN_FEATURE].channels, embed_dim, rn.WORD_HIDDEN, rn.RELATION_CHANNELS
            ),
            "semantic_source": source,
            "class_names": class_names,
            "unseen_ids": unseen_ids,
            "episode_classes": rn.EPISODE_CLASSES,
            "episode_pool": rn.EPISODE_POOL,
            "binary": rn.BINARY,
            "binary_threshold": rn.BINARY_THRESHOLD,
            "class_chunk": rn.CLASS_CHUNK,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def set_vocabulary(
        self, class_names: Sequence[str], unseen_classes: Sequence[str] | None = None
    ) -> None:
        """Score ``class_names`` at inference (their vectors come from the semantic source)."""
        names = validate_class_names(class_names, "the evaluation vocabulary")
        self.test_class_vectors = self.semantic_source(names).float().to(self.device)

    def forward(self, batched_inputs: list[dict]):
        """Training: {"loss_relation"} (eq. 5) on one episode. Inference: per image ``sem_seg``
        [C, H, W] relation scores r (and ``binary_sem_seg``, r >= threshold, in binary mode)."""
        images = ImageList.from_tensors(
            [
                (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std
                for x in batched_inputs
            ],
            self.backbone.size_divisibility,
        )
        visual = self.backbone(images.tensor)[self.in_feature]
        if self.training:
            return self._losses(visual, images, batched_inputs)
        return self._inference(visual, images, batched_inputs)

    def _losses(self, visual: torch.Tensor, images: ImageList, batched_inputs: list[dict]) -> dict:
        episode = sample_episode(
            len(self.class_names), self.seen_ids, self.episode_classes, self.episode_pool
        )
        episode = episode.to(self.device)
        logits = self.head(visual, self.class_vectors[episode])
        logits = F.interpolate(
            logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )
        labels = ImageList.from_tensors(
            [x["sem_seg"].to(self.device) for x in batched_inputs],
            self.backbone.size_divisibility,
            pad_value=self.ignore_value,
        ).tensor
        targets = episode_targets(labels[..., : logits.shape[-2], : logits.shape[-1]], episode)
        return {"loss_relation": relation_bce(logits, targets.targets, targets.valid)}

    def _inference(
        self, visual: torch.Tensor, images: ImageList, batched_inputs: list[dict]
    ) -> list[dict]:
        chunks = torch.split(self.test_class_vectors, self.class_chunk)
        logits = torch.cat([self.head(visual, chunk) for chunk in chunks], dim=1)
        logits = F.interpolate(
            logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )
        results = []
        for image_logits, (h, w), x in zip(logits, images.image_sizes, batched_inputs):
            size = (x.get("height", h), x.get("width", w))
            scores = F.interpolate(
                image_logits[None, :, :h, :w], size=size, mode="bilinear", align_corners=False
            )[0]
            result = {"sem_seg": scores.sigmoid()}
            if self.binary:
                result["binary_sem_seg"] = binary_prediction(
                    result["sem_seg"], self.binary_threshold
                )
            results.append(result)
        return results
