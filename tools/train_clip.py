#!/usr/bin/env python3
"""Train a small open_clip model on the captioned regions of a registered training split.

The regions are class boxes (the box of each class's pixels in an image) and random boxes
captioned by their dominant class, of every class, seen and unseen (see
zsseg_d2/clip_training/regions.py). Only DATASETS.TRAIN[0] is trained on; DATASETS.TEST[0] is
only measured. The checkpoint loads like any open_clip weights file:

  python tools/train_clip.py --config-file configs/cel/tiny/camvid_8-3.yaml --output output/clip_camvid
  python tools/train_net.py --config-file configs/cel/tiny/camvid_8-3.yaml \\
      MODEL.CLIP.PRETRAINED output/clip_camvid/clip.pt

--text-embeddings FILE locks the text side to precomputed class vectors (MODEL.SEMANTIC files):
only the image tower learns; use the same files as MODEL.SEMANTIC.FILES afterwards.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config-file",
        default=str(REPO / "configs" / "cel" / "tiny" / "shapes.yaml"),
        help="gives MODEL.CLIP.{MODEL_NAME, PROMPT_TEMPLATES} and DATASETS.{TRAIN, TEST}",
    )
    parser.add_argument("--output", required=True, help="folder for clip.pt and clip.json")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--groups", type=int, default=8, help="class-distinct groups per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--random-regions", type=int, default=8, help="random boxes tried per training image"
    )
    parser.add_argument(
        "--text-embeddings", nargs="*", default=[], help="lock the text side to these files"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides, KEY VALUE ...")
    return parser.parse_args(argv)


def main(argv: list | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from zsseg_d2.clip_training import ClipTrainingSettings
    from zsseg_d2.clip_training.recipe import format_accuracy, train_and_save
    from zsseg_d2.engine import load_config

    cfg = load_config(args.config_file, args.opts)
    settings = ClipTrainingSettings(
        steps=args.steps, groups=args.groups, lr=args.lr, seed=args.seed
    )
    start = time.monotonic()
    report = train_and_save(
        cfg,
        Path(args.output),
        settings,
        random_regions=args.random_regions,
        text_files=args.text_embeddings,
        progress=not args.no_progress,
    )
    print(
        f"CLIP {report['model_name']} trained on {report['train_regions']} regions of {report['train_split']} "
        f"in {time.monotonic() - start:.0f} s; final loss {report['history'][-1]['loss']:.3f}, "
        f"logit scale {report['history'][-1]['logit_scale']:.1f}"
    )
    print(format_accuracy(report["val_accuracy"], report["val_split"]))
    print(
        f"checkpoint: {report['checkpoint']}  (MODEL.CLIP.MODEL_NAME {report['model_name']} "
        f"MODEL.CLIP.PRETRAINED {report['checkpoint']})"
    )
    return report


if __name__ == "__main__":
    main()
