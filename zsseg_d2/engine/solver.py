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


class JointOptimizer(torch.optim.Optimizer):
    """Several optimizers stepped as one (Detectron2's trainer and LR schedulers see one optimizer).

    ``param_groups`` are the inner optimizers' own group dicts, so a scheduler's learning rates
    reach them."""

    def __init__(self, optimizers: list):
        self.optimizers = list(optimizers)
        super().__init__([group for optimizer in self.optimizers for group in optimizer.param_groups], {})

    @torch.no_grad()
    def step(self, closure=None):
        for optimizer in self.optimizers:
            optimizer.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state_dict: dict) -> None:
        for optimizer, state in zip(self.optimizers, state_dict["optimizers"]):
            optimizer.load_state_dict(state)


def _generator_parameters(cfg: CfgNode, model: nn.Module) -> list:
    generator = getattr(model, "generator", None)
    if cfg.SOLVER.GENERATOR_LR <= 0 or generator is None:
        return []
    return [p for p in generator.parameters() if p.requires_grad]


def build_optimizer(cfg: CfgNode, model: nn.Module) -> torch.optim.Optimizer:
    """``SOLVER.OPTIMIZER`` over the model; a ``generator`` module (ZS3Net's GMMN) gets its own
    Adam at ``SOLVER.GENERATOR_LR`` when that is positive."""
    generator_params = _generator_parameters(cfg, model)
    generator_ids = {id(p) for p in generator_params}
    params = [group for group in optimizer_param_groups(cfg, model) if id(group["params"][0]) not in generator_ids]
    main = _main_optimizer(cfg, params)
    if not generator_params:
        return main
    return JointOptimizer([main, torch.optim.Adam(generator_params, lr=cfg.SOLVER.GENERATOR_LR)])


def _main_optimizer(cfg: CfgNode, params: list) -> torch.optim.Optimizer:
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
