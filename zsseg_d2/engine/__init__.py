"""Training and evaluation entry points shared by the tools."""

from .defaults import argument_parser, load_config, select_device, setup
from .launch import launch, launch_from_args
from .trainer import Trainer, unwrap

__all__ = [
    "Trainer",
    "argument_parser",
    "launch",
    "launch_from_args",
    "load_config",
    "select_device",
    "setup",
    "unwrap",
]
