"""The CLIP ensemble at inference (Table 4 of Dao et al. 2023).

:class:`ClipEnsemble` is the geometric ensemble of Xu et al.'s baseline that the paper uses:
p = p_model^l * p_clip^(1-l) for seen classes and p_model^(1-l) * p_clip^l for unseen ones. The
result is not renormalised (eq. 4 only compares classes per pixel).

A plain object, not a submodule, so CLIP's weights never enter the segmentor's checkpoints; move
it with ``.to(device)``.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode

from .crop_classifier import ClipCropClassifier


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
