"""Weights of an earlier stage: fail with the command that makes them, never train from ImageNet."""

from __future__ import annotations

import os

from detectron2.config import CfgNode


def check_stage_weights(cfg: CfgNode) -> None:
    """Raise ``FileNotFoundError`` when ``MODEL.WEIGHTS`` is a local file that does not exist,
    naming the stage (``MODEL.WEIGHTS_FROM``) whose run writes it. URLs and "" are left to
    Detectron2."""
    weights = cfg.MODEL.WEIGHTS
    if not weights or "://" in weights or os.path.isfile(weights):
        return
    stage = cfg.MODEL.WEIGHTS_FROM
    how = (
        f"it is written by the earlier stage {stage}: run `python tools/train_net.py --config-file {stage}` "
        "first, or pass MODEL.WEIGHTS path/to/that/model_final.pth"
        if stage
        else "pass MODEL.WEIGHTS with an existing checkpoint"
    )
    raise FileNotFoundError(f"MODEL.WEIGHTS {weights!r} does not exist; {how}")
