#!/usr/bin/env python3
"""Unseen pseudo labels for a training set with CLIP on mask crops (section 3.4, eq. 9-10).

Stage 2 of 3: train on seen classes -> this pass -> train with INPUT.IMAGE_LABELS.UNSEEN_MODE pseudo.

  python tools/generate_pseudo_labels.py --config-file CFG --output out/pseudo.json \\
      MODEL.WEIGHTS stage1/model_final.pth
  # 4 independent processes (machines, jobs); the last one to finish writes the final file
  python tools/generate_pseudo_labels.py --config-file CFG --output out/pseudo.json \\
      --num-shards 4 --shard-id 0 MODEL.WEIGHTS ...
  python tools/generate_pseudo_labels.py --config-file CFG --output out/pseudo.json --num-shards 4 --merge
  # 8 GPUs through Detectron2's launch: one shard per process
  python tools/generate_pseudo_labels.py --config-file CFG --output out/pseudo.json --num-gpus 8 ...

Rerunning the same command resumes: finished images are skipped; the final file is the same as
an uninterrupted run's. Logs and records live in out/pseudo.work/, the report in
out/pseudo.summary.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

import zsseg_d2  # noqa: F401  (registers data sets and model parts)
from zsseg_d2.engine import launch_from_args, load_config
from zsseg_d2.methods.cel.pseudo_labels.records import PassLayout
from zsseg_d2.methods.cel.pseudo_labels.runner import (
    IncompleteShardsError,
    merge_if_complete,
    merge_shards,
    run_shard,
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config-file", required=True, help="config of the first-stage model")
    parser.add_argument(
        "--dataset", default="", help="data set to label (default: DATASETS.TRAIN[0])"
    )
    parser.add_argument("--output", required=True, help="final pseudo-label file (JSON)")
    parser.add_argument(
        "--threshold", type=float, default=None, help="tau of eq. 10 (PSEUDO_LABEL.THRESHOLD)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per model forward (PSEUDO_LABEL.IMS_PER_BATCH)",
    )
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--shard-id", type=int, default=0)
    parser.add_argument(
        "--merge", action="store_true", help="only merge the shards' records into the final file"
    )
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (the log still reports progress)",
    )
    parser.add_argument(
        "--num-gpus", type=int, default=1, help="processes per machine, one shard each"
    )
    parser.add_argument("--num-machines", type=int, default=1)
    parser.add_argument("--machine-rank", type=int, default=0)
    parser.add_argument("--dist-url", default="auto")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace):
    cfg = load_config(args.config_file, args.opts)
    if args.threshold is not None:
        cfg.PSEUDO_LABEL.THRESHOLD = args.threshold
    if args.batch_size is not None:
        cfg.PSEUDO_LABEL.IMS_PER_BATCH = args.batch_size
    cfg.freeze()
    return cfg


def main(args: argparse.Namespace):
    cfg = build_config(args)
    dataset = args.dataset or (cfg.DATASETS.TRAIN[0] if cfg.DATASETS.TRAIN else "")
    if not dataset:
        raise ValueError("no data set to label: pass --dataset NAME or set DATASETS.TRAIN")
    world, rank = comm.get_world_size(), comm.get_rank()
    if world > 1 and args.num_shards != 1:
        raise ValueError(
            "use either --num-gpus/--num-machines (one shard per process) or --num-shards, not both"
        )
    num_shards, shard_id = (world, rank) if world > 1 else (args.num_shards, args.shard_id)
    layout = PassLayout(Path(args.output))
    log_file = str(layout.log_file(shard_id, num_shards))
    for name in ("zsseg_d2", "detectron2"):
        setup_logger(output=log_file, distributed_rank=rank, name=name, abbrev_name=name[:4])
    if args.merge:
        summary = merge_shards(cfg, dataset, args.output, num_shards)
    else:
        run_shard(
            cfg,
            dataset,
            args.output,
            num_shards,
            shard_id,
            show_progress=rank == 0 and not args.no_progress,
        )
        if world > 1:
            comm.synchronize()
            if rank != 0:
                return None
        summary = merge_if_complete(cfg, dataset, args.output, num_shards)
    return summary  # logged (printed) and saved by the merge


if __name__ == "__main__":
    args = parse_args()
    try:
        launch_from_args(main, args)
    except IncompleteShardsError as error:
        sys.exit(f"error: {error}")
