"""Test helpers shared by several test modules (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

from zsseg_d2.modeling.segmentor import ClassSplit


class TableSource:
    """A semantic source over a fixed table of class vectors (what an embedding file gives)."""

    def __init__(self, names: Sequence[str], vectors: torch.Tensor):
        self.table = dict(zip(names, vectors.float()))
        self.dim = vectors.shape[1]

    def __call__(self, class_names: Sequence[str]) -> torch.Tensor:
        return torch.stack([self.table[name] for name in class_names])

    def settings_record(self) -> dict[str, dict[str, str]]:
        digest = hashlib.sha256(
            torch.stack(list(self.table.values())).numpy().tobytes()
        ).hexdigest()
        return {"MODEL.SEMANTIC.SOURCE": {"value": "table", "identity": digest}}


def split_of(classes: Sequence[str], unseen: Sequence[str]) -> ClassSplit:
    """The split of a training set whose classes are ``classes``."""
    return ClassSplit(
        vocabulary=tuple(classes),
        seen=tuple(c for c in classes if c not in unseen),
        unseen=tuple(c for c in classes if c in unseen),
        from_training_data=True,
    )
