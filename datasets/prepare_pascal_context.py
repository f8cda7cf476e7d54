"""Pascal Context (459 and 59 classes, val) -> zsseg_d2 layout.

Reads  <root>/pascal_context/trainval/*.mat   (official trainval.tar.gz: LabelMap, 0 = unlabeled)
       <root>/pascal_context/labels.txt       (official, lines "<id>: <name>", ids 1..459)
       <root>/VOCdevkit/VOC2010/ImageSets/Main/val.txt   (the 5105 val images)
and writes
  <root>/pascal_context/labels_459/val/*.png    16-bit, ids 0..458 (labels.txt order), 65535 ignore
  <root>/pascal_context/labels_59/val/*.png     ids 0..58 (zsseg_d2's pascal_context_59 list, matched
                                                in labels.txt by name), all other classes 255
  <root>/pascal_context/class_names_459.txt     the 459 names, read by the registered data set
Usage: python datasets/prepare_pascal_context.py [--root $DETECTRON2_DATASETS] [--workers 8]
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import numpy as np
import scipy.io

from zsseg_d2.data.class_lists import load_class_list
from zsseg_d2.data.prepare_utils import apply_lut, build_lut, prepare_parser, read_list, run_all, write_label_png


def read_labels_txt(path: Path) -> dict[int, str]:
    """{official id: name} of labels.txt."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: it comes with the official Pascal Context download")
    labels = {}
    for line in path.read_text().splitlines():
        if line.strip():
            raw_id, name = line.split(":", 1)
            labels[int(raw_id)] = name.strip()
    return labels


def pc59_raw_ids(labels: dict[int, str]) -> list[int]:
    """Official ids of the 59 classes, in zsseg_d2's pascal_context_59 order."""
    by_name = {name: raw_id for raw_id, name in labels.items()}
    names = load_class_list("pascal_context_59").names
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"classes {missing} of Pascal Context 59 are not in labels.txt")
    return [by_name[n] for n in names]


def convert(image_id: str, mat_dir: Path, out_root: Path, lut_459: np.ndarray, lut_59: np.ndarray) -> None:
    mat_file = mat_dir / f"{image_id}.mat"
    raw = np.asarray(scipy.io.loadmat(mat_file)["LabelMap"]).astype(np.int64)
    write_label_png(out_root / "labels_459/val" / f"{image_id}.png", apply_lut(raw, lut_459, 65535, str(mat_file)), 65535)
    write_label_png(out_root / "labels_59/val" / f"{image_id}.png", apply_lut(raw, lut_59, 255, str(mat_file)), 255)


def main(argv: Optional[list[str]] = None) -> None:
    parser = prepare_parser(__doc__)
    args = parser.parse_args(argv)
    pc = args.root / "pascal_context"
    labels = read_labels_txt(pc / "labels.txt")
    raw_459 = sorted(labels)
    lut_459 = build_lut(raw_459, ignore_raw_ids=(0,), size=max(raw_459) + 1)
    raw_59 = pc59_raw_ids(labels)
    lut_59 = build_lut(raw_59, ignore_raw_ids=[0] + [i for i in raw_459 if i not in set(raw_59)], size=len(lut_459))
    pc.mkdir(parents=True, exist_ok=True)
    (pc / "class_names_459.txt").write_text("".join(f"{labels[i]}\n" for i in raw_459))
    ids = read_list(args.root / "VOCdevkit/VOC2010/ImageSets/Main/val.txt")
    run_all(functools.partial(convert, mat_dir=pc / "trainval", out_root=pc, lut_459=lut_459, lut_59=lut_59), ids, args.workers)


if __name__ == "__main__":
    main()
