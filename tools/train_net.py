#!/usr/bin/env python3
"""Train or evaluate a zsseg_d2 model (Detectron2 style).

  python tools/train_net.py --config-file configs/cel/voc/cel_R50_15-5.yaml
  python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model_final.pth
  python tools/train_net.py --config-file CFG --num-gpus 8          # 8 GPUs (NCCL)
  python tools/train_net.py --config-file CFG --num-gpus 2 MODEL.DEVICE cpu   # 2 CPU processes (gloo)

Without a GPU, MODEL.DEVICE falls back to cpu and --num-gpus N runs N CPU processes.
"""

from __future__ import annotations

from detectron2.engine import default_argument_parser

import zsseg_d2  # noqa: F401  (registers data sets and model parts)
from zsseg_d2.engine import Trainer, launch_from_args, setup
from zsseg_d2.engine.checkpoint import load_trained_weights, weights_to_evaluate


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        load_trained_weights(
            model,
            weights_to_evaluate(cfg, args.resume),
            cfg.MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH,
        )
        return Trainer.test(cfg, model)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch_from_args(main, args)
