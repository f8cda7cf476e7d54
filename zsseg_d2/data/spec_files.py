"""Data sets described by spec files (YAML or JSON): your own data without editing the package.

A spec file describes one data set, its classes and split, and where each split's files lie::

    classes: [sky, road, tree, car]   # or  class_file: classes.txt  (one name per line, UTF-8)
    unseen_classes: [car]             # optional ([]: no split)
    ignore_ids: [0]                   # optional: raw label values read as ignore (besides 255)
    label_offset: 0                   # optional: class id = raw value - label_offset
                                      # (values below it must be in ignore_ids)
    image_ext: .jpg                   # optional; default: any of .jpg .jpeg .png .bmp .tif .tiff .webp
    label_ext: .png                   # optional
    splits:
      mydata_train: {images: train/images, labels: train/labels}
      mydata_val: {images: val/images, labels: val/labels}

Each value must have the type shown (a single name where a list is expected is an error naming
the key). Class names must differ beyond case and spaces. Relative folders are relative to the
spec file. Images and labels pair by file stem; images without a label file are left out of the
split and counted (a warning when the split is listed, and by ``tools/check_dataset.py``). Spec files
are read by :func:`zsseg_d2.engine.load_config` from ``DATASETS.SPEC_FILES`` and on import of
:mod:`zsseg_d2.data` from ``$ZSSEG_DATASET_SPECS`` (paths joined by ``os.pathsep``), so every
process of a multi-process run registers them (spawned workers import the package and load the
config themselves). See datasets/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from detectron2.data import DatasetCatalog

from .class_lists import duplicate_names, read_names_file
from .registration import SplitFiles, register_sem_seg

SPECS_ENV = "ZSSEG_DATASET_SPECS"
# key -> the type its value must have (as errors and datasets/README.md write it)
_KEY_TYPES = {
    "classes": "a list of names",
    "class_file": "a path (string)",
    "unseen_classes": "a list of names",
    "ignore_ids": "a list of integers 0..65535",
    "label_offset": "an integer >= 0",
    "image_ext": "a file suffix such as '.jpg'",
    "label_ext": "a file suffix such as '.png'",
    "splits": "a mapping {split name: {images: folder, labels: folder}}",
}
_SPLIT_KEYS = {"images", "labels"}
_MAX_LABEL = 65535
_WIDE_LABELS = 255  # more classes than this need 16-bit label files (ignore 65535)
_registered: dict[str, Path] = {}  # split name -> the spec file that registered it


def _spec_error(path: Path, problem: str) -> ValueError:
    return ValueError(
        f"data-set spec file {path}: {problem} (format: datasets/README.md, 'Your own data')"
    )


def _type_error(path: Path, key: str, value: Any) -> ValueError:
    return _spec_error(
        path, f"'{key}' must be {_KEY_TYPES[key]}, got {value!r} ({type(value).__name__})"
    )


def _names(path: Path, spec: dict, key: str) -> list[str]:
    """The list of names under ``key``; a single string, a number or a bool is an error."""
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(path, key, value)
    not_names = [name for name in value if not isinstance(name, str)]
    if not_names:
        raise _spec_error(
            path,
            f"'{key}' must be {_KEY_TYPES[key]}; {not_names} are not strings (YAML reads yes, no, "
            f'on, off, numbers and null as such: quote them, e.g. "no")',
        )
    return [name.strip() for name in value]


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_label_keys(path: Path, spec: dict) -> None:
    ignore_ids = spec.get("ignore_ids", [])
    if not isinstance(ignore_ids, list) or not all(
        _integer(v) and 0 <= v <= _MAX_LABEL for v in ignore_ids
    ):
        raise _type_error(path, "ignore_ids", ignore_ids)
    offset = spec.get("label_offset", 0)
    if not _integer(offset) or offset < 0:
        raise _type_error(path, "label_offset", offset)
    for key in ("image_ext", "label_ext"):
        suffix = spec.get(key, ".png")
        if not isinstance(suffix, str) or not suffix.startswith(".") or len(suffix) < 2:
            raise _type_error(path, key, suffix)


def _check_splits(path: Path, splits: Any) -> None:
    if splits is None:
        raise _spec_error(path, f"needs 'splits': {_KEY_TYPES['splits']}")
    if not isinstance(splits, dict) or not splits:
        raise _type_error(path, "splits", splits)
    for name, split in splits.items():
        if not isinstance(name, str):
            raise _spec_error(path, f"split name {name!r} must be a string")
        if not isinstance(split, dict) or set(split) != _SPLIT_KEYS:
            raise _spec_error(
                path, f"split {name!r} needs exactly the keys {sorted(_SPLIT_KEYS)}, got {split!r}"
            )
        folders = {key: value for key, value in split.items() if not isinstance(value, str)}
        if folders:
            raise _spec_error(path, f"split {name!r}: folders must be strings, got {folders!r}")


def read_spec(path: str | os.PathLike) -> dict:
    """The spec of ``path``, checked: known keys and the type of each value, class names (unique
    up to case and spaces), unseen names among them, label keys, splits."""
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
    unknown = sorted(set(spec) - set(_KEY_TYPES))
    if unknown:
        raise _spec_error(path, f"unknown keys {unknown}; known keys: {sorted(_KEY_TYPES)}")
    spec["classes"] = _class_names(path, spec)
    unseen = _names(path, spec, "unseen_classes")
    missing = [name for name in unseen if name not in spec["classes"]]
    if missing:
        raise _spec_error(path, f"unseen_classes {missing} are not among its classes")
    spec["unseen_classes"] = unseen
    _check_label_keys(path, spec)
    _check_splits(path, spec.get("splits"))
    return spec


def _class_names(path: Path, spec: dict) -> list[str]:
    given = [key for key in ("classes", "class_file") if key in spec]
    if len(given) != 1:
        problem = "both" if given else "neither"
        raise _spec_error(
            path,
            f"needs the class names either as 'classes' (a list) or as 'class_file' (a file "
            f"with one name per line), not {problem}",
        )
    if "class_file" in spec:
        if not isinstance(spec["class_file"], str):
            raise _type_error(path, "class_file", spec["class_file"])
        class_file = path.parent / spec["class_file"]
        if not class_file.is_file():
            raise _spec_error(path, f"class_file {class_file} not found")
        try:
            names = read_names_file(class_file)
        except UnicodeDecodeError as error:
            raise _spec_error(
                path, f"class_file {class_file} is not UTF-8 text: {error}"
            ) from error
        except ValueError as error:
            raise _spec_error(path, str(error)) from error
    else:
        names = _names(path, spec, "classes")
    duplicates = duplicate_names(names)
    if not names or not all(names) or duplicates:
        raise _spec_error(
            path,
            f"class names must be non-empty and unique up to case and spaces (duplicates: "
            f"{duplicates})",
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
            spec_file=str(path),
        )
        register_sem_seg(
            name,
            files,
            fields,
            label_offset=spec.get("label_offset", 0),
            raw_ignore_ids=tuple(spec.get("ignore_ids", ())),
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
