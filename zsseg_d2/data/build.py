"""Selecting the dataset mapper by INPUT.DATASET_MAPPER_NAME."""

from __future__ import annotations

from typing import Callable

from detectron2.config import CfgNode

from .full_label_mapper import FullLabelDatasetMapper
from .mapper import ZeroShotSemanticDatasetMapper

DATASET_MAPPERS: dict[str, type] = {
    "zs_semantic": ZeroShotSemanticDatasetMapper,
    "zs_full_label": FullLabelDatasetMapper,  # keeps unseen pixels (ZS3Net's protocol)
}


def build_dataset_mapper(cfg: CfgNode, is_train: bool = True) -> Callable[[dict], dict]:
    """The mapper named by INPUT.DATASET_MAPPER_NAME (one of :data:`DATASET_MAPPERS`)."""
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in DATASET_MAPPERS:
        raise ValueError(
            f"INPUT.DATASET_MAPPER_NAME {name!r} is not one of {sorted(DATASET_MAPPERS)}"
        )
    return DATASET_MAPPERS[name](cfg, is_train)
