"""Speed of multi-scale deformable attention (pure-PyTorch path), forward + backward on CPU.

Mask2Former's setting at a 512x512 input: levels at strides 32/16/8 (16x16, 32x32, 64x64), batch 2,
256 channels, 8 heads, 4 points per level and head. The core is timed against an unblocked
baseline (all maps in one grid_sample per level, levels concatenated, then one weighted sum: the
usual pure-PyTorch formulation), interleaved so both see the same machine load. Prints one JSON
object per line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from zsseg_d2.methods.cel.pixel_decoder.ms_deform_attn import ms_deform_attn_core_pytorch
from zsseg_d2.methods.cel.pixel_decoder.msdeform_pixel_decoder import DeformableEncoder

THREADS = 2
REPEATS = 3
BATCH, CHANNELS, HEADS, POINTS, LAYERS, FFN = 2, 256, 8, 4, 6, 1024
LEVEL_SIZES = [(16, 16), (32, 32), (64, 64)]


def _median_seconds(*steps, repeats: int = REPEATS) -> list:
    """Median wall time of each step; the steps run interleaved, after one warm-up each."""
    times = [[] for _ in steps]
    for round_index in range(repeats + 1):
        for step, step_times in zip(steps, times):
            start = time.perf_counter()
            step()
            if round_index > 0:
                step_times.append(time.perf_counter() - start)
    return [statistics.median(step_times) for step_times in times]


def _core_unblocked(
    value, spatial_shapes, level_start_index, sampling_locations, attention_weights
):
    """The baseline: same maths as ms_deform_attn_core_pytorch, one block of all maps."""
    batch, _, n_heads, head_dim = value.shape
    _, n_queries, _, n_levels, n_points, _ = sampling_locations.shape
    shapes = spatial_shapes.tolist()
    grids = (2 * sampling_locations - 1).transpose(1, 2).flatten(0, 1)
    sampled = []
    for level, (level_value, (height, width)) in enumerate(
        zip(value.split([h * w for h, w in shapes], 1), shapes)
    ):
        maps = (
            level_value.flatten(2).transpose(1, 2).reshape(batch * n_heads, head_dim, height, width)
        )
        sampled.append(
            F.grid_sample(maps, grids[:, :, level], "bilinear", "zeros", align_corners=False)
        )
    weights = attention_weights.transpose(1, 2).reshape(
        batch * n_heads, 1, n_queries, n_levels * n_points
    )
    output = (torch.cat(sampled, dim=-1) * weights).sum(-1)
    return output.view(batch, n_heads * head_dim, n_queries).transpose(1, 2)


def bench_core() -> list:
    spatial_shapes = torch.tensor(LEVEL_SIZES, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    n_values = int(sizes.sum())
    value = torch.randn(BATCH, n_values, HEADS, CHANNELS // HEADS, requires_grad=True)
    locations = torch.rand(BATCH, n_values, HEADS, len(LEVEL_SIZES), POINTS, 2, requires_grad=True)
    weights = (
        torch.rand(BATCH, n_values, HEADS, len(LEVEL_SIZES), POINTS).softmax(-1).requires_grad_()
    )

    def step(core):
        out = core(value, spatial_shapes, level_start_index, locations, weights)
        out.square().mean().backward()

    return _median_seconds(lambda: step(ms_deform_attn_core_pytorch), lambda: step(_core_unblocked))


def bench_encoder() -> float:
    encoder = DeformableEncoder(
        CHANNELS, LAYERS, len(LEVEL_SIZES), HEADS, POINTS, FFN, 0.0, impl="pytorch"
    )
    features = [torch.randn(BATCH, CHANNELS, h, w, requires_grad=True) for h, w in LEVEL_SIZES]
    positions = [torch.randn(BATCH, CHANNELS, h, w) for h, w in LEVEL_SIZES]

    def step():
        encoder.zero_grad(set_to_none=True)
        outputs = encoder(features, positions)
        sum(out.square().mean() for out in outputs).backward()

    return _median_seconds(step)[0]


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
    core_seconds, baseline_seconds = bench_core()
    print(
        json.dumps(
            {
                "name": "ms_deform_attn_core_fwd_bwd",
                "value": round(core_seconds, 4),
                "unit": "s",
                "settings": settings,
            }
        )
    )
    print(
        json.dumps(
            {
                "name": "ms_deform_attn_core_unblocked_baseline_fwd_bwd",
                "value": round(baseline_seconds, 4),
                "unit": "s",
                "settings": settings,
            }
        )
    )
    print(
        json.dumps(
            {
                "name": "deformable_encoder_fwd_bwd",
                "value": round(bench_encoder(), 4),
                "unit": "s",
                "settings": {**settings, "layers": LAYERS, "dim_feedforward": FFN},
            }
        )
    )


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    main()
