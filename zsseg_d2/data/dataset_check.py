"""Checking every image/label pair of a data set in parallel (``tools/check_dataset.py``)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Optional

import numpy as np
from detectron2.data import Metadata, MetadataCatalog

from .mapper import read_pair

_LABEL_FIELDS = ("name", "stuff_classes", "label_offset", "raw_ignore_ids", "ignore_label")
PairResult = tuple[Optional[str], Optional[np.ndarray]]


def check_pair(record: dict, label_fields: dict) -> PairResult:
    """(error, None) for a pair training could not read, else (None, pixel count per class)."""
    try:
        _, label = read_pair(record, "RGB", Metadata(**label_fields))
    except (OSError, ValueError) as error:
        return str(error), None
    num_classes = len(label_fields["stuff_classes"])
    return None, np.bincount(label.ravel(), minlength=num_classes + 1)[:num_classes]


def check_records(records: list[dict], dataset_name: str, workers: int) -> list[PairResult]:
    """:func:`check_pair` of every record of data set ``dataset_name``, in ``workers`` processes."""
    metadata = MetadataCatalog.get(dataset_name)
    fields = {key: getattr(metadata, key) for key in _LABEL_FIELDS}
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(check_pair, records, [fields] * len(records), chunksize=8))
