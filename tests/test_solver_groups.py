"""The optimizer's parameter groups: one per (lr, weight decay), each parameter with the rate and
decay of Mask2Former's recipe, updating exactly as one group per parameter did; a checkpoint of
the old layout is refused with what to do."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from detectron2.config import get_cfg
from torch import nn

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.engine import Trainer
from zsseg_d2.engine.solver import build_optimizer


class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.head = nn.ModuleDict(
            {"linear": nn.Linear(4, 2), "norm": nn.LayerNorm(2), "embed": nn.Embedding(3, 2)}
        )


def _cfg():
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.SOLVER.BASE_LR, cfg.SOLVER.BACKBONE_MULTIPLIER = 1.0, 0.1
    cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.WEIGHT_DECAY_NORM = 0.05, 0.0
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.01
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = False
    return cfg


def test_one_group_per_rate_and_decay_in_module_order():
    model = _Model()
    names = {param: name for name, param in model.named_parameters()}
    groups = [
        (g["lr"], g["weight_decay"], [names[p] for p in g["params"]])
        for g in build_optimizer(_cfg(), model).param_groups
    ]
    assert groups == [
        (pytest.approx(0.1), 0.05, ["backbone.0.weight", "backbone.0.bias"]),
        (pytest.approx(0.1), 0.0, ["backbone.1.weight", "backbone.1.bias"]),
        (1.0, 0.05, ["head.linear.weight", "head.linear.bias"]),
        (1.0, 0.0, ["head.norm.weight", "head.norm.bias"]),
        (1.0, 0.01, ["head.embed.weight"]),
    ]


@pytest.mark.parametrize("foreach", [False, True])  # True: the multi-tensor path GPUs take
def test_merged_groups_update_as_one_group_per_parameter(foreach):
    torch.manual_seed(0)
    merged_model = _Model()
    single_model = _Model()
    single_model.load_state_dict(merged_model.state_dict())
    merged = build_optimizer(_cfg(), merged_model)
    single = torch.optim.AdamW(
        [
            {**{k: v for k, v in g.items() if k != "params"}, "params": [p]}
            for g in build_optimizer(_cfg(), single_model).param_groups
            for p in g["params"]
        ],
        lr=1.0,
    )
    for optimizer in (merged, single):
        for group in optimizer.param_groups:
            group["foreach"] = foreach
    for step in range(3):
        grads = torch.Generator().manual_seed(step)
        for a, b in zip(merged_model.parameters(), single_model.parameters()):
            a.grad = torch.randn(a.shape, generator=grads)
            b.grad = a.grad.clone()
        merged.step()
        single.step()
    for (name, a), b in zip(merged_model.named_parameters(), single_model.parameters()):
        assert torch.equal(a, b), name


def test_checkpoint_with_other_groups_is_refused():
    optimizer = build_optimizer(_cfg(), _Model())
    old_layout = torch.optim.AdamW([{"params": [p]} for p in _Model().parameters()], lr=1.0)
    trainer = SimpleNamespace(optimizer=optimizer)
    with pytest.raises(ValueError, match="has 9 parameter groups, this run's 5.*MODEL.WEIGHTS"):
        Trainer.load_state_dict(trainer, {"optimizer": old_layout.state_dict()})
