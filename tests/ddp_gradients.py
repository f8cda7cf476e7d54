"""One training step's gradients, for tests/test_multiprocess.py (not collected by pytest).

    python tests/ddp_gradients.py PROCESSES OUT.pt

Two fixed CamVid training samples go through the tiny model: with 1 process as one batch of two,
with 2 CPU processes (DDP, gloo) as one image each. Rank 0 saves the parameter gradients and the
images' mask counts. The losses' random points are made the same for every mask (each draw of
``torch.rand`` repeats one seeded row), so that the two runs differ only in how the batch is split.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.utils import comm
from torch.nn.parallel import DistributedDataParallel

import zsseg_d2  # noqa: F401  (registers data sets and model parts)
from zsseg_d2.data import build_dataset_mapper
from zsseg_d2.engine import launch, load_config

TINY = Path(__file__).resolve().parents[1] / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"
SAMPLE_INDICES = (0, 7)  # 7 and 6 ground-truth masks: per-process means would differ
_torch_rand = torch.rand


def rows_alike_rand(*size, device=None, dtype=None, **_) -> torch.Tensor:
    """``torch.rand`` whose every leading index repeats one seeded draw of the last two dims."""
    size = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
    row = _torch_rand(*size[-2:], generator=torch.Generator().manual_seed(0))
    return row.expand(*size).clone().to(device=device, dtype=dtype or row.dtype)


def training_samples(cfg) -> list:
    """The mapped samples, each drawn with its own seed so that both runs see the same crops."""
    mapper, records = build_dataset_mapper(cfg, is_train=True), DatasetCatalog.get("camvid_train")
    samples = []
    for index in SAMPLE_INDICES:
        random.seed(index), np.random.seed(index), torch.manual_seed(index)
        samples.append(mapper(records[index]))
    return samples


def step(out: str) -> None:
    cfg = load_config(str(TINY), ["MODEL.DEVICE", "cpu"])
    samples = training_samples(cfg)
    torch.manual_seed(0)
    model = build_model(cfg).train()
    world, rank = comm.get_world_size(), comm.get_rank()
    if world > 1:
        model = DistributedDataParallel(model, broadcast_buffers=False)
    torch.rand = rows_alike_rand
    batch = samples if world == 1 else samples[rank::world]
    sum(model(batch).values()).backward()
    if comm.is_main_process():
        grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
        masks = [len(sample["instances"]) for sample in samples]
        torch.save(
            {"grads": {k.removeprefix("module."): v for k, v in grads.items()}, "masks": masks}, out
        )


if __name__ == "__main__":
    processes, out = int(sys.argv[1]), sys.argv[2]
    launch(step, processes, args=(out,), use_cpu=True)
