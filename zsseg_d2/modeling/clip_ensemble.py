"""CLIP on mask crops: batched crop classification, and the CLIP ensemble at inference (Table 4).

:class:`ClipCropClassifier` turns binary masks of an image into crops
(:mod:`zsseg_d2.pseudo_labels.crops`, shared with the pseudo-label pass), encodes them with CLIP's
image tower in batches and scores them against text embeddings (eq. 9).

:class:`ClipEnsemble` is the geometric ensemble of Xu et al.'s baseline that the paper uses:
p = p_model^l * p_clip^(1-l) for seen classes and p_model^(1-l) * p_clip^l for unseen ones. The
result is not renormalised (eq. 4 only compares classes per pixel).

Both are plain objects, not submodules, so CLIP's weights never enter the segmentor's
checkpoints; move them with ``.to(device)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode

from ..pseudo_labels.crops import crop_regions
from ..pseudo_labels.scoring import crop_class_probs
from .clip import create_clip_model


class ClipCropClassifier:
    """CLIP's image encoder applied to mask crops, ``batch_size`` crops per forward."""

    def __init__(
        self,
        clip_model: torch.nn.Module,
        preprocess: dict,
        *,
        expand_ratio: float = 0.0,
        mask_fill: bool = False,
        batch_size: int = 64,
    ):
        if batch_size < 1:
            raise ValueError(f"PSEUDO_LABEL.CROP_BATCH_SIZE must be >= 1, got {batch_size}")
        self.clip_model = clip_model.eval().requires_grad_(False)
        self.size = tuple(preprocess["size"])
        self.mean = tuple(preprocess["mean"])
        self.std = tuple(preprocess["std"])
        self.expand_ratio = expand_ratio
        self.mask_fill = mask_fill
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, cfg: CfgNode, device: str | torch.device = "cpu") -> "ClipCropClassifier":
        """CLIP ``MODEL.CLIP.*`` with the crop options ``PSEUDO_LABEL.{EXPAND_RATIO, MASK_FILL,
        CROP_BATCH_SIZE}`` (shared by the pseudo-label pass and the ensemble)."""
        clip = cfg.MODEL.CLIP
        model, preprocess = create_clip_model(clip.MODEL_NAME, clip.PRETRAINED, clip.OFFLINE, device=str(device))
        return cls(
            model,
            preprocess,
            expand_ratio=cfg.PSEUDO_LABEL.EXPAND_RATIO,
            mask_fill=cfg.PSEUDO_LABEL.MASK_FILL,
            batch_size=cfg.PSEUDO_LABEL.CROP_BATCH_SIZE,
        )

    @property
    def device(self) -> torch.device:
        return self.clip_model.logit_scale.device

    @property
    def logit_scale(self) -> float:
        """CLIP's learned softmax scale, exp(logit_scale): 100 for trained CLIP models."""
        return float(self.clip_model.logit_scale.exp())

    def to(self, device: str | torch.device) -> "ClipCropClassifier":
        self.clip_model.to(device)
        return self

    def crops(self, image: torch.Tensor, masks: torch.Tensor, keep_context: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised crops ``[K, 3, h, w]`` of binary ``masks [K, H, W]`` on uint8 ``image [3, H, W]``.

        ``keep_context [K]`` (bool): regions not filled with the mean even under ``mask_fill``.
        """
        image, masks = image.to(self.device), masks.to(self.device)
        fill_masks = masks if keep_context is None else masks | keep_context.to(self.device)[:, None, None]
        return crop_regions(image, masks, self.size, self.mean, self.std, self.expand_ratio, self.mask_fill, fill_masks)

    @torch.no_grad()
    def encode(self, crops: torch.Tensor) -> torch.Tensor:
        """Unit-norm CLIP image embeddings ``[K, D]`` of crops, ``batch_size`` per forward."""
        dtype = self.clip_model.logit_scale.dtype
        chunks = [
            self.clip_model.encode_image(crops[i : i + self.batch_size].to(self.device, dtype), normalize=True)
            for i in range(0, len(crops), self.batch_size)
        ]
        return torch.cat(chunks).float() if chunks else crops.new_zeros((0, self.clip_model.visual.output_dim))

    def class_probs(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Eq. 9: ``[K, C]`` softmax of ``logit_scale * cos`` between crops and class texts."""
        return crop_class_probs(image_embeds, text_embeds.to(image_embeds.device), self.logit_scale)


def geometric_ensemble(p_model: torch.Tensor, p_clip: torch.Tensor, unseen: torch.Tensor, lam: float) -> torch.Tensor:
    """``p_model^lam * p_clip^(1-lam)`` for seen classes, ``p_model^(1-lam) * p_clip^lam`` for
    unseen ones (``unseen [C]`` bool); ``p_model``, ``p_clip``: ``[Q, C]``."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"MODEL.CLIP.ENSEMBLE_LAMBDA must be in [0, 1], got {lam}")
    unseen = unseen.to(p_model.device)
    model_power = torch.where(unseen, 1.0 - lam, lam).to(p_model.dtype)
    return p_model.pow(model_power) * p_clip.to(p_model.dtype).pow(1.0 - model_power)


def unseen_class_mask(vocabulary: Sequence[str], unseen_classes: Sequence[str]) -> torch.Tensor:
    """``[C]`` bool: which classes of ``vocabulary`` are unseen."""
    unseen = set(unseen_classes)
    return torch.tensor([name in unseen for name in vocabulary], dtype=torch.bool)


class ClipEnsemble:
    """Inference-time CLIP ensemble (Table 4): each query's mask crop classified by CLIP and
    combined with the model's class probabilities by :func:`geometric_ensemble`.

    Queries whose binary mask is empty are classified on the whole image (no mean fill).
    """

    def __init__(self, classifier: ClipCropClassifier, lam: float = 0.8, mask_threshold: float = 0.5):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"MODEL.CLIP.ENSEMBLE_LAMBDA must be in [0, 1], got {lam}")
        self.classifier = classifier
        self.lam = lam
        self.mask_threshold = mask_threshold

    @classmethod
    def from_config(cls, cfg: CfgNode) -> "ClipEnsemble":
        """CLIP of ``MODEL.CLIP``, ``ENSEMBLE_LAMBDA``; crops as in the pass (``PSEUDO_LABEL.*``)."""
        return cls(
            ClipCropClassifier.from_config(cfg, cfg.MODEL.DEVICE),
            cfg.MODEL.CLIP.ENSEMBLE_LAMBDA,
            cfg.PSEUDO_LABEL.MASK_THRESHOLD,
        )

    def to(self, device: str | torch.device) -> "ClipEnsemble":
        self.classifier.to(device)
        return self

    @torch.no_grad()
    def clip_probs(self, image: torch.Tensor, mask_probs: torch.Tensor, text_embeddings: torch.Tensor) -> torch.Tensor:
        """p_clip ``[Q, C]``: CLIP's class probabilities of each query's mask crop."""
        if mask_probs.shape[-2:] != image.shape[-2:]:
            mask_probs = F.interpolate(mask_probs[None].float(), size=image.shape[-2:], mode="bilinear",
                                       align_corners=False)[0]
        masks = mask_probs > self.mask_threshold
        empty = ~masks.flatten(1).any(dim=1)
        crops = self.classifier.crops(image, masks, keep_context=empty)
        return self.classifier.class_probs(self.classifier.encode(crops), text_embeddings)

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        mask_probs: torch.Tensor,
        p_model: torch.Tensor,
        unseen: torch.Tensor,
        text_embeddings: torch.Tensor,
    ) -> torch.Tensor:
        """Ensembled class probabilities ``[Q, C]``.

        ``image``: uint8 ``[3, H, W]`` RGB (e.g. the model's resized input); ``mask_probs``: the
        queries' sigmoid masks ``[Q, H', W']``, resized (bilinear) to the image's size when they
        differ; ``p_model``: ``[Q, C]``; ``unseen``: ``[C]`` bool; ``text_embeddings``: ``[C, D]``
        CLIP text embeddings of the same vocabulary.
        """
        p_clip = self.clip_probs(image, mask_probs, text_embeddings).to(p_model.device)
        return geometric_ensemble(p_model, p_clip, unseen, self.lam)
