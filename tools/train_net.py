#!/usr/bin/env python3
"""Train or evaluate a zsseg_d2 model (Detectron2 style).

  python tools/train_net.py --config-file configs/cel/voc/cel_R50_15-5.yaml
  python tools/train_net.py --config-file CFG --eval-only MODEL.WEIGHTS model_final.pth
  python tools/train_net.py --config-file CFG --num-gpus 8          # 8 GPUs (NCCL)
  python tools/train_net.py --config-file CFG --num-gpus 2 MODEL.DEVICE cpu   # 2 CPU processes (gloo)

A new training run refuses an OUTPUT_DIR that holds anything: pass --resume to continue the run
there, or --overwrite to delete its files first. config.yaml is written once the weights are
loaded. --eval-only writes its results and config to OUTPUT_DIR/inference, or to a fresh
inference_<n> when that holds earlier results (--overwrite: replace them).
Without a GPU, MODEL.DEVICE falls back to cpu (logged in OUTPUT_DIR/log.txt) and --num-gpus N
runs N CPU processes.
"""

from __future__ import annotations

import os

import zsseg_d2  # noqa: F401  (registers data sets and model parts)
from zsseg_d2.engine import Trainer, argument_parser, launch_from_args, setup
from zsseg_d2.engine.checkpoint import load_trained_weights, weights_to_evaluate
from zsseg_d2.engine.output_dir import evaluation_folder, save_config


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        load_trained_weights(
            model,
            weights_to_evaluate(cfg, args.resume),
            cfg.MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH,
        )
        folder = evaluation_folder(cfg.OUTPUT_DIR, args.overwrite)
        save_config(cfg, folder / "config.yaml")
        evaluators = [
            Trainer.build_evaluator(cfg, name, os.path.join(folder, name))
            for name in cfg.DATASETS.TEST
        ]
        return Trainer.test(cfg, model, evaluators)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    save_config(cfg, os.path.join(cfg.OUTPUT_DIR, "config.yaml"))
    return trainer.train()


if __name__ == "__main__":
    args = argument_parser().parse_args()
    print("Command Line Args:", args)
    launch_from_args(main, args)
