"""Per-image caption nouns of COCO (open-vocabulary training, Table 3 of the paper).

Reads  <root>/coco/annotations/captions_train2017.json  and writes
       <root>/coco/caption_nouns_train2017.json  (format "zsseg_d2/caption_nouns/v1"):
       {"vocabulary": [the 156 seen class names, then the most frequent other nouns, --size in all],
        "labels": {"<image file stem>": [nouns of its captions in the vocabulary]}}

Noun extraction without a tagger or downloads (a heuristic, documented here): in each caption
(lower case, letters only) the head noun of a determiner phrase is taken, i.e. after "a", "the",
"two", "some", ... the last word before a boundary word (a preposition, conjunction, auxiliary, a
frequent caption verb, a word ending in -ing, another determiner, or the end) within 3 words: "a large red bus parked
on ..." -> "bus". Plurals are folded onto a singular seen elsewhere ("dogs" -> "dog"). Seen class
names are also matched as phrases ("traffic light"). Unseen class names are left out of the
vocabulary (zero-shot: their names never become training labels) unless --keep-unseen.
Usage: python datasets/prepare_coco_nouns.py [--root $DETECTRON2_DATASETS] [--size 1047]
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Optional

from detectron2.data import MetadataCatalog

import zsseg_d2.data  # noqa: F401  (registers the data sets)
from zsseg_d2.data.image_labels import CAPTION_NOUN_FORMAT
from zsseg_d2.data.prepare_utils import prepare_parser
from zsseg_d2.data.splits import seen_class_ids

DETERMINERS = set(
    "a an the some two three four five six several many few his her their its this that these those "
    "other another each every one".split()
)
BOUNDARIES = DETERMINERS | set(
    "of on in at with by for from to near under over above below behind beside next into onto "
    "while and or but as is are was were be being been has have had that which who there "
    "up down out off around through across along against sits stands holds looks lies parked "
    "filled covered made topped stacked lined painted dressed".split()
)
WINDOW = 3


def head_nouns(caption: str) -> list[str]:
    """Head nouns of the determiner phrases of one caption (see the module docstring)."""
    words = re.findall(r"[a-z]+", caption.lower())
    nouns = []
    for i, word in enumerate(words):
        if word not in DETERMINERS:
            continue
        phrase = []
        for nxt in words[i + 1 : i + 1 + WINDOW + 1]:
            if nxt in BOUNDARIES or nxt.endswith("ing"):
                break
            phrase.append(nxt)
        if 0 < len(phrase) <= WINDOW:
            nouns.append(phrase[-1])
    return nouns


def fold_plurals(counts: Counter) -> dict[str, str]:
    """word -> its singular when that singular was also seen ("dogs" -> "dog", "boxes" -> "box")."""
    fold = {}
    for word in counts:
        for cut in (1, 2):
            if word.endswith("s") and word[:-cut] in counts:
                fold[word] = word[:-cut]
                break
    return fold


def image_nouns(captions: list[str], phrases: list[str]) -> set[str]:
    text = " " + " ".join(" ".join(re.findall(r"[a-z]+", c.lower())) for c in captions) + " "
    found = {p for p in phrases if f" {p} " in text or f" {p}s " in text}
    return found | {n for c in captions for n in head_nouns(c)}


def build(captions_json: dict, seen_names: list[str], excluded: set[str], size: int) -> dict:
    by_image: dict[int, list[str]] = {}
    for ann in captions_json["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann["caption"])
    stems = {img["id"]: Path(img["file_name"]).stem for img in captions_json["images"]}
    raw = {stems[i]: image_nouns(caps, seen_names) for i, caps in by_image.items()}
    fold = fold_plurals(Counter(n for nouns in raw.values() for n in nouns))
    per_image = {image: {fold.get(n, n) for n in nouns} for image, nouns in raw.items()}
    frequency = Counter(n for nouns in per_image.values() for n in nouns)
    others = [n for n, _ in frequency.most_common() if n not in set(seen_names) | excluded]
    vocabulary = list(seen_names) + others[: max(0, size - len(seen_names))]
    keep = set(vocabulary)
    labels = {image: sorted(nouns & keep) for image, nouns in sorted(per_image.items())}
    return {"format": CAPTION_NOUN_FORMAT, "vocabulary": vocabulary, "labels": labels}


def main(argv: Optional[list[str]] = None) -> None:
    parser = prepare_parser(__doc__, workers=False)
    parser.add_argument("--size", type=int, default=1047)
    parser.add_argument("--dataset", default="coco_stuff_171_train", help="data set whose seen classes lead the vocabulary")
    parser.add_argument("--keep-unseen", action="store_true")
    args = parser.parse_args(argv)
    source = args.root / "coco/annotations/captions_train2017.json"
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found: unzip annotations_trainval2017.zip (datasets/README.md)")
    meta = MetadataCatalog.get(args.dataset)
    seen = [meta.stuff_classes[i] for i in seen_class_ids(meta)]
    excluded = set() if args.keep_unseen else set(meta.unseen_classes)
    result = build(json.loads(source.read_text()), seen, excluded, args.size)
    target = args.root / "coco/caption_nouns_train2017.json"
    target.write_text(json.dumps(result))
    print(f"{len(result['vocabulary'])} nouns, {len(result['labels'])} images -> {target}")


if __name__ == "__main__":
    main()
