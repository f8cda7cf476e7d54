"""Weights of an earlier stage: fail with the command that makes them, never train from ImageNet."""

from __future__ import annotations

import os

from detectron2.config import CfgNode


def check_stage_weights(cfg: CfgNode, starts_from_earlier_stage: bool = False) -> None:
    """Raise when training cannot start from the weights it needs: ``MODEL.WEIGHTS`` is a local
    file that does not exist, or is empty although the model's stage (``MODEL.STAGE``) starts
    from an earlier stage's weights. The error names the earlier stage's config
    (``MODEL.WEIGHTS_FROM``) and its command. URLs are left to Detectron2."""
    weights = cfg.MODEL.WEIGHTS
    if "://" in weights or (weights and os.path.isfile(weights)):
        return
    if not weights and not starts_from_earlier_stage:
        return
    stage = cfg.MODEL.WEIGHTS_FROM
    how = (
        f"it is written by the earlier stage {stage}: run `python tools/train_net.py --config-file {stage}` "
        "first, or pass MODEL.WEIGHTS path/to/that/model_final.pth"
        if stage
        else "pass MODEL.WEIGHTS with the earlier stage's model_final.pth"
    )
    if not weights:
        raise ValueError(
            f"MODEL.STAGE {cfg.MODEL.STAGE!r} starts from an earlier stage's weights, but MODEL.WEIGHTS "
            f"is empty; {how}"
        )
    raise FileNotFoundError(f"MODEL.WEIGHTS {weights!r} does not exist; {how}")
