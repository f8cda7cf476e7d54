"""The SZN thesis's VOC data (Doshi 2018, section 6.1.1) -> zsseg_d2 layout (21-way labels).

"we train on 8498 images from the SBD's train split. And, we test on a 735 image subset of PASCAL
VOC 2011's val split, which we get after ignoring intersections with SBD's train and val splits."

Reads  <root>/benchmark_RELEASE/dataset/{cls/*.mat, train.txt, val.txt}                  (SBD)
       <root>/VOCdevkit/VOC2011/{SegmentationClass/*.png, ImageSets/Segmentation/val.txt} (VOC 2011)
and writes, background 0, the 20 classes 1..20, void 255 (the images are those of
VOCdevkit/VOC2012/JPEGImages, which holds every VOC 2011 and SBD image):
  <root>/VOCdevkit/VOC2012/SegmentationClass21/sbd_train/*.png   SBD train, SBD's annotation
  <root>/VOCdevkit/VOC2012/SegmentationClass21/voc11_val/*.png   VOC 2011 val - SBD train - SBD val
The set difference of the official lists has 736 images (FCN's "seg11valid"); the thesis says 735.
Usage: python datasets/prepare_voc_szn.py [--root $DETECTRON2_DATASETS] [--workers 8]
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Optional

import numpy as np
import scipy.io

from zsseg_d2.data.prepare_utils import apply_lut, build_lut, prepare_parser, read_list, run_all, write_label_png
from zsseg_d2.data.sem_seg_io import read_label_png

logger = logging.getLogger(__name__)
VOC21_LUT = build_lut(raw_ids=range(0, 21), ignore_raw_ids=(255,), size=256)


def szn_split_ids(sbd_dir: Path, voc11_dir: Path) -> dict[str, list[str]]:
    """Image ids of section 6.1.1: SBD train, and VOC 2011 seg val without SBD train or val."""
    sbd_train = read_list(sbd_dir / "train.txt")
    sbd_all = set(sbd_train) | set(read_list(sbd_dir / "val.txt"))
    voc11_val = read_list(voc11_dir / "ImageSets/Segmentation/val.txt")
    return {"sbd_train": sorted(sbd_train), "voc11_val": sorted(set(voc11_val) - sbd_all)}


def convert(image_id: str, source_of, out_dir: Path) -> None:
    source = source_of(image_id)
    if source.suffix == ".mat":  # SBD: GTcls.Segmentation
        raw = np.asarray(scipy.io.loadmat(source)["GTcls"]["Segmentation"][0, 0]).astype(np.int64)
    else:
        raw = read_label_png(source)
    write_label_png(out_dir / f"{image_id}.png", apply_lut(raw, VOC21_LUT, 255, str(source)), 255)


def _sbd_label(image_id: str, sbd_dir: Path) -> Path:
    return sbd_dir / "cls" / f"{image_id}.mat"


def _voc11_label(image_id: str, voc11_dir: Path) -> Path:
    return voc11_dir / "SegmentationClass" / f"{image_id}.png"


def main(argv: Optional[list[str]] = None) -> dict[str, int]:
    args = prepare_parser(__doc__).parse_args(argv)
    sbd_dir, voc11_dir = args.root / "benchmark_RELEASE/dataset", args.root / "VOCdevkit/VOC2011"
    out_root = args.root / "VOCdevkit/VOC2012/SegmentationClass21"
    sources = {
        "sbd_train": functools.partial(_sbd_label, sbd_dir=sbd_dir),
        "voc11_val": functools.partial(_voc11_label, voc11_dir=voc11_dir),
    }
    counts = {}
    for split, ids in szn_split_ids(sbd_dir, voc11_dir).items():
        missing = [i for i in ids if not sources[split](i).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} {split} labels are missing, e.g. {sources[split](missing[0])}")
        fn = functools.partial(convert, source_of=sources[split], out_dir=out_root / split)
        counts[split] = run_all(fn, ids, args.workers)
        logger.info(f"{split}: {counts[split]} images")
    return counts


if __name__ == "__main__":
    main()
