"""The training loader keeps Detectron2's batches and, for a GPU, puts them in pinned memory
(DATALOADER.PIN_MEMORY): the DataLoader under the aspect-ratio grouping gets pin_memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detectron2.data.common import AspectRatioGroupedDataset

from zsseg_d2.engine import Trainer, load_config

TINY = str(Path(__file__).resolve().parents[1] / "configs" / "cel" / "tiny" / "camvid_8-3.yaml")


def _torch_loader(loader):
    return loader.dataset if isinstance(loader, AspectRatioGroupedDataset) else loader


@pytest.mark.parametrize(
    ("device", "pin", "grouping", "pinned"),
    [
        ("cuda", True, True, True),
        ("cuda", True, False, True),
        ("cuda", False, True, False),
        ("cpu", True, True, False),  # nothing to pin for
    ],
)
def test_pin_memory_follows_the_setting_and_the_device(shared_data, device, pin, grouping, pinned):
    cfg = load_config(TINY, ["DATALOADER.PIN_MEMORY", pin])
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = grouping
    cfg.MODEL.DEVICE = device
    loader = Trainer.build_train_loader(cfg)
    assert isinstance(loader, AspectRatioGroupedDataset) == grouping
    assert _torch_loader(loader).pin_memory is pinned


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinning needs a GPU")
def test_batches_arrive_pinned_on_a_gpu(shared_data):
    cfg = load_config(TINY)
    cfg.MODEL.DEVICE = "cuda"
    batch = next(iter(Trainer.build_train_loader(cfg)))
    assert all(x["image"].is_pinned() and x["sem_seg"].is_pinned() for x in batch)
