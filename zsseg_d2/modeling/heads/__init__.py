"""Segmentation heads, registered in ``SEM_SEG_HEADS_REGISTRY`` on import."""
from .cel_head import CELHead, build_cel_head
from .text_classifier import TextClassifier

__all__ = ["CELHead", "TextClassifier", "build_cel_head"]
