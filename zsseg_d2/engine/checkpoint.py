"""Checkpoints: written atomically, read as tensors only, and loaded strictly for evaluation.

Detectron2's checkpointer skips mismatched parameters with a warning, which is right for
fine-tuning from ImageNet weights but silently wrong for evaluating a checkpoint. Here every
parameter must be present with the right shape, or the error lists what differs.

A checkpoint records the class of the model it holds (``meta_architecture``, e.g. "SZN"): every
loader compares it first, so a checkpoint of another method is reported as such, before any
parameter or text setting is compared.

``.pth`` files are read with ``torch.load(weights_only=True)``: tensors and plain containers only,
never arbitrary objects. Detectron2-format ``.pkl`` files (its model-zoo ImageNet backbones, e.g.
``detectron2://ImageNetPretrained/torchvision/R-50.pkl``) are Python pickles and are read by
Detectron2's own loader; use them only from sources you trust.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import CfgNode
from torch import nn

from ..utils.file_io import atomic_write
from .text_record import RECORD_KEY, check_text_record, text_record

_LISTED = 5
ARCHITECTURE_KEY = "meta_architecture"


def load_tensors_only(path: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} not found (MODEL.WEIGHTS)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001  (torch raises several types for bad files)
        raise ValueError(
            f"cannot read checkpoint {path!r} as tensors only (torch.load weights_only=True): {error}. "
            f"A truncated file is a copy or save that did not finish; zsseg_d2's own checkpoints "
            f"always load this way"
        ) from error


class Checkpointer(DetectionCheckpointer):
    """Detectron2's ``DetectionCheckpointer`` with atomic writes, tensors-only ``.pth`` reads and
    the model's text settings saved and checked (``accept_text_mismatch``: warn instead of fail).

    A run killed while saving keeps its previous checkpoint and ``last_checkpoint`` tag intact
    (see :mod:`zsseg_d2.utils.file_io`), so ``--resume`` always finds a whole file.
    """

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        accept_text_mismatch: bool = False,
        **kwargs: Any,
    ):
        super().__init__(model, save_dir, **kwargs)
        self.accept_text_mismatch = accept_text_mismatch

    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {
            "model": self.model.state_dict(),
            ARCHITECTURE_KEY: type(self.model).__name__,
            RECORD_KEY: text_record(self.model),
        }
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        self.logger.info(f"Saving checkpoint to {os.path.join(self.save_dir, basename)}")
        with atomic_write(os.path.join(self.save_dir, basename)) as f:
            torch.save(data, f)
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        with atomic_write(os.path.join(self.save_dir, "last_checkpoint"), "w") as f:
            f.write(last_filename_basename)

    def _load_file(self, filename: str) -> dict[str, Any]:
        if filename.endswith((".pkl", ".pyth")):
            return super()._load_file(filename)
        loaded = load_tensors_only(filename)
        if "model" not in loaded:
            return {"model": loaded}
        check_architecture(loaded, self.model, filename)
        check_text_record(loaded, self.model, filename, self.accept_text_mismatch)
        return loaded


def check_architecture(checkpoint: dict, model: nn.Module, path: str) -> None:
    """Raise when ``checkpoint`` (loaded from ``path``) records another model class than ``model``'s."""
    saved, built = checkpoint.get(ARCHITECTURE_KEY), type(model).__name__
    if saved is not None and saved != built:
        raise ValueError(
            f"checkpoint {path} holds a {saved} model (MODEL.META_ARCHITECTURE {saved!r}), but this "
            f"config builds {built}: use the config file the checkpoint was trained with (the "
            f"config.yaml beside it)"
        )


def same_parameter_names(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return set(model.state_dict()) == set(state)


def compare_state_dicts(model: nn.Module, state: dict[str, torch.Tensor]) -> str:
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
    for title, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", mismatched),
    ):
        if items:
            problems.append(
                f"{len(items)} {title}: "
                + "; ".join(items[:_LISTED])
                + (" ..." if len(items) > _LISTED else "")
            )
    return " | ".join(problems)


def load_trained_weights(model: nn.Module, path: str, accept_text_mismatch: bool = False) -> None:
    """Load a zsseg_d2 checkpoint (``.pth``) strictly, checked against the model in this order:
    its model class; the names of its parameters (other names: another architecture); its text
    settings (which also explain shape differences, e.g. another embedding width); the shapes.
    Other formats go through Detectron2."""
    if not path:
        raise ValueError(
            "no trained weights given (MODEL.WEIGHTS is empty): pass MODEL.WEIGHTS path/to/model_final.pth"
        )
    if not path.endswith(".pth"):
        Checkpointer(model).load(path)
        return
    checkpoint = load_tensors_only(path)
    wrapped = isinstance(checkpoint, dict) and "model" in checkpoint
    state = checkpoint["model"] if wrapped else checkpoint
    check_architecture(checkpoint if wrapped else {}, model, path)
    problems = compare_state_dicts(model, state)
    architecture_error = ValueError(
        f"checkpoint {path!r} does not fit this model's architecture ({problems}); "
        f"use the config file the checkpoint was trained with"
    )
    if not same_parameter_names(model, state):
        raise architecture_error
    check_text_record(checkpoint if wrapped else {}, model, path, accept_text_mismatch)
    if problems:
        raise architecture_error
    model.load_state_dict(state)


def weights_to_evaluate(cfg: CfgNode, resume: bool) -> str:
    """With ``--resume``, the last checkpoint of ``OUTPUT_DIR`` when there is one; else ``MODEL.WEIGHTS``."""
    checkpointer = Checkpointer(nn.Module(), save_dir=cfg.OUTPUT_DIR)
    if resume and checkpointer.has_checkpoint():
        return checkpointer.get_checkpoint_file()
    return cfg.MODEL.WEIGHTS
