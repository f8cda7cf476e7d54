"""Segmentation heads, registered in ``SEM_SEG_HEADS_REGISTRY`` on import."""

from .cel_head import CELHead, build_cel_head
from .szn_head import SZNHead, UpsamplingHead, bilinear_upsampling_weight
from .text_classifier import TextClassifier

__all__ = [
    "CELHead",
    "SZNHead",
    "TextClassifier",
    "UpsamplingHead",
    "bilinear_upsampling_weight",
    "build_cel_head",
]
