"""CLIP's image tower on mask crops: batched crop classification (eq. 9 of Dao et al. 2023).

Shared by the pseudo-label pass (:mod:`zsseg_d2.pseudo_labels`) and the CLIP ensemble
(:mod:`.ensemble`). A plain object, not a submodule, so CLIP's weights never enter a segmentor's
checkpoints; move it with ``.to(device)``.
"""

from __future__ import annotations

import torch
from detectron2.config import CfgNode

from .crops import crop_regions
from .loader import create_clip_model
from .scoring import crop_class_probs


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
    def from_config(cls, cfg: CfgNode, device: str | torch.device = "cpu") -> ClipCropClassifier:
        """CLIP ``MODEL.CLIP.*`` with the crop options ``PSEUDO_LABEL.{EXPAND_RATIO, MASK_FILL,
        CROP_BATCH_SIZE}`` (shared by the pseudo-label pass and the ensemble)."""
        clip = cfg.MODEL.CLIP
        model, preprocess = create_clip_model(
            clip.MODEL_NAME, clip.PRETRAINED, clip.OFFLINE, device=str(device)
        )
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

    def to(self, device: str | torch.device) -> ClipCropClassifier:
        self.clip_model.to(device)
        return self

    def crops(
        self, image: torch.Tensor, masks: torch.Tensor, keep_context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Normalised crops ``[K, 3, h, w]`` of binary ``masks [K, H, W]`` on uint8 ``image [3, H, W]``.

        ``keep_context [K]`` (bool): regions not filled with the mean even under ``mask_fill``.
        """
        image, masks = image.to(self.device), masks.to(self.device)
        fill_masks = (
            masks if keep_context is None else masks | keep_context.to(self.device)[:, None, None]
        )
        return crop_regions(
            image,
            masks,
            self.size,
            self.mean,
            self.std,
            self.expand_ratio,
            self.mask_fill,
            fill_masks,
        )

    @torch.no_grad()
    def encode(self, crops: torch.Tensor) -> torch.Tensor:
        """Unit-norm CLIP image embeddings ``[K, D]`` of crops, ``batch_size`` per forward."""
        dtype = self.clip_model.logit_scale.dtype
        chunks = [
            self.clip_model.encode_image(
                crops[i : i + self.batch_size].to(self.device, dtype), normalize=True
            )
            for i in range(0, len(crops), self.batch_size)
        ]
        return (
            torch.cat(chunks).float()
            if chunks
            else crops.new_zeros((0, self.clip_model.visual.output_dim))
        )

    def class_probs(self, image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """Eq. 9: ``[K, C]`` softmax of ``logit_scale * cos`` between crops and class texts."""
        return crop_class_probs(image_embeds, text_embeds.to(image_embeds.device), self.logit_scale)
