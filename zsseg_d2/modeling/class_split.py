"""The class list and the unseen classes a pixel-wise method is built for, read from data-set metadata."""

from __future__ import annotations

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog

from ..data.splits import unseen_class_ids


def split_classes(cfg: CfgNode) -> tuple[list[str], list[int]]:
    """``stuff_classes`` and unseen ids of the first training set (of the first test set when
    there is no training set, for evaluation-only runs)."""
    names = cfg.DATASETS.TRAIN or cfg.DATASETS.TEST
    if not names:
        raise ValueError(
            "no data set in DATASETS.TRAIN or DATASETS.TEST: the model's classes come from one"
        )
    metadata = MetadataCatalog.get(names[0])
    return list(metadata.stuff_classes), unseen_class_ids(metadata)
