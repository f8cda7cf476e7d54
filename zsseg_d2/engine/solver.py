"""Optimizer and learning-rate schedule in Mask2Former's recipe (AdamW, backbone multiplier, poly),
optionally with a second optimizer for some modules (``SOLVER.SECOND_OPTIMIZER``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_lr_scheduler as build_d2_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler
from fvcore.common.param_scheduler import PolynomialDecayParamScheduler
from torch import nn

from .joint_optimizer import JointOptimizer

logger = logging.getLogger(__name__)

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def _in_modules(module_name: str, prefixes: Sequence[str]) -> bool:
    return any(module_name == p or module_name.startswith(p + ".") for p in prefixes)


def optimizer_param_groups(cfg: CfgNode, model: nn.Module, exclude: Sequence[str] = ()) -> list:
    """Backbone lr x BACKBONE_MULTIPLIER, WEIGHT_DECAY_NORM on norms, WEIGHT_DECAY_EMBED on
    embeddings; parameters of the top-level modules named in ``exclude`` are left out.

    One group per (lr, weight decay), in order of first use, its parameters in module order: the
    same update as Mask2Former's one group per parameter, but a GPU's multi-tensor (foreach)
    AdamW then updates each group with a few kernel launches instead of some per parameter.
    """
    groups, seen = {}, set()
    for module_name, module in model.named_modules():
        if _in_modules(module_name, exclude):
            continue
        for param in module.parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            lr, weight_decay = cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY
            if module_name.startswith("backbone"):
                lr *= cfg.SOLVER.BACKBONE_MULTIPLIER
            if isinstance(module, _NORM_TYPES):
                weight_decay = cfg.SOLVER.WEIGHT_DECAY_NORM
            elif isinstance(module, nn.Embedding):
                weight_decay = cfg.SOLVER.WEIGHT_DECAY_EMBED
            groups.setdefault((lr, weight_decay), []).append(param)
    return [
        {"params": params, "lr": lr, "weight_decay": weight_decay}
        for (lr, weight_decay), params in groups.items()
    ]


def _with_gradient_clipping(cfg: CfgNode, optimizer_cls: type) -> type:
    """Detectron2's per-parameter clipping, plus CLIP_TYPE "full_model": one norm over all grads."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not (clip.ENABLED and clip.CLIP_TYPE == "full_model"):
        return maybe_add_gradient_clipping(cfg, optimizer_cls)

    class FullModelGradientClipping(optimizer_cls):
        def step(self, closure=None):
            params = [p for group in self.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip.CLIP_VALUE, norm_type=clip.NORM_TYPE)
            return super().step(closure)

    return FullModelGradientClipping


def _make_optimizer(
    cfg: CfgNode, name: str, params: list, lr: float, setting: str
) -> torch.optim.Optimizer:
    if not params:
        raise ValueError(f"{setting} {name!r} has no trainable parameters to optimize")
    if name == "ADAMW":
        return _with_gradient_clipping(cfg, torch.optim.AdamW)(params, lr)
    if name == "ADAM":
        return _with_gradient_clipping(cfg, torch.optim.Adam)(params, lr)
    if name == "SGD":
        return _with_gradient_clipping(cfg, torch.optim.SGD)(
            params, lr, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV
        )
    raise ValueError(f"{setting} {name!r} unknown; use 'ADAMW', 'ADAM' or 'SGD'")


def build_optimizer(cfg: CfgNode, model: nn.Module):
    """SOLVER.OPTIMIZER over all parameters, or, with SOLVER.SECOND_OPTIMIZER.MODULES, a
    :class:`JointOptimizer` whose second optimizer (constant lr) owns those modules' parameters."""
    second = cfg.SOLVER.SECOND_OPTIMIZER
    modules = list(second.MODULES)
    main = _make_optimizer(
        cfg,
        cfg.SOLVER.OPTIMIZER,
        optimizer_param_groups(cfg, model, exclude=modules),
        cfg.SOLVER.BASE_LR,
        "SOLVER.OPTIMIZER",
    )
    if not modules:
        return main
    params = [
        p
        for name, module in model.named_children()
        if name in modules
        for p in module.parameters()
        if p.requires_grad
    ]
    missing = [m for m in modules if not hasattr(model, m)]
    if missing:
        raise ValueError(
            f"SOLVER.SECOND_OPTIMIZER.MODULES names {missing}, which the model does not have"
        )
    if not params:
        return main  # those modules are frozen in this stage
    return JointOptimizer(
        main,
        _make_optimizer(
            cfg,
            second.OPTIMIZER,
            [{"params": params}],
            second.BASE_LR,
            "SOLVER.SECOND_OPTIMIZER.OPTIMIZER",
        ),
    )


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer):
    """Detectron2's schedulers plus "WarmupPolyLR": lr * (1 - iter / MAX_ITER) ** POLY_LR_POWER."""
    optimizer = getattr(optimizer, "scheduled", optimizer)  # a JointOptimizer's first optimizer
    if cfg.SOLVER.LR_SCHEDULER_NAME != "WarmupPolyLR":
        return build_d2_lr_scheduler(cfg, optimizer)
    schedule = WarmupParamScheduler(
        PolynomialDecayParamScheduler(1.0, cfg.SOLVER.POLY_LR_POWER),
        cfg.SOLVER.WARMUP_FACTOR,
        min(cfg.SOLVER.WARMUP_ITERS / cfg.SOLVER.MAX_ITER, 1.0),
        cfg.SOLVER.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier=schedule, max_iter=cfg.SOLVER.MAX_ITER)


def iterations_for_epochs(epochs: float, num_images: int, images_per_batch: int) -> int:
    """Iterations that show each of ``num_images`` images ``epochs`` times at the batch size."""
    if epochs <= 0 or num_images <= 0 or images_per_batch <= 0:
        raise ValueError(
            f"an epoch schedule needs positive SOLVER.EPOCHS, images and SOLVER.IMS_PER_BATCH, got "
            f"{epochs}, {num_images}, {images_per_batch}"
        )
    return math.ceil(epochs * num_images / images_per_batch)


def with_epoch_schedule(cfg: CfgNode, num_images: int) -> CfgNode:
    """``cfg`` with SOLVER.MAX_ITER set from SOLVER.EPOCHS (> 0) and the training image count."""
    if cfg.SOLVER.EPOCHS <= 0:
        return cfg
    cfg = cfg.clone()
    cfg.defrost()
    cfg.SOLVER.MAX_ITER = iterations_for_epochs(
        cfg.SOLVER.EPOCHS, num_images, cfg.SOLVER.IMS_PER_BATCH
    )
    logger.info(
        f"SOLVER.EPOCHS {cfg.SOLVER.EPOCHS} x {num_images} training images / "
        f"{cfg.SOLVER.IMS_PER_BATCH} per batch: SOLVER.MAX_ITER = {cfg.SOLVER.MAX_ITER}"
    )
    cfg.freeze()
    return cfg
