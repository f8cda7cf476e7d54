"""Class-name lists shipped as package data (``zsseg_d2/data/class_names/*.json``).

Each list keeps a data set's own class names (``names``, as in its files and papers) apart from
the names the text prompts read (``prompts``, e.g. "potted plant" for VOC's "pottedplant"), and,
where a label file stores a fixed raw value per class, that value (``raw_ids``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CLASS_NAMES_DIR = Path(__file__).resolve().parent / "class_names"


@dataclass(frozen=True)
class ClassList:
    names: tuple[str, ...]
    prompts: tuple[str, ...]
    raw_ids: tuple[int, ...] | None  # raw label value of each class, None when not fixed


@functools.cache
def load_class_list(key: str) -> ClassList:
    """The class list ``class_names/<key>.json`` (e.g. "coco_stuff_171", "voc_20")."""
    path = CLASS_NAMES_DIR / f"{key}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CLASS_NAMES_DIR.glob("*.json"))
        raise FileNotFoundError(f"no class list {path}; known lists: {known}")
    classes = json.loads(path.read_text())["classes"]
    raw_ids = tuple(c["raw_id"] for c in classes) if all("raw_id" in c for c in classes) else None
    return ClassList(
        names=tuple(c["name"] for c in classes),
        prompts=tuple(c["prompt"] for c in classes),
        raw_ids=raw_ids,
    )


def read_names_file(path: Path) -> list[str]:
    """Class names written one per line (UTF-8), e.g. by ``datasets/prepare_*.py``: the name on
    line k + 1 is class k. Blank lines at the end are ignored; a blank line before the last name
    is an error naming the file and the line (it would shift every later id by one)."""
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    blank = [number for number, line in enumerate(lines, 1) if not line]
    if blank:
        raise ValueError(
            f"class-name file {path} has blank lines {blank[:10]} before its last name: the name on "
            f"line k + 1 is class k, so a blank line would shift the ids of the names after it. "
            f"Remove the blank lines, or write the name of the class that id stands for"
        )
    return lines


def name_key(name: str) -> str:
    """A class name up to case and spaces ("Car", " car " and "c ar" give "car"): names equal
    under this key are one class to a reader, and to CLIP's lower-casing tokenizer."""
    return "".join(name.casefold().split())


def duplicate_names(names: Sequence[str]) -> list[str]:
    """The names that equal another name of ``names`` up to case and spaces, each spelling once."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(name_key(name), []).append(name)
    return sorted({n for group in groups.values() if len(group) > 1 for n in group})
