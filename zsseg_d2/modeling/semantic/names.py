"""Class-name lists (vocabularies) as every semantic source and tool accepts them."""

from __future__ import annotations

from collections.abc import Sequence

from ...data.class_lists import duplicate_names


def validate_class_names(class_names: Sequence[str], source: str) -> list[str]:
    """Return the names stripped; raise naming ``source`` if empty, or if two names are the same
    up to case and spaces ("car" and "Car": CLIP's tokenizer lower-cases, so one could never win)."""
    names = [name.strip() for name in class_names]
    if not names or not all(names):
        raise ValueError(f"empty vocabulary or empty class name in {source}: {list(class_names)!r}")
    duplicates = duplicate_names(names)
    if duplicates:
        raise ValueError(
            f"duplicate class names {duplicates} in {source} (the same name up to case and "
            f"spaces); each class must appear once"
        )
    return names
