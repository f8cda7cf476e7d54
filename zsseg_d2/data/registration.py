"""Lazy registration of semantic-segmentation data sets (image folder + label folder).

Nothing is read at registration: listing a split (``DatasetCatalog.get``) reads its folders, and
class names that live in a prepared data set's names file are read on first access of the
metadata field (:class:`LazyClassMetadata`). Roots come from environment variables at access
time, so tests and tools may set them after import.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from PIL import Image

DATASETS_ENV = "DETECTRON2_DATASETS"
SHARED_DATA_ENV = "ZSSEG_SHARED_DATA"
REPO_ROOT = Path(__file__).resolve().parents[2]
README = "datasets/README.md"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_SPLITS: dict[str, SplitFiles] = {}  # data-set name -> its files (see split_files)
logger = logging.getLogger(__name__)


def data_root(env: str) -> Path:
    """The root named by ``env``: $DETECTRON2_DATASETS (default "datasets") or
    $ZSSEG_SHARED_DATA (default <repo root>/../shared/data); "" for none (full paths)."""
    if not env:
        return Path("")
    if env == DATASETS_ENV:
        return Path(os.environ.get(DATASETS_ENV, "datasets"))
    if env == SHARED_DATA_ENV:
        return Path(os.environ.get(SHARED_DATA_ENV, REPO_ROOT.parent / "shared" / "data"))
    raise ValueError(f"unknown data root variable {env!r}")


def missing_data_error(
    path: Path, env: str, what: str, defined_in: str = README
) -> FileNotFoundError:
    if not env:
        return FileNotFoundError(f"{what} not found: {path} (as given in {defined_in})")
    return FileNotFoundError(
        f"{what} not found: {path} (root from ${env}={data_root(env)}). Download and prepare the "
        f"data set as described in {README}, or point ${env} at the folder holding it."
    )


@dataclass(frozen=True)
class SplitFiles:
    """Where one split lives. ``root_env`` is the *name* of the environment variable whose value
    is the root the folders are relative to (``DATASETS_ENV`` or ``SHARED_DATA_ENV``), or "" for
    folders given as full paths (spec files). Images and labels are paired by file stem; an
    ``image_ext`` of "" accepts any of ``IMAGE_SUFFIXES``. ``defined_in`` is named by errors;
    ``spec_file`` is the data-set spec file of the split ("" for the built-in sets)."""

    root_env: str
    image_dir: str
    label_dir: str
    image_ext: str = ".jpg"
    label_ext: str = ".png"
    defined_in: str = README
    spec_file: str = ""


def _image_finder(image_dir: Path, image_ext: str) -> Callable[[str], Path]:
    """stem -> image file: ``<stem><image_ext>``, or with ``image_ext`` "" the one image of that stem."""
    if image_ext:
        return lambda stem: image_dir / f"{stem}{image_ext}"
    by_stem: dict[str, Path] = {}
    for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if path.stem in by_stem:
                raise ValueError(
                    f"two images of stem {path.stem!r}: {by_stem[path.stem]} and {path}; keep one"
                )
            by_stem[path.stem] = path
    return lambda stem: by_stem.get(stem, image_dir / f"{stem}.*")


def _folders(split: SplitFiles) -> tuple[Path, Path]:
    """(image folder, label folder) of ``split``; an error naming a missing one."""
    root = data_root(split.root_env)
    image_dir, label_dir = root / split.image_dir, root / split.label_dir
    for folder, what in ((label_dir, "label folder"), (image_dir, "image folder")):
        if not folder.is_dir():
            raise missing_data_error(folder, split.root_env, what, split.defined_in)
    return image_dir, label_dir


def images_without_labels(split: SplitFiles) -> list[Path]:
    """The images of ``split``'s image folder that have no label file: they are not in the split.
    (For the built-in sets whose image folder serves several splits, e.g. VOC's JPEGImages, these
    are mostly the other splits' images.)"""
    image_dir, label_dir = _folders(split)
    labelled = {path.stem for path in label_dir.glob(f"*{split.label_ext}")}
    suffixes = (split.image_ext.lower(),) if split.image_ext else IMAGE_SUFFIXES
    return sorted(
        path
        for path in image_dir.iterdir()
        if path.suffix.lower() in suffixes and path.stem not in labelled
    )


@functools.cache
def _warn_unlabelled(name: str, split: SplitFiles, count: int) -> None:
    """Once per split and count: a spec-file split leaves out ``count`` images without labels."""
    if count:
        image_dir, label_dir = _folders(split)
        logger.warning(
            f"data set '{name}' ({split.defined_in}): {count} images in {image_dir} have no label "
            f"file in {label_dir} and are left out of the split; `python tools/check_dataset.py "
            f"--spec-file {split.spec_file}` lists them"
        )


def list_sem_seg_files(split: SplitFiles, name: str = "") -> list[dict]:
    """Detectron2 dicts {file_name, sem_seg_file_name, height, width, image_id} of one split.

    ``image_id`` is the file stem; height/width come from the label file's header. For a
    spec-file split, images without a label file are counted in a warning (once).
    """
    image_dir, label_dir = _folders(split)
    label_files = sorted(label_dir.glob(f"*{split.label_ext}"))
    if not label_files:
        raise missing_data_error(
            label_dir / f"*{split.label_ext}", split.root_env, "label files", split.defined_in
        )
    image_of = _image_finder(image_dir, split.image_ext)
    dicts = []
    for label_file in label_files:
        image_file = image_of(label_file.stem)
        if not image_file.is_file():
            raise FileNotFoundError(
                f"label {label_file} has no image {image_file}; see {split.defined_in} for the layout"
            )
        with Image.open(label_file) as label:
            width, height = label.size
        dicts.append(
            {
                "file_name": str(image_file),
                "sem_seg_file_name": str(label_file),
                "height": height,
                "width": width,
                "image_id": label_file.stem,
            }
        )
    if split.spec_file:
        _warn_unlabelled(name, split, len(images_without_labels(split)))
    return dicts


class LazyClassMetadata(Metadata):
    """Metadata whose class fields (``stuff_classes``, ``raw_class_names``, ``unseen_classes``)
    come from ``_class_loader()`` on first access, e.g. from a prepared data set's names file."""

    _LAZY_KEYS = ("stuff_classes", "raw_class_names", "unseen_classes")

    def __getattr__(self, key: str) -> Any:
        loader = self.__dict__.get("_class_loader")
        if key in self._LAZY_KEYS and loader is not None:
            self.__dict__.update(loader())
            del self.__dict__["_class_loader"]
            return self.__dict__[key]
        return super().__getattr__(key)


def register_sem_seg(
    name: str,
    split: SplitFiles,
    classes: dict | Callable[[], dict],
    *,
    label_offset: int = 0,
    raw_ignore_ids: tuple[int, ...] = (),
    ignore_label: int = 255,
) -> None:
    """Register split ``name`` with its metadata.

    ``classes``: {"stuff_classes", "raw_class_names", "unseen_classes"}, or a function returning
    it on first access. See :mod:`zsseg_d2.data.sem_seg_io` for the label fields.
    """
    DatasetCatalog.register(name, functools.partial(list_sem_seg_files, split, name))
    _SPLITS[name] = split
    if callable(classes):
        MetadataCatalog[name] = LazyClassMetadata(name=name, _class_loader=classes)
    else:
        MetadataCatalog.get(name).set(**classes)
    MetadataCatalog.get(name).set(
        ignore_label=ignore_label,
        evaluator_type="gzs3",
        label_offset=label_offset,
        raw_ignore_ids=list(raw_ignore_ids),
        data_root_env=split.root_env,
        spec_file=split.spec_file,
    )


def split_files(name: str) -> SplitFiles | None:
    """Where the split ``name`` registered by :func:`register_sem_seg` lives (None for others)."""
    return _SPLITS.get(name)


def check_dataset_command(name: str) -> str:
    """The ``tools/check_dataset.py`` command that checks data set ``name`` from a fresh process:
    by its spec file for a spec-file set (registered only where the spec file is read)."""
    spec_file = MetadataCatalog.get(name).get("spec_file", "")
    if spec_file:
        return f"python tools/check_dataset.py --spec-file {spec_file}"
    return f"python tools/check_dataset.py --dataset {name}"
