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
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.structures import ImageList
from torch import nn

from ...modeling.clip import ClipEnsemble
from ...modeling.segmentor import ZeroShotSegmentor
from .criterion import CELCriterion
from .head import build_cel_head
from .semantic_inference import (
    MaskChunks,
    chunked_semantic_scores,
    full_resolution_mask_chunks,
    semantic_argmax,
)
from .text_classifier import TextClassifier

logger = logging.getLogger(__name__)
BACKGROUNDS = ("none", "learned")
MASK_PIXELS = ("labelled", "all")  # MODEL.CEL.LOSS.MASK_PIXELS


@META_ARCH_REGISTRY.register()
class CEL(ZeroShotSegmentor):
    """Backbone -> pixel decoder -> masked-attention decoder -> masks and text-similarity classes."""

    @configurable
    def __init__(
        self,
        *,
        sem_seg_head: nn.Module,
        classifier: TextClassifier,
        criterion: CELCriterion,
        class_chunk: int = 64,
        query_chunk: int = 16,
        max_dense_classes: int = 200,
        clip_ensemble: ClipEnsemble | None = None,
        mask_pixels: str = "labelled",
        **base,
    ):
        super().__init__(**base)
        self.mask_pixels = mask_pixels
        self.sem_seg_head = sem_seg_head
        self.classifier = classifier
        self.criterion = criterion
        self.class_chunk = class_chunk
        self.query_chunk = query_chunk
        self.max_dense_classes = max_dense_classes
        self.clip_ensemble = clip_ensemble
        self.init_vocabulary()

    @classmethod
    def from_config(cls, cfg) -> dict:
        args = cls.base_config(cfg)
        embed_dim = args["semantic_source"].dim
        if cfg.MODEL.CEL.BACKGROUND not in BACKGROUNDS:
            raise ValueError(
                f"MODEL.CEL.BACKGROUND must be one of {BACKGROUNDS}, got {cfg.MODEL.CEL.BACKGROUND!r}"
            )
        learned_background = cfg.MODEL.CEL.BACKGROUND == "learned"
        if cfg.MODEL.CEL.LOSS.MASK_PIXELS not in MASK_PIXELS:
            raise ValueError(
                f"MODEL.CEL.LOSS.MASK_PIXELS must be one of {MASK_PIXELS}, got "
                f"{cfg.MODEL.CEL.LOSS.MASK_PIXELS!r}"
            )
        return {
            **args,
            "sem_seg_head": build_cel_head(cfg, args["backbone"].output_shape(), embed_dim),
            "classifier": TextClassifier(embed_dim, cfg.MODEL.CEL.TEMPERATURE, learned_background),
            "criterion": CELCriterion(cfg),
            "class_chunk": cfg.MODEL.CEL.TEST.CLASS_CHUNK,
            "query_chunk": cfg.MODEL.CEL.TEST.QUERY_CHUNK,
            "max_dense_classes": cfg.MODEL.CEL.TEST.MAX_DENSE_CLASSES,
            "clip_ensemble": ClipEnsemble.from_config(cfg) if cfg.MODEL.CLIP.ENSEMBLE else None,
            "mask_pixels": cfg.MODEL.CEL.LOSS.MASK_PIXELS,
        }

    @property
    def text_embedder(self):
        """The semantic source (CEL's name for it: the frozen CLIP text tower of eq. 2)."""
        return self.semantic_source

    @property
    def train_text_embeddings(self) -> torch.Tensor:
        """t_i of the training vocabulary, encoded on first use (inference never needs them)."""
        return self.train_class_vectors

    @property
    def test_text_embeddings(self) -> torch.Tensor:
        """t_i of the evaluation vocabulary, encoded on first use."""
        return self.test_class_vectors

    def vocabulary_changed(self) -> None:
        logger.info(f"Evaluation vocabulary: {len(self.test_vocabulary)} classes")

    def names_not_seen(self, class_names: Sequence[str]) -> list[str]:
        """Unseen for the CLIP ensemble: not a seen class of the training data
        (``DATASETS.TRAIN``'s metadata)."""
        if not self.split.from_training_data:
            if self.clip_ensemble is not None:
                raise ValueError(
                    "MODEL.CLIP.ENSEMBLE needs the training data's seen classes: set DATASETS.TRAIN to "
                    "the data set the model was trained on (only its metadata is read)"
                )
            return []
        return super().names_not_seen(class_names)

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        """A dict of weighted losses (eq. 8)."""
        outputs, images = self._predict(batched_inputs)
        for prediction in [outputs, *outputs.get("aux_outputs", [])]:
            self._classify(prediction, self.train_text_embeddings)
        return self.criterion(outputs, self._targets(batched_inputs, images))

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        """Per image ``sem_seg_label`` [H,W] and, for vocabularies up to ``max_dense_classes``
        (and unless ``label_map_only``), ``sem_seg`` [C,H,W] (eq. 4)."""
        outputs, images = self._predict(batched_inputs)
        self._classify(outputs, self.test_text_embeddings)
        per_image = zip(outputs["pred_logits"], outputs["pred_masks"], batched_inputs)
        return [
            self._inference(
                logits,
                self._mask_chunks(masks, images, i, x),
                x["image"],
                self.output_size(images, i, x),
            )
            for i, (logits, masks, x) in enumerate(per_image)
        ]

    def _classify(self, prediction: dict, text: torch.Tensor) -> None:
        similarity, logits = self.classifier(prediction["pred_class_embeds"], text)
        prediction["pred_similarity"], prediction["pred_logits"] = similarity, logits

    @torch.no_grad()
    def predict_mask_probs(self, batched_inputs: list[dict]) -> list[torch.Tensor]:
        """Class-agnostic proposals: sigma(mask logits) [Q, height, width] per image (M_q)."""
        outputs, images = self._predict(batched_inputs)
        return list(self._full_resolution_masks(outputs, images, batched_inputs))

    def _predict(self, batched_inputs: list[dict]):
        images = self.preprocess(batched_inputs)
        return self.sem_seg_head(self.backbone(images.tensor)), images

    @classmethod
    def _mask_chunks(
        cls, mask_logits: torch.Tensor, images: ImageList, index: int, x: dict
    ) -> MaskChunks:
        """M_q of image ``index`` at its output size, on demand (Detectron2's postprocessing of
        :meth:`postprocess`, applied to chunks of queries to bound memory)."""
        padded_size, image_size = tuple(images.tensor.shape[-2:]), tuple(images.image_sizes[index])
        return full_resolution_mask_chunks(
            mask_logits, padded_size, image_size, cls.output_size(images, index, x)
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
            if self.mask_pixels == "labelled":
                ignore[:h, :w] = x["sem_seg"].to(self.device) == self.ignore_value
            else:  # "all": the padding only
                ignore[:h, :w] = False
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
        if not self.label_map_only and probs.shape[1] <= self.max_dense_classes:
            scores = chunked_semantic_scores(probs, masks, size, self.query_chunk)
            return {"sem_seg": scores, "sem_seg_label": scores.argmax(dim=0)}
        return {
            "sem_seg_label": semantic_argmax(probs, masks, size, self.class_chunk, self.query_chunk)
        }
