"""Training and evaluation entry points shared by the tools."""
from .defaults import load_config, select_device, setup
from .launch import launch
from .trainer import Trainer, unwrap

__all__ = ["Trainer", "launch", "load_config", "select_device", "setup", "unwrap"]
