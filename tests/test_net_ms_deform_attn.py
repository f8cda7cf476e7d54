"""Multi-scale deformable attention: the pure-PyTorch core against a hand-written bilinear loop."""

from __future__ import annotations

import math

import pytest
import torch

from zsseg_d2.methods.cel.pixel_decoder import ms_deform_attn
from zsseg_d2.methods.cel.pixel_decoder.ms_deform_attn import (
    MSDeformAttn,
    ms_deform_attn_core_pytorch,
)


def _level_layout(shapes: list) -> tuple:
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial_shapes.prod(1)
    return spatial_shapes, torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])


def _naive_core(value, shapes, locations, weights):
    """Explicit bilinear interpolation (pixel centres at (i + 0.5) / size, zeros outside)."""
    batch, _, n_heads, head_dim = value.shape
    _, n_queries, _, n_levels, n_points, _ = locations.shape
    out = torch.zeros(batch, n_queries, n_heads, head_dim, dtype=value.dtype)
    start = 0
    for level, (height, width) in enumerate(shapes):
        level_value = value[:, start : start + height * width].reshape(
            batch, height, width, n_heads, head_dim
        )
        start += height * width
        for b in range(batch):
            for q in range(n_queries):
                for h in range(n_heads):
                    for p in range(n_points):
                        x = float(locations[b, q, h, level, p, 0]) * width - 0.5
                        y = float(locations[b, q, h, level, p, 1]) * height - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        corners = [
                            (x0, y0, (x0 + 1 - x) * (y0 + 1 - y)),
                            (x0 + 1, y0, (x - x0) * (y0 + 1 - y)),
                            (x0, y0 + 1, (x0 + 1 - x) * (y - y0)),
                            (x0 + 1, y0 + 1, (x - x0) * (y - y0)),
                        ]
                        for cx, cy, bilinear in corners:
                            if 0 <= cx < width and 0 <= cy < height:
                                out[b, q, h] += (
                                    weights[b, q, h, level, p]
                                    * bilinear
                                    * level_value[b, cy, cx, h]
                                )
    return out.reshape(batch, n_queries, n_heads * head_dim)


def test_core_matches_naive_bilinear_loop():
    shapes = [(3, 4), (2, 5)]
    spatial_shapes, level_start_index = _level_layout(shapes)
    batch, n_queries, n_heads, head_dim, n_points = 2, 3, 2, 3, 2
    value = torch.randn(batch, 22, n_heads, head_dim)
    # Locations in [-0.3, 1.3]: some samples fall partly or wholly outside the maps.
    locations = torch.rand(batch, n_queries, n_heads, len(shapes), n_points, 2) * 1.6 - 0.3
    weights = torch.rand(batch, n_queries, n_heads, len(shapes), n_points)
    assert ((locations < 0) | (locations > 1)).any()

    got = ms_deform_attn_core_pytorch(value, spatial_shapes, level_start_index, locations, weights)
    expected = _naive_core(value, shapes, locations, weights)
    assert got.shape == (batch, n_queries, n_heads * head_dim)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_core_blocks_of_maps_match_naive_loop(monkeypatch):
    # Force one (batch, head) map per block: the blocked CPU path must give the same result.
    monkeypatch.setattr(ms_deform_attn, "_CPU_BLOCK_ELEMENTS", 1)
    shapes = [(2, 3), (3, 2)]
    spatial_shapes, level_start_index = _level_layout(shapes)
    value = torch.randn(2, 12, 3, 2)
    locations = torch.rand(2, 4, 3, 2, 2, 2) * 1.4 - 0.2
    weights = torch.rand(2, 4, 3, 2, 2)
    got = ms_deform_attn_core_pytorch(value, spatial_shapes, level_start_index, locations, weights)
    torch.testing.assert_close(
        got, _naive_core(value, shapes, locations, weights), atol=1e-5, rtol=1e-5
    )


def test_core_hand_derived_values():
    # One 2x2 level, values [[1, 2], [3, 4]]: the map's centre averages all four (2.5); the top-left
    # corner (0, 0) lies half a pixel outside both axes, so only pixel (0, 0) counts, with weight 1/4.
    spatial_shapes, level_start_index = _level_layout([(2, 2)])
    value = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 4, 1, 1)
    locations = torch.tensor([[0.5, 0.5], [0.0, 0.0], [0.75, 0.25]]).view(1, 3, 1, 1, 1, 2)
    weights = torch.tensor([1.0, 1.0, 0.5]).view(1, 3, 1, 1, 1)
    got = ms_deform_attn_core_pytorch(value, spatial_shapes, level_start_index, locations, weights)
    torch.testing.assert_close(
        got.flatten(), torch.tensor([2.5, 0.25, 1.0])
    )  # (0.75, 0.25) is pixel "2"


def test_core_gradcheck_float64():
    spatial_shapes, level_start_index = _level_layout([(2, 3), (1, 2)])
    value = torch.randn(1, 8, 2, 2, dtype=torch.float64, requires_grad=True)
    locations = (torch.rand(1, 2, 2, 2, 2, 2, dtype=torch.float64) * 1.2 - 0.1).requires_grad_()
    weights = torch.rand(1, 2, 2, 2, 2, dtype=torch.float64, requires_grad=True)

    def core(v, loc, w):
        return ms_deform_attn_core_pytorch(v, spatial_shapes, level_start_index, loc, w)

    assert torch.autograd.gradcheck(core, (value, locations, weights), eps=1e-6, atol=1e-5)


def test_module_output_shape_and_padding_mask():
    spatial_shapes, level_start_index = _level_layout([(4, 4), (2, 2), (1, 1)])
    attn = MSDeformAttn(d_model=16, n_levels=3, n_heads=4, n_points=2)
    query = torch.randn(2, 5, 16)
    reference_points = torch.rand(2, 5, 3, 2)
    value = torch.randn(2, 21, 16)
    out = attn(query, reference_points, value, spatial_shapes, level_start_index)
    assert out.shape == (2, 5, 16)

    # Padded values are zeroed: changing them must not change the output.
    padding_mask = torch.zeros(2, 21, dtype=torch.bool)
    padding_mask[:, :16] = True
    changed = value.clone()
    changed[:, :16] += 100.0
    masked = attn(query, reference_points, value, spatial_shapes, level_start_index, padding_mask)
    masked_changed = attn(
        query, reference_points, changed, spatial_shapes, level_start_index, padding_mask
    )
    torch.testing.assert_close(masked, masked_changed)
    assert not torch.allclose(masked, out)


def test_module_initial_sampling_pattern():
    # Deformable DETR's initialisation: head h's points lie on the ray at angle 2*pi*h/H, point k at
    # (k + 1) pixels (in the L-infinity sense) of each level.
    attn = MSDeformAttn(d_model=8, n_levels=2, n_heads=4, n_points=3)
    offsets = attn.sampling_offsets.bias.view(4, 2, 3, 2)
    expected_head_directions = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    for k in range(3):
        torch.testing.assert_close(
            offsets[:, 1, k], expected_head_directions * (k + 1), atol=1e-6, rtol=0
        )
    assert torch.count_nonzero(attn.attention_weights.weight) == 0


def test_compiled_kernel_only_used_for_cuda_inputs(monkeypatch):
    class _ExplodingKernel:
        def ms_deform_attn_forward(self, *args):
            raise AssertionError("the compiled kernel must not run on CPU inputs")

    monkeypatch.setattr(ms_deform_attn, "_compiled_msda", _ExplodingKernel())
    spatial_shapes, level_start_index = _level_layout([(2, 2)])
    attn = MSDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=1, impl="auto")
    out = attn(
        torch.randn(1, 3, 8),
        torch.rand(1, 3, 1, 2),
        torch.randn(1, 4, 8),
        spatial_shapes,
        level_start_index,
    )
    assert out.shape == (1, 3, 8)


def test_unknown_impl_is_rejected_with_the_setting_name():
    with pytest.raises(ValueError, match="DEFORMABLE_ATTN_IMPL"):
        MSDeformAttn(d_model=8, n_levels=1, n_heads=2, n_points=1, impl="cuda")
