"""COCO-Stuff-164k -> zsseg_d2 layout (171 contiguous classes, 255 = ignore).

Reads  <root>/coco/stuffthingmaps_trainval2017/{train2017,val2017}/*.png  (value = COCO id - 1,
255 = unlabeled) and writes
  <root>/coco/stuffthingmaps_zsseg/{train2017,val2017}/*.png       all 171 classes
  <root>/coco/stuffthingmaps_zsseg_seen/train2017/*.png            the 15 unseen set to 255
Usage: python datasets/prepare_coco_stuff.py [--root $DETECTRON2_DATASETS] [--workers 8]
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

from detectron2.data import MetadataCatalog

import zsseg_d2.data  # noqa: F401  (registers the data sets)
from zsseg_d2.data.class_lists import load_class_list
from zsseg_d2.data.prepare_utils import apply_lut, build_lut, prepare_parser, run_all, seen_only, write_label_png
from zsseg_d2.data.sem_seg_io import read_label_png

SPLITS = ("train2017", "val2017")


def convert(raw_file: Path, out_dir: Path, seen_dir: Optional[Path]) -> None:
    metadata = MetadataCatalog.get("coco_stuff_171_train")
    lut = build_lut(load_class_list("coco_stuff_171").raw_ids, ignore_raw_ids=(255,), size=256)
    label = apply_lut(read_label_png(raw_file), lut, 255, str(raw_file))
    write_label_png(out_dir / raw_file.name, label, 255)
    if seen_dir is not None:
        write_label_png(seen_dir / raw_file.name, seen_only(label, metadata), 255)


def main(argv: Optional[list[str]] = None) -> None:
    parser = prepare_parser(__doc__)
    args = parser.parse_args(argv)
    coco = args.root / "coco"
    for split in SPLITS:
        raw_dir = coco / "stuffthingmaps_trainval2017" / split
        if not raw_dir.is_dir():
            raise FileNotFoundError(f"{raw_dir} not found: unzip stuffthingmaps_trainval2017.zip there (datasets/README.md)")
        seen_dir = coco / "stuffthingmaps_zsseg_seen" / split if split == "train2017" else None
        fn = functools.partial(convert, out_dir=coco / "stuffthingmaps_zsseg" / split, seen_dir=seen_dir)
        run_all(fn, sorted(raw_dir.glob("*.png")), args.workers)


if __name__ == "__main__":
    main()
