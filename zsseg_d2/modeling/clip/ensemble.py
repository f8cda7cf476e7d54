"""The CLIP ensemble at inference (Table 4 of Dao et al. 2023).

:class:`ClipEnsemble` is the geometric ensemble of Xu et al.'s baseline (zsseg.baseline), which the
paper says it uses: p = p_model^l * p_clip^(1-l) for seen classes and p_model^(1-l) * p_clip^l for
unseen ones, "seen" meaning a seen class of the training data. As in the reference: crops are the
tight box of the mask (sigma > 0.5) with the pixels outside the mask filled with CLIP's pixel mean,
l is 0.8 for COCO-Stuff and 0.7 for VOC (set per config), and a query whose mask is empty gets
p_clip = 1 for every class (the model's probability alone, raised to its exponent). The result is
not renormalised (eq. 4 only compares classes per pixel).

A plain object, not a submodule, so CLIP's weights never enter the segmentor's checkpoints; move
it with ``.to(device)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode

from .crop_classifier import ClipCropClassifier
from .loader import create_clip_model


def geometric_ensemble(
    p_model: torch.Tensor, p_clip: torch.Tensor, unseen: torch.Tensor, lam: float
) -> torch.Tensor:
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

    Queries whose binary mask is empty get p_clip = 1 (zsseg.baseline's rule); no crop is encoded.
    """

    def __init__(
        self, classifier: ClipCropClassifier, lam: float = 0.8, mask_threshold: float = 0.5
    ):
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"MODEL.CLIP.ENSEMBLE_LAMBDA must be in [0, 1], got {lam}")
        self.classifier = classifier
        self.lam = lam
        self.mask_threshold = mask_threshold

    @classmethod
    def from_config(cls, cfg: CfgNode) -> ClipEnsemble:
        """CLIP of ``MODEL.CLIP`` with its ``ENSEMBLE_*`` options (crops per forward:
        ``PSEUDO_LABEL.CROP_BATCH_SIZE``)."""
        clip = cfg.MODEL.CLIP
        model, preprocess = create_clip_model(
            clip.MODEL_NAME, clip.PRETRAINED, clip.OFFLINE, device=cfg.MODEL.DEVICE
        )
        classifier = ClipCropClassifier(
            model,
            preprocess,
            expand_ratio=clip.ENSEMBLE_EXPAND_RATIO,
            mask_fill=clip.ENSEMBLE_MASK_FILL,
            batch_size=cfg.PSEUDO_LABEL.CROP_BATCH_SIZE,
        )
        return cls(classifier, clip.ENSEMBLE_LAMBDA, clip.ENSEMBLE_MASK_THRESHOLD)

    def to(self, device: str | torch.device) -> ClipEnsemble:
        self.classifier.to(device)
        return self

    @torch.no_grad()
    def clip_probs(
        self, image: torch.Tensor, mask_probs: torch.Tensor, text_embeddings: torch.Tensor
    ) -> torch.Tensor:
        """p_clip ``[Q, C]``: CLIP's class probabilities of each query's mask crop; 1 for every
        class of a query whose mask is empty."""
        if mask_probs.shape[-2:] != image.shape[-2:]:
            mask_probs = F.interpolate(
                mask_probs[None].float(),
                size=image.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )[0]
        masks = mask_probs > self.mask_threshold
        valid = masks.flatten(1).any(dim=1)
        p_clip = torch.ones((len(masks), len(text_embeddings)), device=self.classifier.device)
        if valid.any():
            crops = self.classifier.crops(image, masks[valid])
            p_clip[valid.to(p_clip.device)] = self.classifier.class_probs(
                self.classifier.encode(crops), text_embeddings
            )
        return p_clip

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
