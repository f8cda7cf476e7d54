"""Helpers of ``datasets/prepare_*.py``: raw ids -> contiguous label PNGs, seen-only copies."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterable, Sequence
from multiprocessing import Pool
from pathlib import Path
from typing import Callable

import numpy as np
from detectron2.data import Metadata
from PIL import Image

from .splits import unseen_class_ids

logger = logging.getLogger(__name__)


def build_lut(
    raw_ids: Sequence[int], ignore_raw_ids: Sequence[int], size: int = 65536
) -> np.ndarray:
    """Lookup raw value -> contiguous id (class k has raw value ``raw_ids[k]``); values in
    ``ignore_raw_ids`` -> -2 (ignore); every other value -> -1 (invalid)."""
    lut = np.full(size, -1, dtype=np.int64)
    lut[list(ignore_raw_ids)] = -2
    lut[list(raw_ids)] = np.arange(len(raw_ids))
    return lut


def apply_lut(raw: np.ndarray, lut: np.ndarray, ignore_label: int, source: str) -> np.ndarray:
    """Contiguous ids of ``raw`` (ignore -> ``ignore_label``); an invalid value raises an error
    naming ``source`` and the value."""
    if raw.size and (raw.min() < 0 or raw.max() >= len(lut)):
        raise ValueError(
            f"{source}: value {int(raw.min())}..{int(raw.max())} outside 0..{len(lut) - 1}"
        )
    out = lut[raw]
    if (out == -1).any():
        bad = np.unique(raw[out == -1])
        raise ValueError(
            f"{source}: values {bad.tolist()} are no class of the data set nor ignored"
        )
    return np.where(out == -2, ignore_label, out)


def write_label_png(path: Path, label: np.ndarray, ignore_label: int) -> None:
    """Save contiguous ids as an 8-bit PNG (ignore 255) or, for ignore 65535, a 16-bit PNG."""
    dtype = np.uint8 if ignore_label <= 255 else np.uint16
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(label.astype(dtype)).save(path)


def seen_only(label: np.ndarray, metadata: Metadata) -> np.ndarray:
    """A copy of ``label`` with the unseen classes' pixels set to ``ignore_label``."""
    out = label.copy()
    out[np.isin(label, unseen_class_ids(metadata))] = metadata.ignore_label
    return out


def read_list(path: Path) -> list[str]:
    """Image ids of a split list file (one per line)."""
    if not path.is_file():
        raise FileNotFoundError(f"split list {path} not found; see datasets/README.md")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def run_all(fn: Callable, items: Iterable, workers: int) -> int:
    """Apply ``fn`` to every item (in ``workers`` processes when > 1); the number done."""
    items = list(items)
    if workers > 1:
        with Pool(workers) as pool:
            for _ in pool.imap_unordered(fn, items, chunksize=16):
                pass
    else:
        for item in items:
            fn(item)
    logger.info(f"wrote {len(items)} label files")
    return len(items)


def default_root() -> Path:
    return Path(os.environ.get("DETECTRON2_DATASETS", "datasets"))


def prepare_parser(description: str, workers: bool = True) -> argparse.ArgumentParser:
    """The scripts' shared options: ``--root`` (default $DETECTRON2_DATASETS) and ``--workers``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=default_root())
    if workers:
        parser.add_argument("--workers", type=int, default=1)
    return parser
