"""Config set-up shared by the tools: zsseg_d2 options, YAML, command-line overrides, device."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import logging
import os
from collections.abc import Iterator, Sequence

import torch
from detectron2.config import CfgNode, get_cfg
from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser
from detectron2.utils import comm
from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.env import seed_all_rng
from detectron2.utils.logger import setup_logger

from ..config import RENAMED_ARCHITECTURES, add_zsseg_config
from ..data import register_spec_files
from .output_dir import prepare_output_dir

logger = logging.getLogger(__name__)


def select_device(cfg: CfgNode) -> None:
    """Use the CPU when ``MODEL.DEVICE`` asks for CUDA on a machine without a GPU, with a warning
    (in ``log.txt`` too when called after logging is set up, as :func:`setup` does)."""
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.warning(
            f"MODEL.DEVICE {cfg.MODEL.DEVICE} asked for, but PyTorch sees no GPU "
            f"(torch.cuda.is_available() is False): running on the cpu instead, much slower. Pass "
            f"MODEL.DEVICE cpu to choose the CPU yourself"
        )
        cfg.MODEL.DEVICE = "cpu"


def check_dataset_names(cfg: CfgNode) -> None:
    """Fail at start-up, not hours later, when ``DATASETS.TRAIN``/``TEST`` name an unregistered set."""
    registered = DatasetCatalog.list()
    for key in ("TRAIN", "TEST"):
        for name in cfg.DATASETS[key]:
            if name not in registered:
                close = difflib.get_close_matches(name, registered, n=3)
                raise KeyError(
                    f"DATASETS.{key} names {name!r}, which is not a registered data set"
                    + (f"; did you mean {close}?" if close else "")
                    + " The zsseg_d2 sets are listed in datasets/README.md; register your own with a "
                    "data-set spec file in DATASETS.SPEC_FILES (see datasets/README.md)"
                )


def _flat_keys(node: CfgNode, prefix: str = "") -> list[str]:
    keys = []
    for key, value in node.items():
        keys += (
            _flat_keys(value, f"{prefix}{key}.")
            if isinstance(value, CfgNode)
            else [f"{prefix}{key}"]
        )
    return keys


@contextlib.contextmanager
def _unknown_keys_named(cfg: CfgNode, source: str) -> Iterator[None]:
    """Re-raise yacs' unknown-key errors as a KeyError naming ``source`` and the closest keys."""
    try:
        yield
    except (KeyError, AssertionError) as error:
        message = str(error.args[0]) if error.args else ""
        if "Non-existent" not in message:
            raise
        close = difflib.get_close_matches(message.split()[-1], _flat_keys(cfg), n=3)
        hint = f"; did you mean {close}?" if close else ""
        raise KeyError(f"{message}{hint} (in {source})") from error


def load_config(config_file: str, opts: Sequence = (), device_fallback: bool = True) -> CfgNode:
    """Defaults + zsseg_d2 options + ``config_file`` (``_BASE_`` chains) + ``KEY VALUE`` overrides;
    with ``device_fallback``, the CPU when ``MODEL.DEVICE`` is CUDA and there is no GPU
    (:func:`select_device`).

    The YAML is read with ``yaml.safe_load`` only (Detectron2 would fall back to unsafe loading);
    command-line values are parsed as literals, never evaluated.
    """
    if not os.path.isfile(config_file):
        raise FileNotFoundError(
            f"config file {config_file!r} not found; pass --config-file configs/...yaml"
        )
    cfg = get_cfg()
    add_zsseg_config(cfg)
    with _unknown_keys_named(cfg, f"config file {config_file}"):
        try:
            cfg.merge_from_file(config_file, allow_unsafe=False)
        except FileNotFoundError as error:
            raise FileNotFoundError(
                f"config file {config_file} (or a file it inherits from) names _BASE_ {error.filename!r}, "
                f"which does not exist; fix that _BASE_ path (it is relative to the file that names it)"
            ) from error
    with _unknown_keys_named(cfg, "the command-line options"):
        cfg.merge_from_list(list(opts))
    renamed = RENAMED_ARCHITECTURES.get(cfg.MODEL.META_ARCHITECTURE)
    if renamed:
        raise KeyError(
            f"MODEL.META_ARCHITECTURE {cfg.MODEL.META_ARCHITECTURE!r} was renamed to {renamed!r}; "
            f"update {config_file} (or the option given on the command line)"
        )
    if device_fallback:
        select_device(cfg)
    register_spec_files(cfg.DATASETS.SPEC_FILES)
    check_dataset_names(cfg)
    return cfg


def argument_parser() -> argparse.ArgumentParser:
    """Detectron2's command line (``--config-file``, ``--resume``, ``--eval-only``,
    ``--num-gpus``, ...) plus ``--overwrite``."""
    parser = default_argument_parser()
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="train into an OUTPUT_DIR that holds another run: delete its checkpoints, config, "
        "metrics, logs and inference results first (with --eval-only: replace the results in "
        "OUTPUT_DIR/inference)",
    )
    return parser


def setup(args: argparse.Namespace) -> CfgNode:
    """The tools' set-up: config; for training, an ``OUTPUT_DIR`` that holds no other run
    (:func:`~zsseg_d2.engine.output_dir.prepare_output_dir`, checked by the main process);
    logging to ``OUTPUT_DIR/log.txt`` (the CPU fallback included); the seed. Like Detectron2's
    ``default_setup``, except that ``config.yaml`` is written later, by
    :func:`~zsseg_d2.engine.output_dir.save_config`, once the weights are loaded."""
    cfg = load_config(args.config_file, args.opts, device_fallback=False)
    if comm.is_main_process() and not args.eval_only:
        prepare_output_dir(cfg.OUTPUT_DIR, resume=args.resume, overwrite=args.overwrite)
    comm.synchronize()
    rank = comm.get_rank()
    if comm.is_main_process():
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    for name in ("fvcore", "detectron2", "zsseg_d2"):
        setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=rank, name=name)
    select_device(cfg)
    cfg.freeze()
    logger.info(f"Rank of current process: {rank}. World size: {comm.get_world_size()}")
    logger.info("Environment info:\n" + collect_env_info())
    logger.info(f"Command line arguments: {args}")
    logger.info(f"Running with full config:\n{cfg.dump()}")
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + rank)
    if not args.eval_only:
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
    return cfg
