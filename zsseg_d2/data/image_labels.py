"""Image-level label files: unseen pseudo labels (Table 5) and caption nouns (Table 3).

Pseudo labels, written by ``tools/generate_pseudo_labels.py``::

    {"format": "zsseg_d2/pseudo_labels/v1", "dataset": <name>, "threshold": <float>,
     "unseen_classes": [names], "labels": {"<image_id>": ["cow", ...], ...}}

Caption nouns, written by ``datasets/prepare_coco_nouns.py``::

    {"format": "zsseg_d2/caption_nouns/v1", "vocabulary": [nouns], "labels": {"<image_id>": [nouns]}}
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Union

from detectron2.data import DatasetCatalog, MetadataCatalog

PSEUDO_LABEL_FORMAT = "zsseg_d2/pseudo_labels/v1"
CAPTION_NOUN_FORMAT = "zsseg_d2/caption_nouns/v1"

PathLike = Union[str, os.PathLike]
logger = logging.getLogger(__name__)


def _read_json(path: PathLike, expected_format: str, required: tuple[str, ...]) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"image-level label file {path} does not exist")
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or data.get("format") != expected_format:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} has format {found!r}; expected {expected_format!r}")
    missing = [key for key in required if key not in data]
    if missing:
        raise ValueError(f"{path} lacks the fields {missing}")
    return data


def _check_image_ids(path: PathLike, image_ids: list[str], dataset_name: str) -> None:
    """Warn (counted) about ids not in the data set; raise when none of them is."""
    known = {d["image_id"] for d in DatasetCatalog.get(dataset_name)}
    unknown = [image_id for image_id in image_ids if image_id not in known]
    if image_ids and len(unknown) == len(image_ids):
        raise ValueError(
            f"none of the {len(image_ids)} image ids in {path} belongs to data set "
            f"'{dataset_name}' (e.g. {unknown[:3]}); was the file made for another data set?"
        )
    if unknown:
        logger.warning(
            f"{len(unknown)} of {len(image_ids)} image ids in {path} are not in data set "
            f"'{dataset_name}' (e.g. {unknown[:3]}); their labels are not used"
        )


def load_pseudo_labels(path: PathLike, dataset_name: str) -> dict[str, list[int]]:
    """Unseen pseudo labels per image id, as indices into the data set's ``stuff_classes``.

    Errors name the file: wrong format, another data set, another unseen split, or a class that
    is not one of the data set's unseen classes. Image ids unknown to the data set give one
    counted warning; an error when none is known.
    """
    data = _read_json(
        path, PSEUDO_LABEL_FORMAT, ("dataset", "threshold", "unseen_classes", "labels")
    )
    metadata = MetadataCatalog.get(dataset_name)
    if data["dataset"] != dataset_name:
        raise ValueError(f"{path} holds pseudo labels of '{data['dataset']}', not '{dataset_name}'")
    if sorted(data["unseen_classes"]) != sorted(metadata.unseen_classes):
        raise ValueError(
            f"{path} was made for unseen classes {data['unseen_classes']}, but data set "
            f"'{dataset_name}' has {metadata.unseen_classes}"
        )
    class_ids = {name: i for i, name in enumerate(metadata.stuff_classes)}
    unseen = set(metadata.unseen_classes)
    labels = {}
    for image_id, names in data["labels"].items():
        for name in names:
            if name not in unseen:
                raise ValueError(
                    f"{path}: image {image_id} has class {name!r}, which is not an unseen class "
                    f"of '{dataset_name}' ({sorted(unseen)})"
                )
        labels[image_id] = sorted({class_ids[name] for name in names})
    _check_image_ids(path, list(labels), dataset_name)
    if not any(labels.values()):
        logger.warning(f"{path}: no image has a pseudo label (threshold {data['threshold']})")
    return labels


def load_caption_nouns(path: PathLike) -> tuple[list[str], dict[str, list[int]]]:
    """(vocabulary, nouns per image id as indices into the vocabulary) of a caption-noun file."""
    data = _read_json(path, CAPTION_NOUN_FORMAT, ("vocabulary", "labels"))
    vocabulary = list(data["vocabulary"])
    noun_ids = {noun: i for i, noun in enumerate(vocabulary)}
    labels = {}
    for image_id, nouns in data["labels"].items():
        unknown = [noun for noun in nouns if noun not in noun_ids]
        if unknown:
            raise ValueError(f"{path}: image {image_id} has nouns {unknown} outside the vocabulary")
        labels[image_id] = sorted({noun_ids[noun] for noun in nouns})
    return vocabulary, labels
