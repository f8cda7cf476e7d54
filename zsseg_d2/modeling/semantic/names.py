"""Class-name lists (vocabularies) as every semantic source and tool accepts them."""

from __future__ import annotations

from collections.abc import Sequence


def validate_class_names(class_names: Sequence[str], source: str) -> list[str]:
    """Return the names stripped; raise naming ``source`` if empty or duplicated."""
    names = [name.strip() for name in class_names]
    if not names or not all(names):
        raise ValueError(f"empty vocabulary or empty class name in {source}: {list(class_names)!r}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"duplicate class names {duplicates} in {source}; each class must appear once"
        )
    return names
