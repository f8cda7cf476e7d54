"""Semantic embeddings of class names: the space classes are scored in (CLIP text, word vectors)."""

from .build import SOURCES, SemanticSource, build_semantic_source
from .clip_text import PROMPT_TEMPLATES, TextEmbedder
from .embedding_file import EmbeddingFileSource, read_embedding_file
from .names import validate_class_names
from .pca import PCAProjectedSource

__all__ = [
    "PROMPT_TEMPLATES",
    "SOURCES",
    "EmbeddingFileSource",
    "PCAProjectedSource",
    "SemanticSource",
    "TextEmbedder",
    "build_semantic_source",
    "read_embedding_file",
    "validate_class_names",
]
