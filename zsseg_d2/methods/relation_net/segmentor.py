"""Relation Network for zero-shot semantic segmentation (Zhang & Khriyenko).

Every pixel of an image is paired with every class's semantic vector: r = g(f_1(v_c) ⊕ f_2(x))
(eq. 4), a sigmoid relation score per pixel and class; the prediction is the class of highest
score (Fig. 9). Training is episodic: each iteration draws an episode's classes (``episodes.py``)
and applies the pixel-wise BCE of eq. 5 to them only. Any class names can be scored at inference
(``set_vocabulary``): the unseen classes for ZLSS, all classes for GZLSS (``TEST.LABEL_SPACE`` of
the evaluator), or each class against background (binary ZLSS, ``MODEL.RELATION_NET.BINARY``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import ImageList

from ...modeling.segmentor import ZeroShotSegmentor
from .binary import binary_prediction
from .episodes import EPISODE_POOLS, episode_targets, sample_episode
from .loss import relation_bce
from .modules import RelationHead


@META_ARCH_REGISTRY.register()
class RelationNet(ZeroShotSegmentor):
    """Image embedding module -> relation module against every class's word embedding."""

    @configurable
    def __init__(
        self,
        *,
        in_feature: str,
        head: RelationHead,
        episode_classes: int = 10,
        episode_pool: str = "all",
        binary: bool = False,
        binary_threshold: float = 0.5,
        class_chunk: int = 32,
        **base,
    ):
        super().__init__(**base)
        if episode_pool not in EPISODE_POOLS:
            raise ValueError(
                f"MODEL.RELATION_NET.EPISODE_POOL must be one of {EPISODE_POOLS}, got {episode_pool!r}"
            )
        self.in_feature, self.head = in_feature, head
        self.seen_ids = self.split.seen_ids
        self.episode_classes, self.episode_pool = episode_classes, episode_pool
        self.binary, self.binary_threshold, self.class_chunk = binary, binary_threshold, class_chunk
        self.init_vocabulary()

    @classmethod
    def from_config(cls, cfg) -> dict:
        rn = cfg.MODEL.RELATION_NET
        args = cls.base_config(cfg)
        shapes = args["backbone"].output_shape()
        if rn.IN_FEATURE not in shapes:
            raise ValueError(
                f"MODEL.RELATION_NET.IN_FEATURE {rn.IN_FEATURE!r} is not a backbone output; it has {sorted(shapes)}"
            )
        head = RelationHead(
            shapes[rn.IN_FEATURE].channels,
            args["semantic_source"].dim,
            rn.WORD_HIDDEN,
            rn.RELATION_CHANNELS,
        )
        return {
            **args,
            "in_feature": rn.IN_FEATURE,
            "head": head,
            "episode_classes": rn.EPISODE_CLASSES,
            "episode_pool": rn.EPISODE_POOL,
            "binary": rn.BINARY,
            "binary_threshold": rn.BINARY_THRESHOLD,
            "class_chunk": rn.CLASS_CHUNK,
        }

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """{"loss_relation"} (eq. 5) on one episode."""
        images = self.preprocess(batched_inputs)
        visual = self.backbone(images.tensor)[self.in_feature]
        episode = sample_episode(
            len(self.train_vocabulary), self.seen_ids, self.episode_classes, self.episode_pool
        )
        episode = episode.to(self.device)
        logits = self.head(visual, self.train_class_vectors[episode])
        logits = self._upsampled(logits, images)
        targets = episode_targets(self.padded_labels(batched_inputs, images), episode)
        return {"loss_relation": relation_bce(logits, targets.targets, targets.valid)}

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        """Per image ``sem_seg`` [C, H, W] relation scores r (and ``binary_sem_seg``,
        r >= threshold, in binary mode)."""
        images = self.preprocess(batched_inputs)
        visual = self.backbone(images.tensor)[self.in_feature]
        chunks = torch.split(self.test_class_vectors, self.class_chunk)
        logits = self._upsampled(torch.cat([self.head(visual, c) for c in chunks], dim=1), images)
        results = []
        for i, (image_logits, x) in enumerate(zip(logits, batched_inputs)):
            result = {"sem_seg": self.postprocess(image_logits, images, i, x).sigmoid()}
            if self.binary:
                result["binary_sem_seg"] = binary_prediction(
                    result["sem_seg"], self.binary_threshold
                )
            results.append(result)
        return results

    @staticmethod
    def _upsampled(logits: torch.Tensor, images: ImageList) -> torch.Tensor:
        return F.interpolate(
            logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )
