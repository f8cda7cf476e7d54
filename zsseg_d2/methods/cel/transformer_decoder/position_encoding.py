"""Fixed 2-D sine positional encoding (Vaswani et al. 2017, extended to images as in DETR)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SinePositionEmbedding(nn.Module):
    """Encodes each pixel's normalised (y, x) position with sines and cosines.

    The output has ``2 * num_pos_feats`` channels: the first half encodes y, the second x.
    """

    def __init__(
        self, num_pos_feats: int, temperature: float = 10000.0, scale: float = 2 * math.pi
    ):
        super().__init__()
        if num_pos_feats % 2 != 0:
            raise ValueError(
                f"SinePositionEmbedding: num_pos_feats must be even, got {num_pos_feats}"
            )
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [B, C, H, W] (only its shape, device and dtype are used) -> [B, 2*num_pos_feats, H, W]."""
        batch, _, height, width = x.shape
        eps = 1e-6
        y_pos = torch.arange(1, height + 1, device=x.device, dtype=torch.float32)
        x_pos = torch.arange(1, width + 1, device=x.device, dtype=torch.float32)
        y_pos = y_pos / (height + eps) * self.scale
        x_pos = x_pos / (width + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, device=x.device, dtype=torch.float32)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats
        )
        enc_y = _interleave_sin_cos(y_pos[:, None] / dim_t)  # [H, F]
        enc_x = _interleave_sin_cos(x_pos[:, None] / dim_t)  # [W, F]
        pos = torch.cat(
            [
                enc_y[:, None, :].expand(height, width, -1),
                enc_x[None, :, :].expand(height, width, -1),
            ],
            dim=-1,
        )
        return pos.permute(2, 0, 1).unsqueeze(0).expand(batch, -1, -1, -1).to(x.dtype)


def _interleave_sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """[N, F] angles -> [N, F]: sin of the even columns and cos of the odd ones, interleaved."""
    return torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=-1).flatten(1)
