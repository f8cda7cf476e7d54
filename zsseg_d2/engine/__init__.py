"""Training and evaluation entry points shared by the tools."""

from .defaults import load_config, select_device, setup
from .launch import launch, launch_from_args
from .trainer import Trainer, unwrap

__all__ = [
    "Trainer",
    "launch",
    "launch_from_args",
    "load_config",
    "select_device",
    "setup",
    "unwrap",
]
