"""Multi-scale deformable attention (Zhu et al. 2021, "Deformable DETR", eq. 3).

Each query attends to ``n_points`` sampled locations per head and per feature level, around a
reference point, with learned offsets and softmax-normalised weights over all levels and points.
The sampling is done in pure PyTorch with ``F.grid_sample``; a compiled CUDA kernel (the
``MultiScaleDeformableAttention`` extension of Deformable DETR) is used only when it is importable,
the inputs are on CUDA and the implementation is ``"auto"``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import Function
from torch.autograd.function import once_differentiable

try:  # optional compiled kernel; everything works without it
    import MultiScaleDeformableAttention as _compiled_msda
except ImportError:
    _compiled_msda = None

DEFORMABLE_ATTN_IMPLS = ("auto", "pytorch")
# Sampled values per block of maps on CPU (16 MB in float32): small enough to stay in cache.
_CPU_BLOCK_ELEMENTS = 1 << 22


def compiled_kernel_available() -> bool:
    """Whether the compiled ``MultiScaleDeformableAttention`` extension could be imported."""
    return _compiled_msda is not None


def ms_deform_attn_core_pytorch(
    value: torch.Tensor,
    spatial_shapes: torch.Tensor,
    level_start_index: torch.Tensor,
    sampling_locations: torch.Tensor,
    attention_weights: torch.Tensor,
) -> torch.Tensor:
    """Weighted sum of bilinearly sampled values (the inner sums of eq. 3 of Deformable DETR).

    Batch and heads are folded into one dimension of B*H maps, and each level is sampled for all
    queries and points of those maps with one ``F.grid_sample``. On CPU the maps are taken in
    blocks so that the sampled values of a block stay cache-sized (the sampling and the weighted
    sum are memory-bound); on other devices all maps are one block.

    Args:
        value: [B, S, H, Dh], the per-head values of all levels, flattened and concatenated
            (``S = sum_l H_l * W_l``).
        spatial_shapes: [L, 2] long, the (H_l, W_l) of each level.
        level_start_index: [L] long, where each level starts in ``S`` (unused here: the levels
            are split by ``spatial_shapes``; kept for the compiled kernel's signature).
        sampling_locations: [B, Q, H, L, P, 2], (x, y) in [0, 1] relative to each level's
            extent; samples outside the map read zeros (``grid_sample``'s zero padding,
            ``align_corners=False``).
        attention_weights: [B, Q, H, L, P].

    Returns:
        [B, Q, H * Dh].
    """
    batch, _, n_heads, head_dim = value.shape
    _, n_queries, _, n_levels, n_points, _ = sampling_locations.shape
    n_maps = batch * n_heads
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    level_values = [
        level.flatten(2).transpose(1, 2).reshape(n_maps, head_dim, height, width)
        for level, (height, width) in zip(value.split([h * w for h, w in shapes], dim=1), shapes)
    ]
    grids = (
        (2 * sampling_locations - 1)
        .permute(3, 0, 2, 1, 4, 5)
        .reshape(n_levels, n_maps, n_queries, n_points, 2)
    )
    weights = attention_weights.permute(3, 0, 2, 1, 4).reshape(
        n_levels, n_maps, 1, n_queries, n_points
    )
    block = _maps_per_block(value, n_maps, sampled_per_map=head_dim * n_queries * n_points)
    outputs = []
    for start in range(0, n_maps, block):
        maps = slice(start, start + block)
        output = None
        for level in range(n_levels):
            sampled = F.grid_sample(
                level_values[level][maps],
                grids[level, maps],
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )  # [maps, Dh, Q, P]
            weighted = (sampled * weights[level, maps]).sum(-1)  # [maps, Dh, Q]
            output = weighted if output is None else output + weighted
        outputs.append(output)
    return torch.cat(outputs).view(batch, n_heads * head_dim, n_queries).transpose(1, 2)


def _maps_per_block(value: torch.Tensor, n_maps: int, sampled_per_map: int) -> int:
    if value.device.type != "cpu":
        return n_maps
    return max(1, _CPU_BLOCK_ELEMENTS // sampled_per_map)


class _CompiledMSDeformAttnFunction(Function):
    """Autograd wrapper of the compiled kernel's forward / backward entry points."""

    @staticmethod
    def forward(
        ctx, value, spatial_shapes, level_start_index, sampling_locations, attention_weights
    ):
        ctx.im2col_step = value.shape[0]
        ctx.save_for_backward(
            value, spatial_shapes, level_start_index, sampling_locations, attention_weights
        )
        return _compiled_msda.ms_deform_attn_forward(
            value,
            spatial_shapes,
            level_start_index,
            sampling_locations,
            attention_weights,
            ctx.im2col_step,
        )

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights = (
            ctx.saved_tensors
        )
        grad_value, grad_locations, grad_weights = _compiled_msda.ms_deform_attn_backward(
            value,
            spatial_shapes,
            level_start_index,
            sampling_locations,
            attention_weights,
            grad_output.contiguous(),
            ctx.im2col_step,
        )
        return grad_value, None, None, grad_locations, grad_weights


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention module (Deformable DETR, eq. 3).

    Args:
        d_model: channel width of queries and values.
        n_levels: number of feature levels attended to.
        n_heads: attention heads (``d_model`` must be divisible by it).
        n_points: sampling points per head and per level.
        impl: ``"auto"`` (compiled CUDA kernel when importable and inputs are on CUDA) or
            ``"pytorch"`` (always :func:`ms_deform_attn_core_pytorch`).
    """

    def __init__(
        self,
        d_model: int = 256,
        n_levels: int = 3,
        n_heads: int = 8,
        n_points: int = 4,
        impl: str = "auto",
    ):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(
                f"MSDeformAttn: d_model ({d_model}) must be divisible by n_heads ({n_heads})"
            )
        if impl not in DEFORMABLE_ATTN_IMPLS:
            raise ValueError(
                f"MSDeformAttn: impl {impl!r} is unknown (MODEL.SEM_SEG_HEAD.DEFORMABLE_ATTN_IMPL); "
                f"use one of {DEFORMABLE_ATTN_IMPLS}"
            )
        self.d_model, self.n_levels, self.n_heads, self.n_points = (
            d_model,
            n_levels,
            n_heads,
            n_points,
        )
        self.impl = impl
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's initialisation: head h initially samples along direction 2*pi*h/H,
        point k at distance k+1 (in pixels of each level); uniform attention weights."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        directions = torch.stack([angles.cos(), angles.sin()], dim=-1)
        directions = directions / directions.abs().max(dim=-1, keepdim=True).values
        distances = torch.arange(1, self.n_points + 1, dtype=torch.float32)
        offsets = directions[:, None, None, :] * distances[None, None, :, None]  # [H, 1, P, 2]
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(offsets.expand(-1, self.n_levels, -1, -1).reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for projection in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(projection.weight)
            nn.init.zeros_(projection.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value_input: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
        padding_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """
        Args:
            query: [B, Q, C] (with positional encoding added).
            reference_points: [B, Q, L, 2], (x, y) in [0, 1] on each level.
            value_input: [B, S, C], all levels flattened and concatenated.
            spatial_shapes: [L, 2] long (H_l, W_l); level_start_index: [L] long. Best on the CPU
                (the pixel decoder keeps them there): the pure-PyTorch path reads the shapes on
                the host, which costs a host-device sync per call when they live on a GPU.
            padding_mask: optional [B, S] bool, True where the value is padding (zeroed).

        Returns:
            [B, Q, C].
        """
        batch, n_queries, _ = query.shape
        n_values = value_input.shape[1]
        if spatial_shapes.shape[0] != self.n_levels:
            raise ValueError(
                f"MSDeformAttn: built for {self.n_levels} levels, got {spatial_shapes.shape[0]}"
            )
        value = self.value_proj(value_input)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], 0.0)
        value = value.view(batch, n_values, self.n_heads, self.d_model // self.n_heads)
        offsets = self.sampling_offsets(query).view(
            batch, n_queries, self.n_heads, self.n_levels, self.n_points, 2
        )
        weights = self.attention_weights(query).view(
            batch, n_queries, self.n_heads, self.n_levels * self.n_points
        )
        weights = weights.softmax(-1).view(
            batch, n_queries, self.n_heads, self.n_levels, self.n_points
        )
        # offsets are in pixels of each level
        level_sizes_xy = spatial_shapes.flip(-1).to(
            offsets.device, offsets.dtype, non_blocking=True
        )
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / level_sizes_xy[None, None, None, :, None, :]
        )
        if self._use_compiled_kernel(value):
            output = _CompiledMSDeformAttnFunction.apply(
                value,
                spatial_shapes.to(value.device, non_blocking=True),
                level_start_index.to(value.device, non_blocking=True),
                locations,
                weights,
            )
        else:
            output = ms_deform_attn_core_pytorch(
                value, spatial_shapes, level_start_index, locations, weights
            )
        return self.output_proj(output)

    def _use_compiled_kernel(self, value: torch.Tensor) -> bool:
        return self.impl == "auto" and _compiled_msda is not None and value.is_cuda
