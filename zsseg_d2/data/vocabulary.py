"""The training vocabulary: which class names the training ids index."""

from __future__ import annotations

from collections.abc import Sequence

from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog

from .image_labels import load_caption_nouns


def training_vocabulary(cfg: CfgNode) -> list[str]:
    """Class names indexed by the mapper's training ids (``sem_seg``, ``gt_classes``,
    ``image_labels``): the caption-noun vocabulary with INPUT.IMAGE_LABELS.NOUN_FILE (Table 3),
    else MODEL.VOCABULARY.TRAIN when set, else the first training data set's ``stuff_classes``
    (GZS3), else, for evaluation-only runs, the first test set's."""
    if cfg.INPUT.IMAGE_LABELS.NOUN_FILE:
        return load_caption_nouns(cfg.INPUT.IMAGE_LABELS.NOUN_FILE)[0]
    if cfg.MODEL.VOCABULARY.TRAIN:
        return list(cfg.MODEL.VOCABULARY.TRAIN)
    datasets = cfg.DATASETS.TRAIN or cfg.DATASETS.TEST
    if not datasets:
        raise ValueError(
            "no training vocabulary: set MODEL.VOCABULARY.TRAIN, or name a data set in DATASETS.TRAIN"
        )
    return list(MetadataCatalog.get(datasets[0]).stuff_classes)


def class_name_aliases(dataset_names: Sequence[str]) -> dict[str, str]:
    """Each registered data set's class name (``stuff_classes``, the prompt name, e.g. "building")
    -> its raw name (``raw_class_names``, e.g. "building-other"), where the two differ."""
    aliases: dict[str, str] = {}
    for name in dataset_names:
        metadata = MetadataCatalog.get(name)
        if hasattr(metadata, "stuff_classes") and hasattr(metadata, "raw_class_names"):
            aliases.update(
                (c, r) for c, r in zip(metadata.stuff_classes, metadata.raw_class_names) if c != r
            )
    return aliases
