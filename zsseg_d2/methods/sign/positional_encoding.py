"""SIGN's positional encodings of a feature map (Cheng et al. 2021, Sec. 3.3 and Table 3).

Each pixel gets a 600-d vector: 300 dims encode its horizontal position, 300 its vertical one, with
sin at even and cos at odd dims (eq. 11-14) at frequencies 10000^(2d/300). The variants:

- "relative" (RPE, the paper's): positions scaled to c * pos / W and c * pos / H, c = 512 (eq. 15-16),
  so an image of any size spans the same range of codes;
- "absolute" (APE): the raw pixel index pos;
- "absolute_interp" (APE with interpolation at test time): APE computed on the training feature
  size and bilinearly resized to the test feature size;
- "none": no encoding (the "w/o PE" row of Table 3).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PE_MODES = ("none", "absolute", "absolute_interp", "relative")


def sinusoid_1d(positions: torch.Tensor, dim: int = 300) -> torch.Tensor:
    """``[N, dim]``: sin(pos / 10000^(2d/dim)) at dim 2d and cos(...) at 2d+1 (eq. 11-14)."""
    if dim % 2:
        raise ValueError(f"positional-encoding dimension must be even, got {dim}")
    exponents = torch.arange(0, dim, 2, dtype=torch.float64, device=positions.device) / dim
    angles = positions.double()[:, None] / (10000.0**exponents)[None, :]
    encoding = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # interleave sin, cos
    return encoding.float()


def positional_encoding(
    height: int,
    width: int,
    mode: str = "relative",
    dim: int = 300,
    scale: float = 512.0,
    device: torch.device | None = None,
) -> torch.Tensor:
    """``[2 * dim, height, width]`` encoding of a feature map: horizontal dims first, then vertical.

    ``mode`` "relative" uses pos* = scale * pos / W (resp. H) (eq. 15-16); "absolute" uses pos."""
    if mode not in ("relative", "absolute"):
        raise ValueError(f"positional_encoding computes 'relative' or 'absolute', got {mode!r}")
    u = torch.arange(width, device=device, dtype=torch.float64)
    v = torch.arange(height, device=device, dtype=torch.float64)
    if mode == "relative":
        u, v = scale * u / width, scale * v / height
    horizontal = sinusoid_1d(u, dim).t()[:, None, :].expand(dim, height, width)
    vertical = sinusoid_1d(v, dim).t()[:, :, None].expand(dim, height, width)
    return torch.cat([horizontal, vertical], dim=0)


class PositionalEncoder(torch.nn.Module):
    """Appends the chosen encoding to a ``[B, C, H, W]`` feature map (the input of eq. 1)."""

    def __init__(
        self,
        mode: str = "relative",
        dim: int = 300,
        scale: float = 512.0,
        train_size: tuple[int, int] = (41, 41),
    ):
        super().__init__()
        if mode not in PE_MODES:
            raise ValueError(
                f"MODEL.SIGN.POSITIONAL_ENCODING must be one of {PE_MODES}, got {mode!r}"
            )
        self.mode, self.dim, self.scale, self.train_size = mode, dim, scale, tuple(train_size)

    @property
    def out_channels(self) -> int:
        return 0 if self.mode == "none" else 2 * self.dim

    def encoding(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        if self.mode == "relative":
            return positional_encoding(height, width, "relative", self.dim, self.scale, device)
        if self.mode == "absolute_interp" and not self.training:
            reference = positional_encoding(*self.train_size, "absolute", self.dim, device=device)
            return F.interpolate(
                reference[None], size=(height, width), mode="bilinear", align_corners=False
            )[0]
        return positional_encoding(height, width, "absolute", self.dim, device=device)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return features
        b, _, h, w = features.shape
        pe = self.encoding(h, w, features.device).to(features.dtype)
        return torch.cat([features, pe[None].expand(b, -1, -1, -1)], dim=1)
