"""Training-data protocols: which training images a method sees.

CEL keeps every training image and ignores its unseen pixels (the mapper sets them to ignore);
SZN and ZS3Net drop every training image that holds a pixel of an unseen class
(``DATASETS.UNSEEN_IMAGES`` "drop"). Which classes each image holds is read once per data set
from its label files and cached on disk (:func:`class_presence`), so the filter costs one pass
over the labels the first time and a file read afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog

from ..utils.file_io import atomic_write
from .sem_seg_io import load_sem_seg
from .splits import unseen_class_ids

logger = logging.getLogger(__name__)

UNSEEN_IMAGE_PROTOCOLS = ("keep", "drop")


def _cache_dir() -> Path:
    return (
        Path(os.environ.get("ZSSEG_CACHE", Path.home() / ".cache" / "zsseg_d2")) / "class_presence"
    )


def _cache_key(dataset_name: str, dicts: Sequence[dict], num_classes: int) -> str:
    """Changes when a label file is added, removed, rewritten or the class count changes."""
    files = []
    for d in dicts:
        stat = os.stat(d["sem_seg_file_name"])
        files.append([d["sem_seg_file_name"], stat.st_size, stat.st_mtime_ns])
    identity = json.dumps({"dataset": dataset_name, "classes": num_classes, "files": files})
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def class_presence(dataset_name: str, dicts: Sequence[dict] | None = None) -> np.ndarray:
    """Bool [images, classes]: whether image i (in ``DatasetCatalog.get`` order, or of ``dicts``)
    holds a pixel of class c (contiguous ids of the data set's ``stuff_classes``)."""
    metadata = MetadataCatalog.get(dataset_name)
    dicts = DatasetCatalog.get(dataset_name) if dicts is None else dicts
    num_classes = len(metadata.stuff_classes)
    path = _cache_dir() / f"{dataset_name}-{_cache_key(dataset_name, dicts, num_classes)}.npy"
    if path.is_file():
        return np.load(path, allow_pickle=False)
    logger.info(
        f"Reading the classes present in the {len(dicts)} label files of {dataset_name} (cached in {path})"
    )
    presence = np.zeros((len(dicts), num_classes), dtype=bool)
    for i, d in enumerate(dicts):
        label = load_sem_seg(d["sem_seg_file_name"], metadata)
        counts = np.bincount(
            label.ravel(), minlength=num_classes
        )  # ignore (>= num_classes) cut below
        presence[i] = counts[:num_classes] > 0
    with atomic_write(path) as f:
        np.save(f, presence)
    return presence


def drop_images_with_classes(
    dataset_name: str, dicts: list[dict], class_ids: Sequence[int]
) -> list[dict]:
    """The images of ``dicts`` (data set ``dataset_name``) holding no pixel of ``class_ids``."""
    if not class_ids:
        return list(dicts)
    keep = ~class_presence(dataset_name, dicts)[:, list(class_ids)].any(axis=1)
    return [d for d, k in zip(dicts, keep) if k]


def _class_ids(dataset_name: str, names: Sequence[str]) -> list[int]:
    metadata = MetadataCatalog.get(dataset_name)
    classes = list(metadata.stuff_classes)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise ValueError(
            f"DATASETS.DROP_CLASSES names {unknown}, which are not classes of data set "
            f"'{dataset_name}' ({classes})"
        )
    return [classes.index(n) for n in names]


def training_dataset_dicts(cfg: CfgNode) -> list[dict]:
    """The training images of ``DATASETS.TRAIN`` under ``DATASETS.UNSEEN_IMAGES``: "keep" all of
    them, or "drop" those holding a pixel of an unseen class or of ``DATASETS.DROP_CLASSES``."""
    protocol = cfg.DATASETS.UNSEEN_IMAGES
    if protocol not in UNSEEN_IMAGE_PROTOCOLS:
        raise ValueError(
            f"DATASETS.UNSEEN_IMAGES must be one of {UNSEEN_IMAGE_PROTOCOLS}, got {protocol!r}"
        )
    if protocol == "keep" and cfg.DATASETS.DROP_CLASSES:
        raise ValueError(
            "DATASETS.DROP_CLASSES is only used with DATASETS.UNSEEN_IMAGES 'drop'; set that or clear it"
        )
    dicts: list[dict] = []
    for name in cfg.DATASETS.TRAIN:
        images = DatasetCatalog.get(name)
        if protocol == "drop":
            dropped = sorted(
                set(unseen_class_ids(MetadataCatalog.get(name)))
                | set(_class_ids(name, cfg.DATASETS.DROP_CLASSES))
            )
            kept = drop_images_with_classes(name, images, dropped)
            logger.info(
                f"{name}: {len(kept)} of {len(images)} training images hold no pixel of classes {dropped}"
            )
            images = kept
        dicts += images
    if not dicts:
        raise ValueError(
            f"no training image is left in {list(cfg.DATASETS.TRAIN)} with DATASETS.UNSEEN_IMAGES "
            f"{protocol!r} (every image holds a dropped class); use 'keep' or fewer DATASETS.DROP_CLASSES"
        )
    return dicts
