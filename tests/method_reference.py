"""A fixed batch and a fixed, name-seeded set of weights for each method: what the behaviour test
compares a refactored model against.

``record(path)`` ran once on the code before the framework move (commit in the test's
docstring) and wrote ``tests/data/method_reference.npz``; ``evaluate_case`` computes the same
figures on today's code. The weights of every parameter and buffer are drawn from a generator
seeded by the CRC32 of its state-dict name, so they do not depend on the order modules are built in.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
IMAGE_SIZES = ((160, 200), (144, 176))  # (h, w): not square, not multiples of the padding
NUM_CAMVID_CLASSES = 11
CAMVID_VOID = 11


def write_fixture_images(folder: Path) -> list[dict]:
    """Two CamVid-format image/label pairs of coloured class blocks with noise; dataset dicts."""
    rng = np.random.default_rng(1234)
    palette = rng.integers(0, 256, size=(NUM_CAMVID_CLASSES + 1, 3))
    records = []
    folder.mkdir(parents=True, exist_ok=True)
    for index, (h, w) in enumerate(IMAGE_SIZES):
        label = np.zeros((h, w), dtype=np.uint8)
        for _ in range(14):
            y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
            label[y : y + rng.integers(8, h // 2), x : x + rng.integers(8, w // 2)] = rng.integers(
                0, NUM_CAMVID_CLASSES + 1
            )
        image = palette[label] + rng.integers(-30, 31, size=(h, w, 3))
        image_path, label_path = folder / f"img{index}.png", folder / f"lbl{index}.png"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(image_path)
        Image.fromarray(label).save(label_path)
        records.append(
            {
                "file_name": str(image_path),
                "sem_seg_file_name": str(label_path),
                "image_id": f"img{index}",
                "height": h,
                "width": w,
            }
        )
    return records


def seeded_init(model: torch.nn.Module) -> None:
    """Every state-dict entry drawn from a generator seeded by its name (sane scales per kind)."""
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict(keep_vars=True).items()):
            if not tensor.is_floating_point():
                continue
            generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float64)
            if tensor.dim() >= 2:
                fan_in = max(1, tensor[0].numel())
                values = noise / fan_in**0.5
            elif name.endswith("running_var"):
                values = 1.0 + 0.1 * noise.abs()
            elif name.endswith("weight"):
                values = 1.0 + 0.1 * noise
            else:
                values = 0.05 * noise
            tensor.copy_(values.to(tensor.dtype))


def _seed(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate_case(
    cfg,
    build_model: Callable,
    build_train_mapper: Callable,
    build_test_mapper: Callable,
    records: Sequence[dict],
    set_vocabulary: Callable = None,
) -> dict[str, np.ndarray]:
    """Training losses on the fixed batch and inference outputs of the seeded weights."""
    model = build_model(cfg)
    seeded_init(model)
    figures: dict[str, np.ndarray] = {}
    if cfg.DATASETS.TRAIN:
        mapper = build_train_mapper(cfg)
        _seed(7)
        batch = [mapper(dict(r)) for r in records]
        model.train()
        _seed(11)
        losses = model(batch)
        for key, value in sorted(losses.items()):
            figures[f"loss/{key}"] = np.array(float(value.detach()))
    model.eval()
    if set_vocabulary is not None:
        set_vocabulary(model)
    test_mapper = build_test_mapper(cfg)
    inputs = [test_mapper(dict(r)) for r in records]
    _seed(13)
    with torch.no_grad():
        outputs = model(inputs)
    for index, output in enumerate(outputs):
        scores = output.get("sem_seg")
        label = output["sem_seg_label"] if "sem_seg_label" in output else scores.argmax(dim=0)
        figures[f"pred/{index}/label"] = label.numpy().astype(np.uint8)
        if scores is not None:
            figures[f"pred/{index}/score_sum"] = np.array(float(scores.double().sum()))
        if "binary_sem_seg" in output:
            figures[f"pred/{index}/binary_sum"] = np.array(int(output["binary_sem_seg"].sum()))
    return figures
