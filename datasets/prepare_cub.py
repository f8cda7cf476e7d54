"""CUB-200-2011 -> zsseg_d2 layout for the Relation Network's binary ZLSS (Zhang & Khriyenko,
Sec. IV-A: "150 seen classes and 50 unseen classes ... its class split is the same as its image
split").

Reads  <root>/CUB_200_2011/{images.txt, image_class_labels.txt, classes.txt, images/,
                            segmentations/, attributes/class_attribute_labels_continuous.txt}
       --unseen-classes FILE: the 50 unseen species, one per line as in classes.txt (e.g. the
                            testclasses.txt of the zero-shot split the Relation Network uses)
and writes
  <root>/cub/images/{train,test}/<stem>.jpg   links to the images of the seen / unseen species
  <root>/cub/labels/{train,test}/<stem>.png   0 background, k the k-th species (classes.txt) where
                                              the mask is >= 128 (the masks average 5 annotators)
  <root>/cub/class_names.txt                  "background" and the 200 species ("black footed albatross")
  <root>/cub/unseen_classes.txt               the 50 unseen species
  <root>/cub/attributes_312.npz               "names", "vectors": the 312 continuous class attributes
Usage: python datasets/prepare_cub.py --unseen-classes testclasses.txt [--root $DETECTRON2_DATASETS]
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from zsseg_d2.data.prepare_utils import prepare_parser, write_label_png

MASK_THRESHOLD = 128


def species_name(folder_name: str) -> str:
    """"001.Black_footed_Albatross" -> "black footed albatross"."""
    return folder_name.split(".", 1)[-1].replace("_", " ").lower()


def _table(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: unpack CUB_200_2011.tgz under the root")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def main(argv: Optional[list[str]] = None) -> dict[str, int]:
    parser = prepare_parser(__doc__, workers=False)
    parser.add_argument("--unseen-classes", type=Path, required=True)
    args = parser.parse_args(argv)
    cub, out = args.root / "CUB_200_2011", args.root / "cub"
    classes = {int(i): name for i, name in _table(cub / "classes.txt")}
    unseen = [line.strip() for line in args.unseen_classes.read_text().splitlines() if line.strip()]
    unknown = [name for name in unseen if name not in classes.values()]
    if unknown or len(unseen) != 50:
        raise ValueError(
            f"{args.unseen_classes} must list 50 species of {cub / 'classes.txt'}; "
            f"got {len(unseen)}, unknown {unknown[:3]}"
        )
    images = dict(_table(cub / "images.txt"))
    labels = {i: int(c) for i, c in _table(cub / "image_class_labels.txt")}
    counts = {"train": 0, "test": 0}
    for image_id, relative in images.items():
        class_id = labels[image_id]
        split = "test" if classes[class_id] in unseen else "train"
        stem = Path(relative).stem
        mask = np.asarray(Image.open(cub / "segmentations" / Path(relative).with_suffix(".png")))
        if mask.ndim == 3:
            mask = mask[..., 0]
        label = np.where(mask >= MASK_THRESHOLD, class_id, 0)
        write_label_png(out / "labels" / split / f"{stem}.png", label, 255)
        link = out / "images" / split / f"{stem}.jpg"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            os.symlink((cub / "images" / relative).resolve(), link)
        counts[split] += 1
    names = [species_name(classes[i]) for i in sorted(classes)]
    (out / "class_names.txt").write_text("\n".join(["background", *names]) + "\n")
    (out / "unseen_classes.txt").write_text("\n".join(species_name(n) for n in unseen) + "\n")
    attributes = np.loadtxt(cub / "attributes/class_attribute_labels_continuous.txt", ndmin=2)
    np.savez(out / "attributes_312.npz", names=np.array(names), vectors=attributes.astype(np.float32))
    return counts


if __name__ == "__main__":
    main()
