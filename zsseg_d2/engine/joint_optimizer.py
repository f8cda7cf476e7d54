"""Two optimizers stepped as one, for models whose parts train with different algorithms
(SIGN: SGD for the encoder, SIM and classifier; Adam for the generator and discriminator).

``JointOptimizer`` offers what Detectron2's trainer, hooks and checkpointer use: ``zero_grad``,
``step``, ``param_groups`` (both optimizers' groups, the same dicts), ``state_dict`` and
``load_state_dict``. The LR schedule is built on ``scheduled`` (the first optimizer) only.
"""

from __future__ import annotations

import torch


class JointOptimizer:
    def __init__(self, scheduled: torch.optim.Optimizer, constant: torch.optim.Optimizer):
        self.scheduled, self.constant = scheduled, constant

    @property
    def param_groups(self) -> list:
        return self.scheduled.param_groups + self.constant.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.scheduled.zero_grad(set_to_none=set_to_none)
        self.constant.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None) -> None:
        self.scheduled.step()
        self.constant.step()

    def state_dict(self) -> dict:
        return {"scheduled": self.scheduled.state_dict(), "constant": self.constant.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.scheduled.load_state_dict(state["scheduled"])
        self.constant.load_state_dict(state["constant"])
