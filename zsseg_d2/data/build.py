"""The dataset-mapper registry: ``INPUT.DATASET_MAPPER_NAME`` names the training mapper."""

from __future__ import annotations

from typing import Callable, TypeVar

from detectron2.config import CfgNode

MapperClass = TypeVar("MapperClass", bound=type)
DATASET_MAPPERS: dict[str, type] = {}


def register_dataset_mapper(name: str) -> Callable[[MapperClass], MapperClass]:
    """Class decorator: the mapper class (called as ``Mapper(cfg, is_train)``) under ``name``."""

    def register(mapper: MapperClass) -> MapperClass:
        if name in DATASET_MAPPERS:
            raise ValueError(f"a dataset mapper named {name!r} is already registered")
        DATASET_MAPPERS[name] = mapper
        return mapper

    return register


def build_dataset_mapper(cfg: CfgNode, is_train: bool = True) -> Callable[[dict], dict]:
    """The mapper named by INPUT.DATASET_MAPPER_NAME."""
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in DATASET_MAPPERS:
        raise ValueError(
            f"INPUT.DATASET_MAPPER_NAME {name!r} is not a registered mapper; registered: "
            f"{sorted(DATASET_MAPPERS)}"
        )
    return DATASET_MAPPERS[name](cfg, is_train)
