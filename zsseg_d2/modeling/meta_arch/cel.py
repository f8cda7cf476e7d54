"""The CEL segmentor: Mask2Former-style mask classification against CLIP text embeddings.

Dao, Shi, Phung, Cai (2023), "Class Enhancement Losses with Pseudo Labels for Zero-shot Semantic
Segmentation". Queries give masks M_q and class embeddings; classes are scored by cosine
similarity with frozen text embeddings (eq. 2), trained with eq. 8, and combined per pixel at
inference by eq. 4. The vocabulary is data: training uses the training set's classes (S and U),
evaluation any data set's class names, without retraining.
"""

from __future__ import annotations

import logging
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
from ...data.splits import seen_class_ids
from ..clip import ClipEnsemble, unseen_class_mask
from ..heads import TextClassifier, build_cel_head
from ..losses import CELCriterion
from ..semantic import SemanticSource, build_semantic_source, validate_class_names
from ..semantic_inference import (
    MaskChunks,
    chunked_semantic_scores,
    full_resolution_mask_chunks,
    semantic_argmax,
)

logger = logging.getLogger(__name__)


def _dataset_classes(dataset_names: Sequence[str], setting: str) -> list[str]:
    if not dataset_names:
        raise ValueError(f"no vocabulary: set {setting} or name a data set")
    metadata = MetadataCatalog.get(dataset_names[0])
    if not hasattr(metadata, "stuff_classes"):
        raise ValueError(
            f"data set {dataset_names[0]!r} has no stuff_classes metadata; set {setting}"
        )
    return list(metadata.stuff_classes)


def _training_seen_classes(train_datasets: Sequence[str]) -> list[str] | None:
    """Seen classes of the first training data set (its ``stuff_classes`` without its
    ``unseen_classes``); None without a training set."""
    if not train_datasets:
        return None
    metadata = MetadataCatalog.get(train_datasets[0])
    return [metadata.stuff_classes[i] for i in seen_class_ids(metadata)]


@META_ARCH_REGISTRY.register()
class CELSegmentor(nn.Module):
    """Backbone -> pixel decoder -> masked-attention decoder -> masks and text-similarity classes."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        sem_seg_head: nn.Module,
        classifier: TextClassifier,
        criterion: CELCriterion,
        text_embedder: SemanticSource,
        train_vocabulary: Sequence[str],
        test_vocabulary: Sequence[str],
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        class_chunk: int = 64,
        query_chunk: int = 16,
        max_dense_classes: int = 200,
        clip_ensemble: ClipEnsemble | None = None,
        seen_classes: Sequence[str] | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.classifier = classifier
        self.criterion = criterion
        self.text_embedder = text_embedder
        self.class_chunk = class_chunk
        self.query_chunk = query_chunk
        self.max_dense_classes = max_dense_classes
        self.clip_ensemble = clip_ensemble
        self.seen_classes = None if seen_classes is None else list(seen_classes)
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), persistent=False
        )
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), persistent=False)
        self.train_vocabulary = validate_class_names(train_vocabulary, "the training vocabulary")
        self._encoded: dict[
            str, tuple[list[str], torch.Tensor]
        ] = {}  # role -> (names, t_i) once used
        self.set_vocabulary(test_vocabulary)

    @classmethod
    def from_config(cls, cfg) -> dict:
        backbone = build_backbone(cfg)
        text_embedder = build_semantic_source(cfg)
        train_vocabulary = (
            training_vocabulary(cfg)
            if cfg.DATASETS.TRAIN
            else list(cfg.MODEL.CEL.TRAIN_VOCABULARY)
            or _dataset_classes(cfg.DATASETS.TEST, "MODEL.CEL.TRAIN_VOCABULARY")
        )
        test_vocabulary = list(cfg.MODEL.CEL.TEST_VOCABULARY) or (
            _dataset_classes(cfg.DATASETS.TEST, "MODEL.CEL.TEST_VOCABULARY")
            if cfg.DATASETS.TEST
            else train_vocabulary
        )
        embed_dim = text_embedder.dim
        if cfg.MODEL.CEL.BACKGROUND not in ("none", "learned"):
            raise ValueError(
                f"MODEL.CEL.BACKGROUND must be 'none' or 'learned', got {cfg.MODEL.CEL.BACKGROUND!r}"
            )
        return {
            "backbone": backbone,
            "sem_seg_head": build_cel_head(cfg, backbone.output_shape(), embed_dim),
            "classifier": TextClassifier(
                embed_dim, cfg.MODEL.CEL.TEMPERATURE, cfg.MODEL.CEL.BACKGROUND == "learned"
            ),
            "criterion": CELCriterion(cfg),
            "text_embedder": text_embedder,
            "train_vocabulary": train_vocabulary,
            "test_vocabulary": test_vocabulary,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "class_chunk": cfg.MODEL.CEL.TEST.CLASS_CHUNK,
            "query_chunk": cfg.MODEL.CEL.TEST.QUERY_CHUNK,
            "max_dense_classes": cfg.MODEL.CEL.TEST.MAX_DENSE_CLASSES,
            "clip_ensemble": ClipEnsemble.from_config(cfg) if cfg.MODEL.CLIP.ENSEMBLE else None,
            "seen_classes": _training_seen_classes(cfg.DATASETS.TRAIN),
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def train_text_embeddings(self) -> torch.Tensor:
        """t_i of the training vocabulary, encoded on first use (inference never needs them)."""
        return self._text_embeddings("train", self.train_vocabulary)

    @property
    def test_text_embeddings(self) -> torch.Tensor:
        """t_i of the evaluation vocabulary, encoded on first use."""
        return self._text_embeddings("test", self.test_vocabulary)

    def _text_embeddings(self, role: str, names: list[str]) -> torch.Tensor:
        encoded_names, embeddings = self._encoded.get(role, (None, None))
        if encoded_names != names:
            embeddings = self.text_embedder(names)
        self._encoded[role] = (names, embeddings.to(self.device))
        return self._encoded[role][1]

    def set_vocabulary(
        self, class_names: Sequence[str], unseen_classes: Sequence[str] | None = None
    ) -> None:
        """Use ``class_names`` at inference (open vocabulary; text embeddings come from the cache).

        ``unseen_classes`` matter only to the CLIP ensemble; by default, the names that are not a
        seen class of the training data (``seen_classes``, from DATASETS.TRAIN's metadata)."""
        self.test_vocabulary = validate_class_names(class_names, "the evaluation vocabulary")
        if unseen_classes is None:
            unseen_classes = self._names_not_seen(self.test_vocabulary)
        self.test_unseen = unseen_class_mask(self.test_vocabulary, unseen_classes)
        logger.info(f"Evaluation vocabulary: {len(self.test_vocabulary)} classes")

    def _names_not_seen(self, class_names: Sequence[str]) -> list[str]:
        if self.seen_classes is None:
            if self.clip_ensemble is not None:
                raise ValueError(
                    "MODEL.CLIP.ENSEMBLE needs the training data's seen classes: set DATASETS.TRAIN to "
                    "the data set the model was trained on (only its metadata is read)"
                )
            return []
        seen = set(self.seen_classes)
        return [name for name in class_names if name not in seen]

    def forward(self, batched_inputs: list[dict]):
        """Training: a dict of weighted losses (eq. 8). Inference: per image ``sem_seg_label``
        [H,W] and, for vocabularies up to ``max_dense_classes``, ``sem_seg`` [C,H,W] (eq. 4)."""
        outputs, images = self._predict(batched_inputs)
        text = self.train_text_embeddings if self.training else self.test_text_embeddings
        deep_supervised = (
            outputs.get("aux_outputs", []) if self.training else []
        )  # only losses read them
        for prediction in [outputs, *deep_supervised]:
            similarity, logits = self.classifier(prediction["pred_class_embeds"], text)
            prediction["pred_similarity"], prediction["pred_logits"] = similarity, logits
        if self.training:
            return self.criterion(outputs, self._targets(batched_inputs, images))
        per_image = zip(outputs["pred_logits"], outputs["pred_masks"], batched_inputs)
        return [
            self._inference(
                logits,
                self._mask_chunks(masks, images, i, x),
                x["image"],
                self._output_size(images, i, x),
            )
            for i, (logits, masks, x) in enumerate(per_image)
        ]

    @torch.no_grad()
    def predict_mask_probs(self, batched_inputs: list[dict]) -> list[torch.Tensor]:
        """Class-agnostic proposals: sigma(mask logits) [Q, height, width] per image (M_q)."""
        outputs, images = self._predict(batched_inputs)
        return list(self._full_resolution_masks(outputs, images, batched_inputs))

    def _predict(self, batched_inputs: list[dict]):
        images = [
            (x["image"].to(self.device) - self.pixel_mean) / self.pixel_std for x in batched_inputs
        ]
        images = ImageList.from_tensors(images, self.backbone.size_divisibility)
        return self.sem_seg_head(self.backbone(images.tensor)), images

    @staticmethod
    def _output_size(images: ImageList, index: int, x: dict) -> tuple[int, int]:
        h, w = images.image_sizes[index]
        return x.get("height", h), x.get("width", w)

    @classmethod
    def _mask_chunks(
        cls, mask_logits: torch.Tensor, images: ImageList, index: int, x: dict
    ) -> MaskChunks:
        padded_size, image_size = tuple(images.tensor.shape[-2:]), tuple(images.image_sizes[index])
        return full_resolution_mask_chunks(
            mask_logits, padded_size, image_size, cls._output_size(images, index, x)
        )

    @classmethod
    def _full_resolution_masks(cls, outputs: dict, images: ImageList, batched_inputs: list[dict]):
        """Mask logits upsampled to the padded input, cropped, resized to the output size, sigmoid."""
        for i, (mask_logits, x) in enumerate(zip(outputs["pred_masks"], batched_inputs)):
            yield cls._mask_chunks(mask_logits, images, i, x)(0, len(mask_logits))

    def _targets(
        self, batched_inputs: list[dict], images: ImageList
    ) -> list[dict[str, torch.Tensor]]:
        padded_h, padded_w = images.tensor.shape[-2:]
        targets = []
        for x in batched_inputs:
            instances = x["instances"].to(self.device)
            masks = instances.gt_masks
            masks = masks.tensor if hasattr(masks, "tensor") else masks
            h, w = x["sem_seg"].shape[-2:]
            padded_masks = masks.new_zeros((masks.shape[0], padded_h, padded_w), dtype=torch.bool)
            padded_masks[:, :h, :w] = masks
            ignore = torch.ones((padded_h, padded_w), dtype=torch.bool, device=self.device)
            ignore[:h, :w] = x["sem_seg"].to(self.device) == 255
            targets.append(
                {
                    "labels": instances.gt_classes,
                    "masks": padded_masks,
                    "ignore_mask": ignore,
                    "image_labels": x["image_labels"].to(self.device),
                }
            )
        return targets

    def _inference(
        self, logits: torch.Tensor, masks: MaskChunks, image: torch.Tensor, size: tuple[int, int]
    ) -> dict:
        """Eq. 4 at the output ``size``, ``query_chunk`` full-resolution masks at a time."""
        probs = logits.float().softmax(dim=-1)[:, : len(self.test_vocabulary)]
        if self.clip_ensemble is not None:
            image_masks = torch.cat(
                [
                    F.interpolate(
                        masks(start, start + self.query_chunk)[None],
                        size=image.shape[-2:],
                        mode="bilinear",
                        align_corners=False,
                    )[0]
                    for start in range(0, len(probs), self.query_chunk)
                ]
            )
            probs = self.clip_ensemble(
                image, image_masks, probs, self.test_unseen, self.test_text_embeddings
            )
        if probs.shape[1] <= self.max_dense_classes:
            scores = chunked_semantic_scores(probs, masks, size, self.query_chunk)
            return {"sem_seg": scores, "sem_seg_label": scores.argmax(dim=0)}
        return {
            "sem_seg_label": semantic_argmax(probs, masks, size, self.class_chunk, self.query_chunk)
        }
