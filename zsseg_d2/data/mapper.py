"""Training mapper for zero-shot semantic segmentation (Mask2Former's semantic style).

Per image it yields the augmented image, the seen-only label map, one binary mask per seen class
present (unseen and unlabeled pixels are ignored: the model never gets mask supervision for
unseen classes), and the image-level labels of the ranking loss (eq. 6-7).
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from detectron2.config import CfgNode, configurable
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.structures import Instances

from .augmentations import build_augmentations
from .build import register_dataset_mapper
from .image_labels import load_caption_nouns, load_pseudo_labels
from .registration import check_dataset_command
from .sem_seg_io import load_sem_seg, read_image
from .splits import seen_class_ids, unseen_class_ids
from .vocabulary import training_vocabulary

logger = logging.getLogger(__name__)

UNSEEN_MODES = ("none", "pseudo", "gt")
_MAX_REPLACEMENTS = 20  # unreadable pairs replaced in a row before giving up


def _class_to_vocabulary(metadata, vocabulary: list[str], needed: list[int]) -> np.ndarray:
    """Vocabulary index of each of the data set's classes (-1: not in the vocabulary); the
    ``needed`` classes must be in it."""
    index = {name: i for i, name in enumerate(vocabulary)}
    missing = [metadata.stuff_classes[c] for c in needed if metadata.stuff_classes[c] not in index]
    if missing:
        raise ValueError(
            f"classes {missing} of data set '{metadata.name}' are not in the training vocabulary "
            f"({len(vocabulary)} names, see MODEL.VOCABULARY.TRAIN / INPUT.IMAGE_LABELS.NOUN_FILE)"
        )
    return np.array([index.get(name, -1) for name in metadata.stuff_classes], dtype=np.int64)


@register_dataset_mapper("zs_semantic")
class ZeroShotSemanticDatasetMapper:
    """Dataset dict -> {"image", "sem_seg", "instances", "image_labels", ...}.

    - "image": CxHxW uint8 tensor in INPUT.FORMAT;
    - "sem_seg": HxW int64, seen classes kept (as training-vocabulary ids), unseen and unlabeled
      pixels = 255 (and padding, with INPUT.SIZE_DIVISIBILITY);
    - "instances": ``gt_classes`` (seen classes present) and ``gt_masks`` (bool [n, H, W]);
    - "image_labels": sorted int64 ids of the positive classes: the seen classes present, plus
      unseen classes by ``unseen_mode`` ("none"; "gt": present in the augmented full label;
      "pseudo": the image's pseudo labels, which refer to the whole image and so may name an
      object the crop cut away), plus the image's caption nouns, each dropped with probability
      ``noun_drop_prob`` (open-vocabulary training, Table 3).
    With ``skip_unreadable``, a pair that cannot be read (corrupt file, bad label value, size
    mismatch) is logged, counted in ``skipped`` and replaced by a random record of the same data
    set instead of stopping training.
    Ids index the training vocabulary (:func:`training_vocabulary`), for GZS3 the data set's
    ``stuff_classes``.
    """

    @configurable
    def __init__(
        self,
        *,
        is_train: bool,
        augmentations: list[T.Augmentation],
        image_format: str,
        dataset_name: str,
        vocabulary: list[str],
        unseen_mode: str = "none",
        pseudo_labels: dict[str, list[int]] | None = None,
        caption_nouns: dict[str, list[int]] | None = None,
        noun_drop_prob: float = 0.25,
        size_divisibility: int = -1,
        skip_unreadable: bool = False,
    ):
        if unseen_mode not in UNSEEN_MODES:
            raise ValueError(
                f"INPUT.IMAGE_LABELS.UNSEEN_MODE must be one of {UNSEEN_MODES}, got {unseen_mode!r}"
            )
        if unseen_mode == "pseudo" and pseudo_labels is None:
            raise ValueError("UNSEEN_MODE 'pseudo' needs INPUT.IMAGE_LABELS.PSEUDO_LABEL_FILE")
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.metadata = MetadataCatalog.get(dataset_name)
        self.ignore_label = int(self.metadata.ignore_label)
        self.unseen_mode = unseen_mode
        self.pseudo_labels = pseudo_labels
        self.caption_nouns = caption_nouns
        self.noun_drop_prob = noun_drop_prob
        self.size_divisibility = size_divisibility
        self.skip_unreadable = skip_unreadable
        self.skipped = 0
        seen, unseen = seen_class_ids(self.metadata), unseen_class_ids(self.metadata)
        needed = seen + (unseen if unseen_mode != "none" else [])
        to_vocab = _class_to_vocabulary(self.metadata, vocabulary, needed)
        # label value -> training id: seen classes to their vocabulary id, all else to ignore
        self._seen_lut = np.full(256, self.ignore_label, dtype=np.int64)
        self._seen_lut[seen] = to_vocab[seen]
        self._unseen_vocab_ids = np.full(256, -1, dtype=np.int64)
        self._unseen_vocab_ids[unseen] = to_vocab[unseen]
        self._class_to_vocab = to_vocab

    @classmethod
    def from_config(cls, cfg: CfgNode, is_train: bool = True) -> dict:
        names = cfg.DATASETS.TRAIN if is_train else cfg.DATASETS.TEST
        _check_same_classes(names)
        labels_cfg = cfg.INPUT.IMAGE_LABELS
        metadata = MetadataCatalog.get(names[0])
        use_labels = is_train and labels_cfg.UNSEEN_MODE == "pseudo"
        return {
            "is_train": is_train,
            "augmentations": build_augmentations(cfg, is_train, int(metadata.ignore_label)),
            "image_format": cfg.INPUT.FORMAT,
            "dataset_name": names[0],
            "vocabulary": training_vocabulary(cfg),
            "unseen_mode": labels_cfg.UNSEEN_MODE,
            "pseudo_labels": (
                load_pseudo_labels(labels_cfg.PSEUDO_LABEL_FILE, names[0]) if use_labels else None
            ),
            "caption_nouns": (
                load_caption_nouns(labels_cfg.NOUN_FILE)[1]
                if is_train and labels_cfg.NOUN_FILE
                else None
            ),
            "noun_drop_prob": labels_cfg.NOUN_DROP_PROB,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
            "skip_unreadable": cfg.INPUT.SKIP_UNREADABLE,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict, image, label = self._read_or_replace(copy.deepcopy(dataset_dict))
        aug_input = T.AugInput(image, sem_seg=label)
        self.augmentations(aug_input)
        image, label = self._pad(aug_input.image, aug_input.sem_seg)

        sem_seg = self._seen_lut[label]
        classes = np.unique(sem_seg)
        classes = classes[classes != self.ignore_label]
        instances = Instances(sem_seg.shape)
        instances.gt_classes = torch.as_tensor(classes, dtype=torch.int64)
        instances.gt_masks = torch.from_numpy(sem_seg[None] == classes[:, None, None])

        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        dataset_dict["sem_seg"] = torch.as_tensor(sem_seg, dtype=torch.int64)
        dataset_dict["instances"] = instances
        dataset_dict["image_labels"] = self._image_labels(dataset_dict["image_id"], label, classes)
        return dataset_dict

    def _read_or_replace(self, dataset_dict: dict) -> tuple[dict, np.ndarray, np.ndarray]:
        """The record's image and label; with ``skip_unreadable``, those of a random other record
        when it cannot be read (counted and logged)."""
        for _ in range(_MAX_REPLACEMENTS):
            try:
                return (dataset_dict, *self._read(dataset_dict))
            except (OSError, ValueError) as error:
                if not self.skip_unreadable:
                    raise
                self.skipped += 1
                logger.warning(
                    f"skipped an unreadable image/label pair ({self.skipped} so far in this loader): {error}"
                )
                records = DatasetCatalog.get(self.metadata.name)
                dataset_dict = copy.deepcopy(records[np.random.randint(len(records))])
        raise RuntimeError(
            f"{_MAX_REPLACEMENTS} image/label pairs in a row of data set '{self.metadata.name}' could not be read; "
            f"run `{check_dataset_command(self.metadata.name)}` to list every bad pair"
        )

    def _read(self, dataset_dict: dict) -> tuple[np.ndarray, np.ndarray]:
        if self.ignore_label > 255:
            raise RuntimeError(
                f"data set '{self.metadata.name}' has {len(self.metadata.stuff_classes)} classes; "
                "the training mapper supports at most 255 (8-bit labels, ignore 255)"
            )
        return read_pair(dataset_dict, self.image_format, self.metadata)

    def _pad(self, image: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pad bottom/right to a multiple of ``size_divisibility``: image 128, label ignore."""
        if self.size_divisibility <= 0:
            return image, label
        h, w = label.shape
        pad_h, pad_w = (-h) % self.size_divisibility, (-w) % self.size_divisibility
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=128)
        label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=self.ignore_label)
        return image, label

    def _image_labels(
        self, image_id: str, label: np.ndarray, seen_present: np.ndarray
    ) -> torch.Tensor:
        positives = [seen_present]
        if self.unseen_mode == "gt":
            unseen = self._unseen_vocab_ids[np.unique(label)]
            positives.append(unseen[unseen >= 0])
        elif self.unseen_mode == "pseudo":
            positives.append(self._class_to_vocab[self.pseudo_labels.get(image_id, [])])
        if self.caption_nouns is not None:
            nouns = np.asarray(self.caption_nouns.get(image_id, []), dtype=np.int64)
            positives.append(nouns[np.random.rand(len(nouns)) >= self.noun_drop_prob])
        return torch.as_tensor(np.unique(np.concatenate(positives)), dtype=torch.int64)


def read_pair(dataset_dict: dict, image_format: str, metadata) -> tuple[np.ndarray, np.ndarray]:
    """Image and contiguous label of one record; errors name the file (also for a size mismatch)."""
    image = read_image(dataset_dict["file_name"], image_format)
    label = load_sem_seg(dataset_dict["sem_seg_file_name"], metadata)
    if image.shape[:2] != label.shape:
        raise ValueError(
            f"image {dataset_dict['file_name']} is {image.shape[1]}x{image.shape[0]} but its "
            f"label {dataset_dict['sem_seg_file_name']} is {label.shape[1]}x{label.shape[0]}"
        )
    return image, label


def _check_same_classes(dataset_names: list[str]) -> None:
    """The mapper reads one metadata: all its data sets must share classes and split."""
    if not dataset_names:
        raise ValueError("the mapper needs at least one data set (DATASETS.TRAIN / DATASETS.TEST)")
    first = MetadataCatalog.get(dataset_names[0])
    for name in dataset_names[1:]:
        other = MetadataCatalog.get(name)
        if (other.stuff_classes, other.unseen_classes) != (
            first.stuff_classes,
            first.unseen_classes,
        ):
            raise ValueError(
                f"data sets {dataset_names[0]} and {name} differ in classes or split; one mapper "
                "serves data sets of one vocabulary"
            )
