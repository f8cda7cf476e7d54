"""Pascal VOC 2012 + SBD -> zsseg_d2 layout (20 contiguous classes; background and void = 255).

Reads  <root>/VOCdevkit/VOC2012/{SegmentationClass/*.png, ImageSets/Segmentation/{train,val}.txt}
       <root>/benchmark_RELEASE/dataset/{cls/*.mat, train.txt, val.txt}   (SBD)
and writes
  <root>/VOCdevkit/VOC2012/SegmentationClassZS/train_aug/*.png   VOC train + SBD train/val - VOC val
  <root>/VOCdevkit/VOC2012/SegmentationClassZS/train/*.png       VOC train (1464, no SBD)
  <root>/VOCdevkit/VOC2012/SegmentationClassZS/val/*.png         VOC val (1449)
  <root>/VOCdevkit/VOC2012/SegmentationClassZS_seen/train_aug/*.png   the 5 unseen set to 255
  <root>/VOCdevkit/VOC2012/SegmentationClass21/{train_aug,val}/*.png  21-way: background 0, 1..20
VOC's own annotation is used where an image has both. Raw 0 (background) becomes 255 (ignored in
the GZS3 VOC setting), raw 1..20 become 0..19; the 21-way copy keeps the raw ids (background a class, void 255).
Usage: python datasets/prepare_voc_sbd.py [--root $DETECTRON2_DATASETS] [--workers 8]
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import numpy as np
import scipy.io
from detectron2.data import MetadataCatalog

import zsseg_d2.data  # noqa: F401  (registers the data sets)
from zsseg_d2.data.prepare_utils import (
    apply_lut,
    build_lut,
    prepare_parser,
    read_list,
    run_all,
    seen_only,
    write_label_png,
)
from zsseg_d2.data.sem_seg_io import read_label_png

VOC_LUT = build_lut(raw_ids=range(1, 21), ignore_raw_ids=(0, 255), size=256)
VOC21_LUT = build_lut(raw_ids=range(0, 21), ignore_raw_ids=(255,), size=256)


def read_sbd_mat(path: Path) -> np.ndarray:
    """The class map of an SBD ``cls/*.mat`` file (GTcls.Segmentation)."""
    return np.asarray(scipy.io.loadmat(path)["GTcls"]["Segmentation"][0, 0]).astype(np.int64)


def convert(image_id: str, voc_dir: Path, sbd_dir: Path, out_dir: Path, seen_dir: Optional[Path]) -> None:
    voc_file = voc_dir / "SegmentationClass" / f"{image_id}.png"
    source = voc_file if voc_file.is_file() else sbd_dir / "cls" / f"{image_id}.mat"
    raw = read_label_png(source) if source.suffix == ".png" else read_sbd_mat(source)
    label = apply_lut(raw, VOC_LUT, 255, str(source))
    write_label_png(out_dir / f"{image_id}.png", label, 255)
    voc21_file = out_dir.parents[1] / "SegmentationClass21" / out_dir.name / f"{image_id}.png"
    write_label_png(voc21_file, apply_lut(raw, VOC21_LUT, 255, str(source)), 255)
    if seen_dir is not None:
        write_label_png(seen_dir / f"{image_id}.png", seen_only(label, MetadataCatalog.get("voc_gzs3_train_aug")), 255)


def split_ids(voc_dir: Path, sbd_dir: Path) -> dict[str, list[str]]:
    voc_val = read_list(voc_dir / "ImageSets/Segmentation/val.txt")
    train = set(read_list(voc_dir / "ImageSets/Segmentation/train.txt"))
    train |= set(read_list(sbd_dir / "train.txt")) | set(read_list(sbd_dir / "val.txt"))
    voc_train = read_list(voc_dir / "ImageSets/Segmentation/train.txt")
    return {"train_aug": sorted(train - set(voc_val)), "train": voc_train, "val": voc_val}


def main(argv: Optional[list[str]] = None) -> None:
    parser = prepare_parser(__doc__)
    args = parser.parse_args(argv)
    voc_dir, sbd_dir = args.root / "VOCdevkit/VOC2012", args.root / "benchmark_RELEASE/dataset"
    for split, ids in split_ids(voc_dir, sbd_dir).items():
        seen_dir = voc_dir / "SegmentationClassZS_seen" / split if split == "train_aug" else None
        fn = functools.partial(
            convert, voc_dir=voc_dir, sbd_dir=sbd_dir, out_dir=voc_dir / "SegmentationClassZS" / split, seen_dir=seen_dir
        )
        run_all(fn, ids, args.workers)


if __name__ == "__main__":
    main()
