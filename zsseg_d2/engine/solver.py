"""Optimizer and learning-rate schedule in Mask2Former's recipe (AdamW, backbone multiplier, poly)."""
from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.solver import build_lr_scheduler as build_d2_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler
from fvcore.common.param_scheduler import PolynomialDecayParamScheduler
from torch import nn

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm, nn.modules.instancenorm._InstanceNorm)


def optimizer_param_groups(cfg: CfgNode, model: nn.Module) -> list:
    """One group per parameter: backbone lr x BACKBONE_MULTIPLIER, no decay on norms/embeddings."""
    groups, seen = [], set()
    for module_name, module in model.named_modules():
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
            groups.append({"params": [param], "lr": lr, "weight_decay": weight_decay})
    return groups


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


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    params = optimizer_param_groups(cfg, model)
    name = cfg.SOLVER.OPTIMIZER
    if name == "ADAMW":
        return _with_gradient_clipping(cfg, torch.optim.AdamW)(params, cfg.SOLVER.BASE_LR)
    if name == "SGD":
        return _with_gradient_clipping(cfg, torch.optim.SGD)(
            params, cfg.SOLVER.BASE_LR, momentum=cfg.SOLVER.MOMENTUM, nesterov=cfg.SOLVER.NESTEROV
        )
    raise ValueError(f"SOLVER.OPTIMIZER {name!r} unknown; use 'ADAMW' or 'SGD'")


def build_lr_scheduler(cfg: CfgNode, optimizer: torch.optim.Optimizer):
    """Detectron2's schedulers plus "WarmupPolyLR": lr * (1 - iter / MAX_ITER) ** POLY_LR_POWER."""
    if cfg.SOLVER.LR_SCHEDULER_NAME != "WarmupPolyLR":
        return build_d2_lr_scheduler(cfg, optimizer)
    schedule = WarmupParamScheduler(
        PolynomialDecayParamScheduler(1.0, cfg.SOLVER.POLY_LR_POWER),
        cfg.SOLVER.WARMUP_FACTOR,
        min(cfg.SOLVER.WARMUP_ITERS / cfg.SOLVER.MAX_ITER, 1.0),
        cfg.SOLVER.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier=schedule, max_iter=cfg.SOLVER.MAX_ITER)
