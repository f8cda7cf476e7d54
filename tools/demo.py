#!/usr/bin/env python3
"""Segment your own images with your own vocabulary.

  python tools/demo.py --config-file CFG --input a.jpg b.jpg | DIR | 'glob*' \\
      --vocab "cat, grass, sky" [--vocab-file F] --output DIR [KEY VALUE ...]

Writes, per image, <name>_overlay.png (label map over the image, legend of the classes present),
<name>_label.png (class ids into the vocabulary) and <name>_classes.json (pixel fraction per class).
A bad image is reported on one line and the others are still processed.
"""
from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image
from tqdm import tqdm

import zsseg_d2  # noqa: F401  (registers the model)
from zsseg_d2.engine import load_config
from zsseg_d2.engine.predictor import VocabularyPredictor
from zsseg_d2.modeling.semantic import validate_class_names
from zsseg_d2.utils.visualization import class_fractions, overlay_with_legend

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--input", nargs="+", required=True, help="image files, folders or glob patterns")
    parser.add_argument("--vocab", default="", help="comma-separated class names")
    parser.add_argument("--vocab-file", default="", help="a file with one class name per line")
    parser.add_argument("--output", required=True, help="folder for the results")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ...")
    return parser.parse_args(argv)


def read_vocabulary(args: argparse.Namespace) -> List[str]:
    names = [name for name in args.vocab.split(",") if name.strip()]
    if args.vocab_file:
        names += [line for line in Path(args.vocab_file).read_text().splitlines() if line.strip()]
    return validate_class_names(names, "--vocab/--vocab-file")


def expand_inputs(patterns: List[str]) -> List[Path]:
    paths = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            paths += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.exists():
            paths.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(pattern))
            paths += matches or [path]  # a missing file is reported when read
    return paths


def segment_one(predictor: VocabularyPredictor, path: Path, output: Path) -> None:
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    label = predictor(rgb)
    vocabulary = predictor.vocabulary
    Image.fromarray(overlay_with_legend(rgb, label, vocabulary)).save(output / f"{path.stem}_overlay.png")
    Image.fromarray(label.astype(np.uint16 if len(vocabulary) > 255 else np.uint8)).save(output / f"{path.stem}_label.png")
    fractions = {"image": str(path), "vocabulary": vocabulary, "fractions": class_fractions(label, vocabulary)}
    (output / f"{path.stem}_classes.json").write_text(json.dumps(fractions, indent=2) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        vocabulary = read_vocabulary(args)
        predictor = VocabularyPredictor(load_config(args.config_file, args.opts), vocabulary)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    paths, failures = expand_inputs(args.input), 0
    for path in tqdm(paths, desc="segmenting", unit="image"):
        try:
            segment_one(predictor, path, output)
        except (OSError, ValueError) as error:  # unreadable or corrupt image
            failures += 1
            print(f"error: cannot segment {path}: {error}", file=sys.stderr)
    print(f"{len(paths) - failures} of {len(paths)} images segmented into {output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
