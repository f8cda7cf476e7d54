"""Test helpers shared by several test modules (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from zsseg_d2.modeling.segmentor import ClassSplit

REPO = Path(__file__).resolve().parents[1]


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


def run_tool(*args: str, env: dict | None = None, timeout: int = 900, check: bool = True):
    """``python <args>`` from the repository root (a tool of ``tools/``), with the test's
    environment plus ``env``; returns the ``CompletedProcess`` (stdout and stderr as text).
    ``check``: a non-zero exit fails the test, showing the end of both streams."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    result = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
            f"\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result
