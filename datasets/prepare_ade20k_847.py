"""ADE20K-Full (847 classes, val) -> zsseg_d2 layout.

Reads the official ADE20K release (ADE20K_2021_17_01.zip) under <root>:
  <root>/ADE20K_2021_17_01/index_ade20k.pkl  (filename, folder, objectnames, objectPresence)
  <root>/<folder>/<name>.jpg and <name>_seg.png  (class = R // 10 * 256 + G; 0 = unlabeled,
                                                  k = objectnames[k - 1])
and writes
  <root>/ade20k_full/images/val/*.jpg        the validation images (hard links, else copies)
  <root>/ade20k_full/labels/val/*.png        16-bit, ids 0..846, 65535 ignore
  <root>/ade20k_full/class_names_847.txt     the names (first synonym), read by the data set

The 847 classes: with --class-names, the listed objectnames entries (one per line, exactly as in
the index; e.g. the list published with MaskFormer); without it, every class present in at least
one training and one validation image, in index order (the selection rule of the 847-class
benchmark; check the count the script prints against 847).
Usage: python datasets/prepare_ade20k_847.py [--root $DETECTRON2_DATASETS] [--class-names FILE]
"""
from __future__ import annotations

import functools
import os
import pickle
import shutil
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from zsseg_d2.data.class_lists import read_names_file
from zsseg_d2.data.prepare_utils import apply_lut, build_lut, prepare_parser, run_all, write_label_png

INDEX = "ADE20K_2021_17_01/index_ade20k.pkl"


def load_index(root: Path) -> dict:
    path = root / INDEX
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: unzip ADE20K_2021_17_01.zip into {root} (datasets/README.md)")
    with open(path, "rb") as f:
        return pickle.load(f)


def select_classes(index: dict, names_file: Optional[Path]) -> list[int]:
    """Indices into ``objectnames`` of the benchmark classes."""
    names = list(index["objectnames"])
    if names_file is not None:
        wanted = read_names_file(names_file)
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"{names_file}: {len(missing)} names not in objectnames, e.g. {missing[:3]}")
        return [names.index(n) for n in wanted]
    presence = np.asarray(index["objectPresence"]) > 0
    folders = list(index["folder"])
    train = np.array(["/training/" in f for f in folders])
    val = np.array(["/validation/" in f for f in folders])
    return np.flatnonzero(presence[:, train].any(1) & presence[:, val].any(1)).tolist()


def read_ade_classes(seg_file: Path) -> np.ndarray:
    """Class map of an ADE20K-Full ``*_seg.png`` (R // 10 * 256 + G)."""
    with Image.open(seg_file) as img:
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
    return rgb[..., 0] // 10 * 256 + rgb[..., 1]


def convert(item: tuple[str, str], root: Path, out: Path, lut: np.ndarray) -> None:
    folder, filename = item
    image = root / folder / filename
    seg_file = image.with_name(image.stem + "_seg.png")
    label = apply_lut(read_ade_classes(seg_file), lut, 65535, str(seg_file))
    write_label_png(out / "labels/val" / f"{image.stem}.png", label, 65535)
    target = out / "images/val" / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        try:
            os.link(image, target)
        except OSError:
            shutil.copyfile(image, target)


def main(argv: Optional[list[str]] = None) -> None:
    parser = prepare_parser(__doc__)
    parser.add_argument("--class-names", type=Path, default=None)
    args = parser.parse_args(argv)
    index = load_index(args.root)
    classes = select_classes(index, args.class_names)
    print(f"{len(classes)} classes selected")
    out = args.root / "ade20k_full"
    out.mkdir(parents=True, exist_ok=True)
    names = [index["objectnames"][i].split(",")[0].strip() for i in classes]
    (out / "class_names_847.txt").write_text("".join(f"{n}\n" for n in names))
    others = [i + 1 for i in range(len(index["objectnames"])) if i not in set(classes)]
    lut = build_lut([i + 1 for i in classes], ignore_raw_ids=[0] + others)
    items = [(fo, fi) for fo, fi in zip(index["folder"], index["filename"]) if "/validation/" in fo]
    run_all(functools.partial(convert, root=args.root, out=out, lut=lut), items, args.workers)


if __name__ == "__main__":
    main()
