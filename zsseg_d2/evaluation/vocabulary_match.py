"""Which class of the evaluated data set each predicted id stands for.

A model's predicted ids index its evaluation vocabulary (``set_vocabulary``); the evaluated data
set's labels index its ``stuff_classes``. The two are matched by name (up to case and spaces; a
data set's raw name, e.g. "building-other" for "building", matches too), in any order. A
vocabulary that misses a class of the data set or names one it does not have is an error listing
them: its scores could not be compared with the labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog

from ..data.class_lists import name_key

VOCABULARY_KEY = "MODEL.VOCABULARY.TEST"


def dataset_ids_of(vocabulary: Sequence[str], dataset_name: str, source: str) -> np.ndarray:
    """For each name of ``vocabulary``, the id of the class of data set ``dataset_name`` it names;
    ``source`` (where the vocabulary comes from) is named by the error when they do not match."""
    metadata = MetadataCatalog.get(dataset_name)
    classes = list(metadata.stuff_classes)
    raw_names = list(metadata.get("raw_class_names", None) or classes)
    index: dict[str, int] = {}
    for class_id, names in enumerate(zip(classes, raw_names)):
        for name in names:
            index.setdefault(name_key(name), class_id)
    ids = [index.get(name_key(name), -1) for name in vocabulary]
    unknown = [name for name, class_id in zip(vocabulary, ids) if class_id < 0]
    missing = [name for class_id, name in enumerate(classes) if class_id not in ids]
    repeated = sorted({classes[i] for i in ids if i >= 0 and ids.count(i) > 1})
    if unknown or missing or repeated:
        problems = [
            f"{what} {names}"
            for what, names in (
                ("not classes of the data set:", unknown),
                ("its classes missing:", missing),
                ("named more than once:", repeated),
            )
            if names
        ]
        raise ValueError(
            f"{source} ({len(vocabulary)} names) does not match the {len(classes)} classes of the "
            f"evaluated data set '{dataset_name}': {'; '.join(problems)}. Predicted ids index the "
            f"vocabulary and are matched to the data set's classes by name, in any order: name each "
            f"class of the data set once, or leave {VOCABULARY_KEY} empty to evaluate with the data "
            f"set's own names {classes}"
        )
    return np.asarray(ids, dtype=np.int64)


def evaluation_vocabulary(cfg: CfgNode, dataset_name: str) -> list[str]:
    """The names a model predicts when evaluated on ``dataset_name``: ``MODEL.VOCABULARY.TEST``
    (checked against the data set's classes) when given, else the data set's ``stuff_classes``."""
    if cfg.MODEL.VOCABULARY.TEST:
        dataset_ids_of(cfg.MODEL.VOCABULARY.TEST, dataset_name, VOCABULARY_KEY)
        return list(cfg.MODEL.VOCABULARY.TEST)
    return list(MetadataCatalog.get(dataset_name).stuff_classes)
