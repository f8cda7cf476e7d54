#!/usr/bin/env python3
"""Segment your own images with your own vocabulary.

  python tools/demo.py --config-file CFG --input a.jpg b.jpg | DIR | 'glob*' \\
      --vocab "cat, grass, sky" [--vocab-file F] --output DIR [--overwrite] [KEY VALUE ...]

Writes, per image, <name>_overlay.png (label map over the image, legend of the classes present),
<name>_label.png (class ids into the vocabulary) and <name>_classes.json (pixel fraction per class).
<name> is the image's path below the folder common to all inputs, without its suffix (a/x.jpg and
b/x.jpg give a/x_* and b/x_*); two inputs that would share a name are an error before anything runs,
and so is a result file that already exists in --output (an earlier run's), unless --overwrite.
A bad image is reported on one line and the others are still processed; no image at all (an empty
folder, a pattern without matches) is an error.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

import zsseg_d2  # noqa: F401  (registers the model)
from zsseg_d2.data.registration import IMAGE_SUFFIXES
from zsseg_d2.data.sem_seg_io import read_image
from zsseg_d2.engine import load_config
from zsseg_d2.engine.predictor import VocabularyPredictor
from zsseg_d2.modeling.semantic import validate_class_names
from zsseg_d2.utils.visualization import class_fractions, overlay_with_legend


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True)
    parser.add_argument(
        "--input", nargs="+", required=True, help="image files, folders or glob patterns"
    )
    parser.add_argument("--vocab", default="", help="comma-separated class names")
    parser.add_argument("--vocab-file", default="", help="a file with one class name per line")
    parser.add_argument("--output", required=True, help="folder for the results")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace results of earlier runs in --output"
    )
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ..."
    )
    return parser.parse_args(argv)


def read_vocabulary(args: argparse.Namespace) -> list[str]:
    names = [name for name in args.vocab.split(",") if name.strip()]
    if args.vocab_file:
        try:
            text = Path(args.vocab_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"--vocab-file {args.vocab_file} is not UTF-8 text ({error}); save it as UTF-8"
            ) from error
        except OSError as error:
            raise FileNotFoundError(
                f"cannot read --vocab-file {args.vocab_file}: {error}"
            ) from error
        names += [line for line in text.splitlines() if line.strip()]
    return validate_class_names(names, f"--vocab/--vocab-file {args.vocab_file}".strip())


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Image files of ``patterns`` (files, folders, globs), each once; a folder without images
    or a pattern that matches nothing is an error naming it."""
    paths = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise FileNotFoundError(
                    f"--input folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            paths += images
        elif path.exists():
            paths.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(pattern))
            if not matches:
                raise FileNotFoundError(
                    f"--input {pattern!r} is no file or folder and matches no file"
                )
            paths += matches
    return list(dict.fromkeys(paths))


def output_names(paths: list[Path]) -> dict[Path, str]:
    """Each input's output name: its path below the inputs' common folder, without suffix."""
    parents = [str(p.resolve().parent) for p in paths]
    common = Path(os.path.commonpath(parents)) if paths else Path()
    names: dict[Path, str] = {}
    taken: dict[str, Path] = {}
    for path in paths:
        name = str(path.resolve().relative_to(common).with_suffix(""))
        if name in taken:
            raise ValueError(
                f"inputs {taken[name]} and {path} would both write {name}_*: rename one or run them apart"
            )
        names[path], taken[name] = name, path
    return names


OUTPUT_SUFFIXES = ("_overlay.png", "_label.png", "_classes.json")


def check_not_overwriting(output: Path, names: list[str], overwrite: bool, shown: int = 5) -> None:
    """Raise when a result file of ``names`` already exists in ``output`` (unless ``overwrite``)."""
    taken = [
        str(output / f"{name}{suffix}")
        for name in names
        for suffix in OUTPUT_SUFFIXES
        if (output / f"{name}{suffix}").exists()
    ]
    if taken and not overwrite:
        more = f" and {len(taken) - shown} more" if len(taken) > shown else ""
        raise FileExistsError(
            f"--output {output} holds results of an earlier run: {', '.join(taken[:shown])}{more}. "
            "Pass --overwrite to replace them, or choose another --output folder"
        )


def segment_one(predictor: VocabularyPredictor, path: Path, output: Path, name: str) -> None:
    rgb = read_image(path, "RGB")
    label = predictor(rgb)
    vocabulary = predictor.vocabulary
    stem = output / name
    stem.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(overlay_with_legend(rgb, label, vocabulary)).save(f"{stem}_overlay.png")
    Image.fromarray(label.astype(np.uint16 if len(vocabulary) > 255 else np.uint8)).save(
        f"{stem}_label.png"
    )
    fractions = {
        "image": str(path),
        "vocabulary": vocabulary,
        "fractions": class_fractions(label, vocabulary),
    }
    Path(f"{stem}_classes.json").write_text(
        json.dumps(fractions, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        vocabulary = read_vocabulary(args)
        paths = expand_inputs(args.input)
        names = output_names(paths)
        output = Path(args.output)
        check_not_overwriting(output, list(names.values()), args.overwrite)
        predictor = VocabularyPredictor(load_config(args.config_file, args.opts), vocabulary)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    output.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in tqdm(paths, desc="segmenting", unit="image"):
        try:
            segment_one(predictor, path, output, names[path])
        except (OSError, ValueError) as error:  # unreadable or corrupt image
            failures += 1
            print(f"error: cannot segment {path}: {error}", file=sys.stderr)
    print(f"{len(paths) - failures} of {len(paths)} images segmented into {output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
