"""Image loading for the pass, run in DataLoader workers so that it overlaps the networks.

Each item reads the label file first (is the image a candidate? which unseen classes does its
ground truth hold?), then, for candidates, the image at its original size (for the crops) and
resized as Detectron2's test mapper does (for the proposal model). Any error while reading an
item becomes a "failed" item naming the file, so one bad file never stops the pass.

Batches only hold images of the same resized size (the list is sorted by it), so an image is
padded the same way whichever images share its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from detectron2.data import Metadata
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from ....data.sem_seg_io import load_sem_seg, read_image

logger = logging.getLogger(__name__)


def label_metadata(metadata: Metadata) -> Metadata:
    """The fields the label reader needs, in a small picklable object for the workers."""
    return Metadata(
        name=metadata.name,
        stuff_classes=list(metadata.stuff_classes),
        unseen_classes=list(metadata.unseen_classes),
        label_offset=metadata.label_offset,
        raw_ignore_ids=list(metadata.raw_ignore_ids),
        ignore_label=metadata.ignore_label,
    )


def resized_size(height: int, width: int, resize: T.ResizeShortestEdge) -> tuple[int, int]:
    """(h, w) of an image of ``height x width`` after the test-time resize."""
    return resize.get_output_shape(height, width, resize.short_edge_length[0], resize.max_size)


class PassImages(torch.utils.data.Dataset):
    """Detectron2 dataset dicts -> items for :func:`zsseg_d2.pseudo_labels.runner.run_shard`."""

    def __init__(
        self,
        dicts: Sequence[dict],
        metadata: Metadata,
        resize: T.ResizeShortestEdge,
        image_format: str = "RGB",
        all_images: bool = False,
    ):
        self.dicts = list(dicts)
        self.metadata = label_metadata(metadata)
        self.unseen_ids = {metadata.stuff_classes.index(name) for name in metadata.unseen_classes}
        self.resize = resize
        self.image_format = image_format
        self.all_images = all_images

    def __len__(self) -> int:
        return len(self.dicts)

    def __getitem__(self, index: int) -> dict:
        record = self.dicts[index]
        item = {"image_id": record["image_id"], "file_name": record["file_name"]}
        try:
            return {**item, **self._load(record)}
        except Exception as error:  # noqa: BLE001  (PIL, OpenCV and NumPy raise many types)
            logger.warning(
                f"cannot read image {record['image_id']}: {type(error).__name__}: {error}"
            )
            return {**item, "status": "failed", "error": f"{type(error).__name__}: {error}"}

    def _gt_unseen(self, record: dict) -> tuple[bool, list[str] | None]:
        """(is a candidate, unseen class names in the ground truth or None without labels)."""
        if "sem_seg_file_name" not in record:
            return True, None
        label = load_sem_seg(record["sem_seg_file_name"], self.metadata)
        present = np.flatnonzero(np.bincount(label.ravel().astype(np.int64)))
        unseen = [self.metadata.stuff_classes[i] for i in present if i in self.unseen_ids]
        unlabeled = bool(unseen) or int(self.metadata.ignore_label) in present
        return unlabeled or self.all_images, unseen

    def _load(self, record: dict) -> dict:
        candidate, gt_unseen = self._gt_unseen(record)
        if not candidate:
            return {"status": "skipped"}
        image = read_image(record["file_name"], self.image_format)
        utils.check_image_size(record, image)
        height, width = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        return {
            "status": "ok",
            "gt_unseen": gt_unseen,
            "original": torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "model_input": {
                "image": torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1))),
                "height": height,
                "width": width,
            },
        }


def same_size_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[list[int]]:
    """Indices of consecutive items grouped into batches of at most ``batch_size`` equal sizes."""
    batches: list[list[int]] = []
    for index, size in enumerate(sizes):
        if batches and len(batches[-1]) < batch_size and sizes[batches[-1][0]] == size:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def build_loader(
    images: PassImages, sizes: Sequence[tuple[int, int]], batch_size: int, num_workers: int
) -> Iterator[list[dict]]:
    """A DataLoader over ``images`` yielding lists of items, prefetched by ``num_workers`` workers."""
    return torch.utils.data.DataLoader(
        images,
        batch_sampler=same_size_batches(sizes, batch_size),
        num_workers=num_workers,
        collate_fn=list,
        persistent_workers=False,
    )
