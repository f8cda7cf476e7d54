"""A run's ``OUTPUT_DIR``: nothing of another run is overwritten without being asked, and the
``config.yaml`` in it always describes the checkpoints beside it.

- A training run (``tools/train_net.py``) into an ``OUTPUT_DIR`` that holds anything refuses to
  start, unless ``--resume`` (continue the run there) or ``--overwrite`` (first delete the files
  a run writes: checkpoints, ``last_checkpoint``, ``config.yaml``, ``metrics.json``, event files,
  logs and ``inference*/``; other files stay).
- ``config.yaml`` is written once the model's weights are loaded (:func:`save_config`), so a run
  that fails at start leaves the previous run's config, which matches its checkpoints.
- An evaluation (``--eval-only``) writes its results and its config to ``OUTPUT_DIR/inference``,
  or, when that holds earlier results, to the first free ``inference_<n>`` (n = 2, 3, ...);
  ``--overwrite`` empties ``inference`` first instead.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
from pathlib import Path

from detectron2.config import CfgNode
from detectron2.utils import comm

from ..utils.file_io import atomic_write

logger = logging.getLogger(__name__)

RUN_FILES = (
    "*.pth",
    "last_checkpoint",
    "config.yaml",
    "metrics.json",
    "events.out.tfevents.*",
    "log.txt*",
)
INFERENCE = "inference"
_LISTED = 8


def _entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def remove_run_files(folder: Path) -> list[str]:
    """Delete the files a run writes in ``folder`` (:data:`RUN_FILES`, ``inference*/``); return
    their names."""
    removed = []
    for path in sorted(p for pattern in RUN_FILES for p in folder.glob(pattern)):
        if path.is_file():
            path.unlink()
            removed.append(path.name)
    for path in sorted(folder.glob(f"{INFERENCE}*")):
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(f"{path.name}/")
    return removed


def prepare_output_dir(output_dir: str, *, resume: bool, overwrite: bool) -> None:
    """Before a training run: refuse a non-empty ``output_dir`` unless ``resume`` (continue there)
    or ``overwrite`` (delete the previous run's files first, see :func:`remove_run_files`)."""
    folder = Path(output_dir)
    entries = _entries(folder)
    if resume or not entries:
        return
    if not overwrite:
        shown = ", ".join(entries[:_LISTED]) + (", ..." if len(entries) > _LISTED else "")
        raise FileExistsError(
            f"OUTPUT_DIR {output_dir} is not empty ({shown}): a new run there would mix its files "
            f"with those. Pass --resume to continue the run in it, --overwrite to delete its "
            f"checkpoints, config, metrics, logs and inference results first, or set OUTPUT_DIR "
            f"to another folder"
        )
    removed = remove_run_files(folder)
    logger.warning(f"--overwrite: deleted {len(removed)} files of the previous run in {output_dir}")


def evaluation_folder(output_dir: str, overwrite: bool) -> Path:
    """The folder an evaluation writes its results and config to: ``OUTPUT_DIR/inference`` when it
    holds nothing (or with ``overwrite``, emptied first), else the first free ``inference_<n>``.
    Decided by the main process; every process gets the same folder."""
    folder = None
    if comm.is_main_process():
        base = Path(output_dir)
        if overwrite:
            shutil.rmtree(base / INFERENCE, ignore_errors=True)
        numbered = (base / f"{INFERENCE}_{n}" for n in itertools.count(2))
        folder = next(f for f in itertools.chain([base / INFERENCE], numbered) if not _entries(f))
        if folder.name != INFERENCE:
            logger.warning(
                f"{base / INFERENCE} holds earlier results: this evaluation writes to {folder} "
                f"(--overwrite replaces them instead)"
            )
    return comm.all_gather(folder)[0] if comm.get_world_size() > 1 else folder


def save_config(cfg: CfgNode, path: str | os.PathLike) -> None:
    """Write ``cfg`` to ``path`` (atomically, main process only)."""
    if comm.is_main_process():
        with atomic_write(path, "w") as f:
            f.write(cfg.dump())
        logger.info(f"Full config saved to {path}")
