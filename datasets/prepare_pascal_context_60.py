"""Pascal Context 60 (59 classes + background, ZS3Net's setting) -> zsseg_d2 layout (train and val).

Reads  <root>/pascal_context/trainval/*.mat   (official trainval.tar.gz: LabelMap, 0 = unlabeled)
       <root>/pascal_context/labels.txt       (official, lines "<id>: <name>", ids 1..459)
       <root>/VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt   (4998 train / 5105 val images)
and writes
  <root>/pascal_context/labels_60/{train,val}/*.png   0 = background (every pixel outside the 59
                                                      classes, unlabeled included), 1..59 = the 59
                                                      classes in zsseg_d2's pascal_context_59 order
read by the registered sets ``pascal_context_60_zs3_k{K}_{train,val}``.
Usage: python datasets/prepare_pascal_context_60.py [--root $DETECTRON2_DATASETS] [--workers 8]
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import scipy.io

from zsseg_d2.data.prepare_utils import prepare_parser, read_list, run_all, write_label_png

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the 59-class helpers of the sibling script
from prepare_pascal_context import pc59_raw_ids, read_labels_txt  # noqa: E402


def background_lut(raw_59: list[int], size: int) -> np.ndarray:
    """Official id -> 60-way id: the 59 classes to 1..59, every other id (and 0) to background 0."""
    lut = np.zeros(size, dtype=np.int64)
    lut[raw_59] = np.arange(1, len(raw_59) + 1)
    return lut


def convert(image_id: str, mat_dir: Path, out_dir: Path, lut: np.ndarray) -> None:
    mat_file = mat_dir / f"{image_id}.mat"
    raw = np.asarray(scipy.io.loadmat(mat_file)["LabelMap"]).astype(np.int64)
    if raw.min() < 0 or raw.max() >= len(lut):
        raise ValueError(f"{mat_file}: label ids {raw.min()}..{raw.max()} outside labels.txt's 0..{len(lut) - 1}")
    write_label_png(out_dir / f"{image_id}.png", lut[raw], 255)


def main(argv: Optional[list[str]] = None) -> None:
    args = prepare_parser(__doc__).parse_args(argv)
    pc = args.root / "pascal_context"
    labels = read_labels_txt(pc / "labels.txt")
    lut = background_lut(pc59_raw_ids(labels), max(labels) + 1)
    for split in ("train", "val"):
        out_dir = pc / "labels_60" / split
        out_dir.mkdir(parents=True, exist_ok=True)
        ids = read_list(args.root / f"VOCdevkit/VOC2010/ImageSets/Main/{split}.txt")
        run_all(functools.partial(convert, mat_dir=pc / "trainval", out_dir=out_dir, lut=lut), ids, args.workers)


if __name__ == "__main__":
    main()
