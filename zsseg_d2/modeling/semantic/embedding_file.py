"""Precomputed per-class vectors read from files: CLIP text embeddings computed elsewhere, or the
word vectors (word2vec, fastText, GloVe) of the older zero-shot methods.

A file is either an ``.npz`` with arrays ``names`` [C] and ``vectors`` [C, D], or an ``.npy``
[C, D] whose row names are in a text file beside it, one name per line: ``<name>.names.txt`` for
``<name>.<anything>.npy`` (e.g. ``voc_21.word2vec.npy`` -> ``voc_21.names.txt``).

Several files are concatenated per class (SIGN's word2vec ⊕ fastText). Names match exactly, then
case-, space-, ``-``- and ``_``-insensitively ("potted plant" = "pottedplant"), then through
``aliases`` (a data set's prompt name -> its raw name, e.g. "building" -> "building-other").
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ..clip.loader import file_sha256
from .names import validate_class_names


def _normalised(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.casefold())


def names_file_for(path: Path) -> Path:
    """The names file of an ``.npy``: ``<stem>.names.txt``, shortening the stem at dots until one exists."""
    parts = path.name.split(".")[:-1]
    for end in range(len(parts), 0, -1):
        candidate = path.with_name(".".join(parts[:end]) + ".names.txt")
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no names file for {path}: put one class name per line in {path.with_name(parts[0] + '.names.txt')} "
        f"(row i of the .npy is the i-th name), or store names and vectors together in an .npz"
    )


REPO_ROOT = Path(__file__).resolve().parents[3]


def resolve_embedding_path(path: str | Path) -> Path:
    """``path`` as given when it exists, else relative to the repository root (so that the
    shipped ``zsseg_d2/data/embeddings/...`` files are found from any working directory)."""
    path = Path(path)
    if path.is_file() or path.is_absolute():
        return path
    from_root = REPO_ROOT / path
    return from_root if from_root.is_file() else path


def read_embedding_file(path: str | Path) -> tuple[list[str], np.ndarray]:
    """``(names, vectors [C, D] float32)`` of one file; errors name the file and what is wrong."""
    path = resolve_embedding_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"embedding file {path} does not exist (MODEL.SEMANTIC.FILES)")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            missing = {"names", "vectors"} - set(data.files)
            if missing:
                raise ValueError(
                    f"{path} lacks the arrays {sorted(missing)}; an .npz needs 'names' and 'vectors'"
                )
            names, vectors = [str(n) for n in data["names"]], data["vectors"]
    elif path.suffix == ".npy":
        vectors = np.load(path, allow_pickle=False)
        names_path = names_file_for(path)
        names = [
            line.strip()
            for line in names_path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if len(names) != len(vectors):
            raise ValueError(
                f"{names_path} has {len(names)} names but {path} has {len(vectors)} rows"
            )
    else:
        raise ValueError(f"embedding file {path}: expected .npz or .npy, got {path.suffix!r}")
    if vectors.ndim != 2 or not np.isfinite(vectors).all():
        raise ValueError(
            f"{path}: expected finite vectors of shape [classes, dim], got shape {vectors.shape}"
        )
    return names, vectors.astype(np.float32)


class EmbeddingFileSource:
    """Class vectors looked up by name in one or more files (concatenated per class)."""

    def __init__(
        self,
        files: Sequence[str | Path],
        *,
        normalize: bool = True,
        aliases: Mapping[str, str] | None = None,
    ):
        if not files:
            raise ValueError(
                "MODEL.SEMANTIC.SOURCE 'file' needs at least one file in MODEL.SEMANTIC.FILES"
            )
        self.configured = [str(f) for f in files]
        self.files = [resolve_embedding_path(f) for f in files]
        self.tables = [read_embedding_file(f) for f in self.files]
        self.normalize = normalize
        self.aliases = dict(aliases or {})

    @property
    def dim(self) -> int:
        return sum(vectors.shape[1] for _, vectors in self.tables)

    def settings_record(self) -> dict[str, dict[str, str]]:
        """The settings that determine the vectors, for checkpoints (files compared by content)."""
        return {
            "MODEL.SEMANTIC.SOURCE": {"value": "file", "identity": "file"},
            "MODEL.SEMANTIC.FILES": {
                "value": str(self.configured),
                "identity": " ".join(f"sha256:{file_sha256(f)}" for f in self.files),
            },
            "MODEL.SEMANTIC.NORMALIZE": {
                "value": str(self.normalize),
                "identity": str(self.normalize),
            },
        }

    def __call__(self, class_names: Sequence[str]) -> torch.Tensor:
        """``[C, D]`` float32 vectors of ``class_names``; a missing name is an error listing all."""
        names = validate_class_names(class_names, "the vocabulary")
        columns = [
            self._lookup(path, table_names, vectors, names)
            for path, (table_names, vectors) in zip(self.files, self.tables)
        ]
        embeddings = torch.from_numpy(np.concatenate(columns, axis=1))
        return torch.nn.functional.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def _lookup(
        self, path: Path, table_names: list[str], vectors: np.ndarray, names: list[str]
    ) -> np.ndarray:
        index: dict[str, int] = {}
        for i, name in enumerate(table_names):
            index.setdefault(name, i)
            index.setdefault(_normalised(name), i)
        rows, missing = [], []
        for name in names:
            alias = self.aliases.get(name, name)
            keys = (name, _normalised(name), alias, _normalised(alias))
            row = next((index[key] for key in keys if key in index), None)
            (missing.append(name) if row is None else rows.append(row))
        if missing:
            raise KeyError(
                f"{len(missing)} class names are not in {path}: {missing}. Add their vectors to the file "
                f"(or its names file), or rename the classes to the file's names"
            )
        return vectors[rows]
