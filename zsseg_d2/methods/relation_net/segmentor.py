"""Relation Network for zero-shot semantic segmentation (Zhang & Khriyenko).

Every pixel of an image is paired with every class's semantic vector: r = g(f_1(v_c) ⊕ f_2(x))
(eq. 4), a sigmoid relation score per pixel and class; the prediction is the class of highest
score (Fig. 9). Training is episodic: each iteration draws an episode's classes (``episodes.py``)
and applies the pixel-wise BCE of eq. 5 to them only. Any class names can be scored at inference
(``set_vocabulary``): the unseen classes for ZLSS, all classes for GZLSS (``TEST.LABEL_SPACE`` of
the evaluator).

Binary ZLSS (``MODEL.RELATION_NET.BINARY``, Table I, the CUB experiments): each image is paired
with its target class only, in training (BCE: 1 on the target's pixels, 0 on the background) and
at inference, where the target is the class its label file holds: a pixel is the target when
r >= 0.5 (``BINARY_THRESHOLD``), else ``BINARY_BACKGROUND``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.data import Metadata, MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY

from ...data import load_sem_seg
from ...modeling.segmentor import ZeroShotSegmentor
from .episodes import EPISODE_POOLS, binary_targets, episode_targets, sample_episode
from .loss import relation_bce
from .modules import RelationHead, build_relation_head


@META_ARCH_REGISTRY.register()
class RelationNet(ZeroShotSegmentor):
    """Image embedding module -> relation module against every class's word embedding."""

    @configurable
    def __init__(
        self,
        *,
        head: RelationHead,
        episode_classes: int = 10,
        episode_pool: str = "all",
        binary: bool = False,
        binary_threshold: float = 0.5,
        binary_background: str = "background",
        label_metadata: list[Metadata] = (),
        class_chunk: int = 32,
        **base,
    ):
        super().__init__(**base)
        if episode_pool not in EPISODE_POOLS:
            raise ValueError(
                f"MODEL.RELATION_NET.EPISODE_POOL must be one of {EPISODE_POOLS}, got {episode_pool!r}"
            )
        self.head = head
        self.seen_ids = self.split.seen_ids
        self.episode_classes, self.episode_pool = episode_classes, episode_pool
        self.binary, self.binary_threshold, self.class_chunk = binary, binary_threshold, class_chunk
        self.binary_background, self.label_metadata = binary_background, list(label_metadata)
        if binary and binary_background not in self.train_vocabulary:
            raise ValueError(
                f"MODEL.RELATION_NET.BINARY_BACKGROUND {binary_background!r} (the class binary ZLSS "
                f"predicts where r < threshold) is not a training class: {self.train_vocabulary}"
            )
        self.init_vocabulary()

    @classmethod
    def from_config(cls, cfg) -> dict:
        rn = cfg.MODEL.RELATION_NET
        args = cls.base_config(cfg)
        head = build_relation_head(
            rn.RELATION_MODULE,
            args["backbone"].output_shape(),
            rn.IN_FEATURE,
            args["semantic_source"].dim,
            rn.WORD_HIDDEN,
            rn.RELATION_CHANNELS,
        )
        return {
            **args,
            "head": head,
            "episode_classes": rn.EPISODE_CLASSES,
            "episode_pool": rn.EPISODE_POOL,
            "binary": rn.BINARY,
            "binary_threshold": rn.BINARY_THRESHOLD,
            "binary_background": rn.BINARY_BACKGROUND,
            "label_metadata": [MetadataCatalog.get(name) for name in cfg.DATASETS.TEST],
            "class_chunk": rn.CLASS_CHUNK,
        }

    def _vectors(self, names: list[str]) -> torch.Tensor:
        return self.semantic_source(names).float().to(self.device)

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """{"loss_relation"} (eq. 5) on one episode (multi-class) or one pair per image (binary)."""
        images = self.preprocess(batched_inputs)
        features = self.backbone(images.tensor)
        labels = self.padded_labels(batched_inputs, images)
        if self.binary:
            background = self.train_vocabulary.index(self.binary_background)
            pairs = binary_targets(
                labels, [c for c in self.seen_ids if c != background], self.ignore_value
            )
            ids = pairs.classes.clamp(min=0)  # an image without a target has no loss: any vector
            unique = ids.unique()
            vectors = self._vectors([self.train_vocabulary[c] for c in unique.tolist()])
            vectors = vectors[torch.searchsorted(unique, ids)]
            logits = self._upsampled(self.head.paired(features, vectors), images)
            return {"loss_relation": relation_bce(logits, pairs.targets, pairs.valid)}
        episode = sample_episode(
            len(self.train_vocabulary), self.seen_ids, self.episode_classes, self.episode_pool
        ).to(self.device)
        logits = self._upsampled(self.head(features, self.train_class_vectors[episode]), images)
        targets = episode_targets(labels, episode)
        return {"loss_relation": relation_bce(logits, targets.targets, targets.valid)}

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        """Per image ``sem_seg`` [C, H, W] relation scores r, or in binary mode ``sem_seg_label``
        (the target classes of its label where r >= threshold, else the background)."""
        if self.binary:
            return self._binary_inference(batched_inputs)
        images = self.preprocess(batched_inputs)
        features = self.backbone(images.tensor)
        chunks = torch.split(self.test_class_vectors, self.class_chunk)
        logits = self._upsampled(torch.cat([self.head(features, c) for c in chunks], dim=1), images)
        return [
            {"sem_seg": self.postprocess(image_logits, images, i, x).sigmoid()}
            for i, (image_logits, x) in enumerate(zip(logits, batched_inputs))
        ]

    def _binary_inference(self, batched_inputs: list[dict]) -> list[dict]:
        images = self.preprocess(batched_inputs)
        features = self.backbone(images.tensor)
        background = self.test_vocabulary.index(self.binary_background)
        results = []
        for i, x in enumerate(batched_inputs):
            targets = [c for c in self._label_classes(x) if c != background]
            single = {k: v[i : i + 1] for k, v in features.items()}
            size = self.output_size(images, i, x)
            label = torch.full(size, background, dtype=torch.long, device=self.device)
            if targets:
                vectors = self._vectors([self.test_vocabulary[c] for c in targets])
                logits = self._upsampled(self.head(single, vectors), images)
                scores = self.postprocess(logits[0], images, 0, x).sigmoid()
                best, index = scores.max(dim=0)
                chosen = torch.tensor(targets, device=self.device)[index]
                label = torch.where(best >= self.binary_threshold, chosen, label)
            results.append({"sem_seg_label": label})
        return results

    def _label_classes(self, x: dict) -> list[int]:
        """The evaluation-vocabulary classes present in the image's label file."""
        metadata = next(
            (m for m in self.label_metadata if list(m.stuff_classes) == self.test_vocabulary),
            None,
        )
        if metadata is None or "sem_seg_file_name" not in x:
            raise ValueError(
                "MODEL.RELATION_NET.BINARY pairs each image with the class its label holds: evaluate "
                "on a DATASETS.TEST set with its own class names (an image dict with 'sem_seg_file_name')"
            )
        label = load_sem_seg(x["sem_seg_file_name"], metadata)
        return sorted(
            int(c) for c in set(label.flatten().tolist()) if c < len(self.test_vocabulary)
        )

    @staticmethod
    def _upsampled(logits: torch.Tensor, images) -> torch.Tensor:
        if logits.shape[-2:] == images.tensor.shape[-2:]:
            return logits
        return F.interpolate(
            logits, size=images.tensor.shape[-2:], mode="bilinear", align_corners=False
        )
