"""open_clip models (loading, the tiny test config) and cached text embeddings."""
from .loader import CLIPWeightsError, create_clip_model, weights_identity
from .text_embeddings import PROMPT_TEMPLATES, TextEmbedder, validate_class_names

__all__ = [
    "CLIPWeightsError",
    "PROMPT_TEMPLATES",
    "TextEmbedder",
    "create_clip_model",
    "validate_class_names",
    "weights_identity",
]
