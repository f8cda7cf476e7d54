"""Captioned image regions of a registered split: what a small CLIP is trained and tested on.

Two kinds of region, both cropped by the same code as the pseudo-label pass and the ensemble
(:func:`zsseg_d2.modeling.clip.crops.crop_regions`: box -> CLIP size, CLIP normalisation):

- class boxes: for each class present in an image, the bounding box of all its pixels, captioned
  with that class (the kind of crop CLIP sees at inference: the box of a mask);
- random boxes (training only): boxes of random size and place, kept when one class covers at
  least ``min_dominance`` of their labelled pixels, and captioned with it.

Every class of the annotation takes part, seen and unseen: the GZS3 protocol withholds unseen
*masks* from the segmentation model, not the class names from CLIP's pretraining.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

from ..data.sem_seg_io import load_sem_seg, read_image
from ..data.splits import unseen_class_ids
from ..modeling.clip.crops import mask_boxes, normalize_image, resize_boxes


@dataclass
class RegionSet:
    """CLIP-normalised crops ``[N, 3, h, w]`` and their class ids ``[N]`` into ``class_names``."""

    crops: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    unseen_ids: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=len(self.class_names)).tolist()


def class_boxes(
    label: np.ndarray, num_classes: int, min_fraction: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(boxes [K, 4], classes [K])``: the box of each class covering at least ``min_fraction``
    of the image (ignore pixels, ids >= ``num_classes``, belong to no class)."""
    label_t = torch.from_numpy(label.astype(np.int64))
    present = [c for c in torch.unique(label_t).tolist() if c < num_classes]
    present = [c for c in present if (label_t == c).sum().item() >= min_fraction * label.size]
    if not present:
        return torch.zeros((0, 4)), torch.zeros(0, dtype=torch.long)
    masks = torch.stack([label_t == c for c in present])
    return mask_boxes(masks), torch.tensor(present, dtype=torch.long)


def random_boxes(
    label: np.ndarray, num_classes: int, rng: np.random.Generator, count: int, min_dominance: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``count`` random boxes (side 1/4 to 3/4 of the image's) whose labelled pixels are at
    least ``min_dominance`` one class, with that class; boxes failing it are dropped."""
    height, width = label.shape
    boxes, classes = [], []
    for _ in range(count):
        h, w = (int(rng.uniform(0.25, 0.75) * side) for side in (height, width))
        y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        window = label[y0 : y0 + h, x0 : x0 + w]
        counts = np.bincount(window[window < num_classes].ravel(), minlength=num_classes)
        if counts.sum() and counts.max() >= min_dominance * counts.sum():
            boxes.append([x0, y0, x0 + w, y0 + h])
            classes.append(int(counts.argmax()))
    return torch.tensor(boxes, dtype=torch.float32).view(-1, 4), torch.tensor(
        classes, dtype=torch.long
    )


def _image_regions(
    records: Sequence[dict],
    metadata,
    random_per_image: int,
    min_fraction: float,
    min_dominance: float,
    seed: int,
) -> Iterator[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
    num_classes = len(metadata.stuff_classes)
    for index, record in enumerate(records):
        label = load_sem_seg(record["sem_seg_file_name"], metadata)
        boxes, classes = class_boxes(label, num_classes, min_fraction)
        if random_per_image:
            rng = np.random.default_rng([seed, index])
            extra_boxes, extra_classes = random_boxes(
                label, num_classes, rng, random_per_image, min_dominance
            )
            boxes, classes = torch.cat([boxes, extra_boxes]), torch.cat([classes, extra_classes])
        if len(classes):
            yield read_image(record["file_name"], "RGB"), boxes, classes


def build_region_set(
    dataset_name: str,
    preprocess: dict,
    *,
    random_per_image: int = 0,
    min_fraction: float = 0.002,
    min_dominance: float = 0.6,
    seed: int = 0,
    max_images: int = 0,
) -> RegionSet:
    """The captioned regions of every image of ``dataset_name`` (the first ``max_images`` if > 0),
    cropped to ``preprocess["size"]`` with its mean and std (from :func:`create_clip_model`)."""
    metadata = MetadataCatalog.get(dataset_name)
    records = DatasetCatalog.get(dataset_name)
    records = records[:max_images] if max_images > 0 else records
    crops, labels = [], []
    size = tuple(preprocess["size"])
    for image, boxes, classes in _image_regions(
        records, metadata, random_per_image, min_fraction, min_dominance, seed
    ):
        image_t = normalize_image(
            torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1),
            preprocess["mean"],
            preprocess["std"],
        )
        crops.append(resize_boxes(image_t, boxes, size))
        labels.append(classes)
    if not crops:
        raise ValueError(
            f"data set '{dataset_name}' has no labelled region of at least {min_fraction} of an image"
        )
    return RegionSet(
        torch.cat(crops),
        torch.cat(labels),
        list(metadata.stuff_classes),
        unseen_class_ids(metadata),
    )
