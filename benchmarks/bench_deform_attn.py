"""Speed of multi-scale deformable attention (pure-PyTorch path), forward + backward on CPU.

Mask2Former's setting at a 512x512 input: levels at strides 32/16/8 (16x16, 32x32, 64x64), batch 2,
256 channels, 8 heads, 4 points per level and head. Prints one JSON object per line.
"""
from __future__ import annotations

import json
import statistics
import time

import torch

from zsseg_d2.modeling.pixel_decoder.msdeform_pixel_decoder import DeformableEncoder
from zsseg_d2.modeling.pixel_decoder.ms_deform_attn import ms_deform_attn_core_pytorch

THREADS = 2
REPEATS = 3
BATCH, CHANNELS, HEADS, POINTS, LAYERS, FFN = 2, 256, 8, 4, 6, 1024
LEVEL_SIZES = [(16, 16), (32, 32), (64, 64)]


def _median_seconds(step, repeats: int = REPEATS) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_core() -> float:
    spatial_shapes = torch.tensor(LEVEL_SIZES, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    n_values = int(sizes.sum())
    value = torch.randn(BATCH, n_values, HEADS, CHANNELS // HEADS, requires_grad=True)
    locations = torch.rand(BATCH, n_values, HEADS, len(LEVEL_SIZES), POINTS, 2, requires_grad=True)
    weights = torch.rand(BATCH, n_values, HEADS, len(LEVEL_SIZES), POINTS).softmax(-1).requires_grad_()

    def step():
        out = ms_deform_attn_core_pytorch(value, spatial_shapes, level_start_index, locations, weights)
        out.square().mean().backward()

    return _median_seconds(step)


def bench_encoder() -> float:
    encoder = DeformableEncoder(CHANNELS, LAYERS, len(LEVEL_SIZES), HEADS, POINTS, FFN, 0.0, impl="pytorch")
    features = [torch.randn(BATCH, CHANNELS, h, w, requires_grad=True) for h, w in LEVEL_SIZES]
    positions = [torch.randn(BATCH, CHANNELS, h, w) for h, w in LEVEL_SIZES]

    def step():
        encoder.zero_grad(set_to_none=True)
        outputs = encoder(features, positions)
        sum(out.square().mean() for out in outputs).backward()

    return _median_seconds(step)


def main() -> None:
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    settings = {
        "batch": BATCH,
        "levels": LEVEL_SIZES,
        "channels": CHANNELS,
        "heads": HEADS,
        "points": POINTS,
        "threads": THREADS,
        "repeats": REPEATS,
        "device": "cpu",
    }
    print(json.dumps({
        "name": "ms_deform_attn_core_fwd_bwd",
        "value": round(bench_core(), 4),
        "unit": "s",
        "settings": settings,
    }))
    print(json.dumps({
        "name": "deformable_encoder_fwd_bwd",
        "value": round(bench_encoder(), 4),
        "unit": "s",
        "settings": {**settings, "layers": LAYERS, "dim_feedforward": FFN},
    }))


if __name__ == "__main__":
    main()
