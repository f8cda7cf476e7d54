"""Seen / unseen class ids from a data set's metadata.

The split is defined once, by the metadata field ``unseen_classes`` (names taken from
``stuff_classes``, [] when the data set has no split); the mapper, the model and the evaluator all
read it through these helpers.
"""

from __future__ import annotations

from detectron2.data import Metadata


def unseen_class_ids(metadata: Metadata) -> list[int]:
    """Indices into ``metadata.stuff_classes`` of the unseen classes, in increasing order."""
    classes = list(metadata.stuff_classes)
    unknown = [name for name in metadata.unseen_classes if name not in classes]
    if unknown:
        raise ValueError(
            f"unseen classes {unknown} of data set '{metadata.name}' are not in its stuff_classes"
        )
    unseen = set(metadata.unseen_classes)
    return [i for i, name in enumerate(classes) if name in unseen]


def seen_class_ids(metadata: Metadata) -> list[int]:
    """Indices into ``metadata.stuff_classes`` of the seen classes (all of them without a split)."""
    unseen = set(unseen_class_ids(metadata))
    return [i for i in range(len(metadata.stuff_classes)) if i not in unseen]
