"""Training a small open_clip model on the captioned regions of a registered split, so that
zero-shot transfer can be seen and tested offline (``tools/train_clip.py``)."""

from .evaluation import crop_accuracy, encode_crops
from .regions import RegionSet, build_region_set, class_boxes, random_boxes
from .trainer import ClipTrainingSettings, class_distinct_batch, train_clip

__all__ = [
    "ClipTrainingSettings",
    "RegionSet",
    "build_region_set",
    "class_boxes",
    "class_distinct_batch",
    "crop_accuracy",
    "encode_crops",
    "random_boxes",
    "train_clip",
]
