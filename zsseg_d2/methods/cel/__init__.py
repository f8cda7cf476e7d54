"""CEL (Dao, Shi, Phung, Cai 2023): the meta-architecture ``CEL`` (``segmentor.py``), its options
(``config.py``), its Mask2Former-style head (``head.py``, ``pixel_decoder/``,
``transformer_decoder/``), the text classifier of eq. 2, the losses of eq. 5-8 with the matcher and
point sampling, eq. 4 inference (``semantic_inference.py``) and the pseudo-label pass of eq. 9-10
(``pseudo_labels/``)."""

from . import pixel_decoder  # noqa: F401  (registers the pixel decoder)
from .config import add_cel_config
from .criterion import CELCriterion, LossDivisors
from .head import CELHead, build_cel_head
from .matcher import HungarianMatcher
from .segmentor import CEL
from .text_classifier import TextClassifier

__all__ = [
    "CEL",
    "CELCriterion",
    "CELHead",
    "HungarianMatcher",
    "LossDivisors",
    "TextClassifier",
    "add_cel_config",
    "build_cel_head",
]
