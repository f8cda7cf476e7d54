#!/usr/bin/env python3
"""Check every image/label pair of registered data sets before training, in parallel.

  python tools/check_dataset.py --dataset camvid_train camvid_val [--workers 8]
  python tools/check_dataset.py --config-file CFG [KEY VALUE ...]   # its DATASETS.TRAIN and TEST
  python tools/check_dataset.py --spec-file my_data.yaml            # every split of a spec file

Each pair is decoded as training reads it (image, label values against the class list, sizes).
Prints per data set the number of pairs, each bad pair with its error, how many images have no
label file (they are left out of the split), the pixel share of each class and how many images
show unseen classes. Exit status 1 when a pair is bad (train anyway with
INPUT.SKIP_UNREADABLE True to skip and count them), 2 for a bad command line or data set.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog

import zsseg_d2  # noqa: F401  (registers the data sets)
from zsseg_d2.data import register_spec_file, unseen_class_ids
from zsseg_d2.data.dataset_check import check_records
from zsseg_d2.data.registration import images_without_labels, split_files
from zsseg_d2.engine import load_config


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", nargs="*", default=[], help="registered data set names")
    parser.add_argument(
        "--config-file", default="", help="check its DATASETS.TRAIN and DATASETS.TEST"
    )
    parser.add_argument(
        "--spec-file", nargs="*", default=[], help="register and check every split of these"
    )
    parser.add_argument("--workers", type=int, default=4, help="processes reading pairs")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, default=[], help="config overrides KEY VALUE ..."
    )
    return parser.parse_args(argv)


def check_dataset(name: str, workers: int) -> int:
    """Check and summarise one data set; return its number of bad pairs."""
    records = DatasetCatalog.get(name)
    results = check_records(records, name, workers)
    classes = MetadataCatalog.get(name).stuff_classes
    bad = [(record, error) for record, (error, _) in zip(records, results) if error]
    counts = [c for _, c in results if c is not None]
    print(f"{name}: {len(records)} pairs, {len(records) - len(bad)} good, {len(bad)} bad")
    for record, error in bad:
        print(f"  BAD {record['file_name']}: {error}")
    report_unlabelled(name)
    if counts:
        total = np.sum(counts, axis=0)
        shares = ", ".join(
            f"{c} {100 * n / max(total.sum(), 1):.1f}%" for c, n in zip(classes, total)
        )
        print(f"  pixels per class (of labelled pixels): {shares}")
        unseen = unseen_class_ids(MetadataCatalog.get(name))
        if unseen:
            showing = sum(int(c[unseen].sum() > 0) for c in counts)
            print(f"  images with unseen-class pixels: {showing} of {len(counts)}")
    return len(bad)


def report_unlabelled(name: str, shown: int = 5) -> None:
    """Print how many images of the split's image folder have no label (they are left out)."""
    split = split_files(name)
    unlabelled = images_without_labels(split) if split else []
    if unlabelled:
        examples = ", ".join(path.name for path in unlabelled[:shown])
        more = ", ..." if len(unlabelled) > shown else ""
        print(
            f"  images without a label file (left out of the split): {len(unlabelled)} in "
            f"{unlabelled[0].parent} ({examples}{more})"
        )


def dataset_names(args: argparse.Namespace) -> list[str]:
    names = list(args.dataset)
    for spec in args.spec_file:
        names += register_spec_file(spec)
    if args.config_file:
        cfg = load_config(args.config_file, args.opts)
        names += [*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]
    if not names:
        raise ValueError(
            "nothing to check: pass --dataset NAME, --config-file CFG or --spec-file FILE"
        )
    unknown = [name for name in names if name not in DatasetCatalog.list()]
    if unknown:
        raise KeyError(
            f"data sets {unknown} are not registered: name the built-in sets of datasets/README.md, "
            "or register your own with --spec-file FILE (or --config-file CFG naming it in "
            "DATASETS.SPEC_FILES)"
        )
    return list(dict.fromkeys(names))


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        names = dataset_names(args)
        bad = sum(check_dataset(name, args.workers) for name in names)
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    hint = " (INPUT.SKIP_UNREADABLE True skips them in training)" if bad else ""
    print(f"{bad} bad pairs in {len(names)} data sets{hint}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
