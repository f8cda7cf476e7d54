"""Pascal Context 33 (the 33-class labels SZN uses) -> zsseg_d2 layout (train / val folders).

Reads  <root>/pascal_context/33_context_labels/*.png      (official 33_context_labels.tar.gz of the
                                                            Pascal Context page: 0 = unlabeled, 1..33)
       <root>/VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt
and writes
  <root>/pascal_context/labels_33/{train,val}/*.png    the same files, split by the VOC 2010 lists
The raw values are kept; the registered sets ``pascal_context_33_{train,val}`` read 0 as ignore
and k as class k - 1 (zsseg_d2/data/class_names/pascal_context_33.json).
Usage: python datasets/prepare_pascal_context_33.py [--root $DETECTRON2_DATASETS]
"""
from __future__ import annotations

import shutil
from typing import Optional

from zsseg_d2.data.prepare_utils import prepare_parser, read_list


def main(argv: Optional[list[str]] = None) -> None:
    args = prepare_parser(__doc__, workers=False).parse_args(argv)
    source = args.root / "pascal_context/33_context_labels"
    if not source.is_dir():
        raise FileNotFoundError(f"{source} not found: unpack the official 33_context_labels.tar.gz there")
    for split in ("train", "val"):
        out = args.root / "pascal_context/labels_33" / split
        out.mkdir(parents=True, exist_ok=True)
        ids = read_list(args.root / f"VOCdevkit/VOC2010/ImageSets/Main/{split}.txt")
        missing = [i for i in ids if not (source / f"{i}.png").is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} {split} images have no label in {source}, e.g. {missing[:3]}")
        for image_id in ids:
            shutil.copyfile(source / f"{image_id}.png", out / f"{image_id}.png")


if __name__ == "__main__":
    main()
