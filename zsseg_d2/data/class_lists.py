"""Class-name lists shipped as package data (``zsseg_d2/data/class_names/*.json``).

Each list keeps a data set's own class names (``names``, as in its files and papers) apart from
the names the text prompts read (``prompts``, e.g. "potted plant" for VOC's "pottedplant"), and,
where a label file stores a fixed raw value per class, that value (``raw_ids``).
"""

from __future__ import annotations

import functools
import json
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
    """Class names written one per line (blank lines skipped), e.g. by ``datasets/prepare_*.py``."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
