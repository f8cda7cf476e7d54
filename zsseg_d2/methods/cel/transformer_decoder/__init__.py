"""Transformer decoders (registered in :data:`TRANSFORMER_DECODER_REGISTRY` on import)."""

from .masked_attention_decoder import (
    TRANSFORMER_DECODER_REGISTRY,
    MaskedAttentionDecoder,
    build_attention_mask,
    build_transformer_decoder,
)
from .position_encoding import SinePositionEmbedding

__all__ = [
    "TRANSFORMER_DECODER_REGISTRY",
    "MaskedAttentionDecoder",
    "SinePositionEmbedding",
    "build_attention_mask",
    "build_transformer_decoder",
]
