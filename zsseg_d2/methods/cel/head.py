"""The segmentation head of the CEL model (Dao et al. 2023, Sec. 3.1): a pixel decoder followed by
a transformer decoder that outputs per-query class embeddings and mask logits."""

from __future__ import annotations

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from torch import nn

from .transformer_decoder.masked_attention_decoder import build_transformer_decoder


@SEM_SEG_HEADS_REGISTRY.register()
class CELHead(nn.Module):
    """Pixel decoder (``MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME``) + transformer decoder
    (``MODEL.TRANSFORMER_DECODER.NAME``)."""

    @configurable
    def __init__(self, *, pixel_decoder: nn.Module, transformer_decoder: nn.Module):
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.transformer_decoder = transformer_decoder

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec], class_embed_dim: int) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        missing = [name for name in head.IN_FEATURES if name not in input_shape]
        if missing:
            raise ValueError(
                f"CELHead: MODEL.SEM_SEG_HEAD.IN_FEATURES {missing} are not produced by the backbone "
                f"(it gives {sorted(input_shape)})"
            )
        input_shape = {
            name: shape for name, shape in input_shape.items() if name in head.IN_FEATURES
        }
        pixel_decoder = SEM_SEG_HEADS_REGISTRY.get(head.PIXEL_DECODER_NAME)(cfg, input_shape)
        transformer_decoder = build_transformer_decoder(cfg, head.CONVS_DIM, class_embed_dim)
        return {"pixel_decoder": pixel_decoder, "transformer_decoder": transformer_decoder}

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, object]:
        """Backbone features by name -> the transformer decoder's prediction dict (see
        :meth:`MaskedAttentionDecoder.forward`)."""
        mask_features, multi_scale_features = self.pixel_decoder.forward_features(features)
        return self.transformer_decoder(multi_scale_features, mask_features)


def build_cel_head(cfg, input_shape: dict[str, ShapeSpec], class_embed_dim: int) -> nn.Module:
    """Build the head named by ``MODEL.SEM_SEG_HEAD.NAME`` with class embeddings of width
    ``class_embed_dim`` (the text-embedding width of the CLIP model)."""
    return SEM_SEG_HEADS_REGISTRY.get(cfg.MODEL.SEM_SEG_HEAD.NAME)(
        cfg, input_shape, class_embed_dim
    )
