"""Data sets described by spec files (YAML or JSON): your own data without editing the package.

A spec file describes one data set, its classes and split, and where each split's files lie::

    classes: [sky, road, tree, car]   # or  class_file: classes.txt  (one name per line, UTF-8)
    unseen_classes: [car]             # optional ([]: no split)
    ignore_ids: [0]                   # optional: raw label values read as ignore (besides 255)
    label_offset: 0                   # optional: class id = raw value - label_offset
    image_ext: .jpg                   # optional; default: any of .jpg .jpeg .png .bmp .tif .tiff .webp
    label_ext: .png                   # optional
    splits:
      mydata_train: {images: train/images, labels: train/labels}
      mydata_val: {images: val/images, labels: val/labels}

Relative folders are relative to the spec file. Images and labels pair by file stem. Spec files
are read by :func:`zsseg_d2.engine.load_config` from ``DATASETS.SPEC_FILES`` and on import of
:mod:`zsseg_d2.data` from ``$ZSSEG_DATASET_SPECS`` (paths joined by ``os.pathsep``), so every
process of a multi-process run registers them (spawned workers import the package and load the
config themselves). See datasets/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from detectron2.data import DatasetCatalog

from .class_lists import read_names_file
from .registration import SplitFiles, register_sem_seg

SPECS_ENV = "ZSSEG_DATASET_SPECS"
_KEYS = {
    "classes",
    "class_file",
    "unseen_classes",
    "ignore_ids",
    "label_offset",
    "image_ext",
    "label_ext",
    "splits",
}
_SPLIT_KEYS = {"images", "labels"}
_WIDE_LABELS = 255  # more classes than this need 16-bit label files (ignore 65535)
_registered: dict[str, Path] = {}  # split name -> the spec file that registered it


def _spec_error(path: Path, problem: str) -> ValueError:
    return ValueError(
        f"data-set spec file {path}: {problem} (format: datasets/README.md, 'Your own data')"
    )


def read_spec(path: str | os.PathLike) -> dict:
    """The spec of ``path``, checked: known keys, classes, unseen names, splits."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(
            f"data-set spec file {path} not found (DATASETS.SPEC_FILES or ${SPECS_ENV})"
        )
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise _spec_error(path, f"not valid UTF-8 YAML/JSON: {error}") from error
    if not isinstance(spec, dict):
        raise _spec_error(path, "expected a mapping of keys")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise _spec_error(path, f"unknown keys {unknown}; known keys: {sorted(_KEYS)}")
    spec["classes"] = _class_names(path, spec)
    unseen = [str(name) for name in spec.get("unseen_classes") or []]
    missing = [name for name in unseen if name not in spec["classes"]]
    if missing:
        raise _spec_error(path, f"unseen_classes {missing} are not among its classes")
    spec["unseen_classes"] = unseen
    splits = spec.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise _spec_error(path, "needs 'splits': {name: {images: folder, labels: folder}, ...}")
    for name, split in splits.items():
        if not isinstance(split, dict) or set(split) != _SPLIT_KEYS:
            raise _spec_error(
                path, f"split {name!r} needs exactly the keys {sorted(_SPLIT_KEYS)}, got {split!r}"
            )
    return spec


def _class_names(path: Path, spec: dict) -> list[str]:
    if ("classes" in spec) == ("class_file" in spec):
        raise _spec_error(
            path, "give the class names either as 'classes' (a list) or as 'class_file', not both"
        )
    if "class_file" in spec:
        class_file = path.parent / spec["class_file"]
        if not class_file.is_file():
            raise _spec_error(path, f"class_file {class_file} not found")
        try:
            names = read_names_file(class_file)
        except UnicodeDecodeError as error:
            raise _spec_error(
                path, f"class_file {class_file} is not UTF-8 text: {error}"
            ) from error
    else:
        names = [str(name).strip() for name in spec["classes"] or []]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if not names or not all(names) or duplicates:
        raise _spec_error(
            path, f"class names must be non-empty and unique (duplicates: {duplicates})"
        )
    return names


def register_spec_file(path: str | os.PathLike) -> list[str]:
    """Register every split of the spec file ``path``; return their names. Registering the same
    file again does nothing; a split name taken by another data set is an error."""
    path = Path(path).resolve()
    spec = read_spec(path)
    classes = spec["classes"]
    fields = {
        "stuff_classes": classes,
        "raw_class_names": classes,
        "unseen_classes": spec["unseen_classes"],
    }
    for name, split in spec["splits"].items():
        if _registered.get(name) == path:
            continue
        if name in DatasetCatalog.list():
            where = _registered.get(name, "zsseg_d2 or your code")
            raise _spec_error(
                path, f"split name {name!r} is already registered (by {where}); rename it"
            )
        files = SplitFiles(
            "",
            str(path.parent / split["images"]),
            str(path.parent / split["labels"]),
            image_ext=spec.get("image_ext", ""),
            label_ext=spec.get("label_ext", ".png"),
            defined_in=f"data-set spec file {path}",
        )
        register_sem_seg(
            name,
            files,
            fields,
            label_offset=int(spec.get("label_offset", 0)),
            raw_ignore_ids=tuple(int(v) for v in spec.get("ignore_ids") or ()),
            ignore_label=65535 if len(classes) > _WIDE_LABELS else 255,
        )
        _registered[name] = path
    return list(spec["splits"])


def register_spec_files(paths: Iterable[str | os.PathLike]) -> None:
    for path in paths:
        register_spec_file(path)


def register_specs_from_env() -> None:
    """Register the spec files named by ``$ZSSEG_DATASET_SPECS`` (``os.pathsep``-separated)."""
    register_spec_files(p for p in os.environ.get(SPECS_ENV, "").split(os.pathsep) if p)
