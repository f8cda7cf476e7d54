"""Loading trained weights for evaluation and inference, refusing checkpoints of another model.

Detectron2's checkpointer skips mismatched parameters with a warning, which is right for
fine-tuning from ImageNet weights but silently wrong for evaluating a checkpoint. Here every
parameter must be present with the right shape, or the error lists what differs.
"""
from __future__ import annotations

import os
from typing import Dict

import torch
from detectron2.checkpoint import DetectionCheckpointer
from torch import nn

_LISTED = 5


def _state_dict_of(path: str) -> Dict[str, torch.Tensor]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} not found (MODEL.WEIGHTS)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (torch raises several types for bad files)
        raise ValueError(
            f"cannot read checkpoint {path!r} as tensors only (torch.load weights_only=True): {error}. "
            f"Only load checkpoints you trust; zsseg_d2's own checkpoints always load this way"
        ) from error
    return checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint


def compare_state_dicts(model: nn.Module, state: Dict[str, torch.Tensor]) -> str:
    """Describe missing, unexpected and shape-mismatched parameters ('' when they all match)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    problems = []
    for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if items:
            problems.append(f"{len(items)} {title}: " + "; ".join(items[:_LISTED]) + (" ..." if len(items) > _LISTED else ""))
    return " | ".join(problems)


def load_trained_weights(model: nn.Module, path: str) -> None:
    """Load a zsseg_d2 checkpoint (``.pth``) strictly; other formats go through Detectron2."""
    if not path.endswith(".pth"):
        DetectionCheckpointer(model).load(path)
        return
    state = _state_dict_of(path)
    problems = compare_state_dicts(model, state)
    if problems:
        raise ValueError(
            f"checkpoint {path!r} does not fit this model's architecture ({problems}); "
            f"use the config file the checkpoint was trained with"
        )
    model.load_state_dict(state)
