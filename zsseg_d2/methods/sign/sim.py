"""SIGN's Spatial Information Module (Sec. 3.2-3.3, Table 2): F_x, z = SIM(E(x) ⊕ PE) (eq. 1).

The encoding module is residual: a 1x1 projection of features ⊕ PE, then either a multi-head
self-attention block over all pixels (the paper's best, Table 2 "Multi SA", the default) or
convolutional residual blocks ("Conv"). The reparameterisation module maps F_x to the mean and
log-variance of the latent z and samples z = mu + sigma * eps (the KL of eq. 2 is in
``modeling/losses/sign_losses.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .positional_encoding import PositionalEncoder

SIM_TYPES = ("multihead_attention", "conv")


class SIMOutput(NamedTuple):
    features: torch.Tensor  # F_x [B, D, H, W]
    latent: torch.Tensor  # z [B, Z, H, W]
    mean: torch.Tensor
    log_var: torch.Tensor


class SelfAttentionBlock(nn.Module):
    """Transformer-encoder layer over the H*W pixels (pre-norm; residual attention and FFN)."""

    def __init__(self, dim: int, heads: int, feedforward: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(dim, feedforward), nn.ReLU(inplace=True), nn.Linear(feedforward, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        normed = self.norm1(tokens)
        tokens = tokens + self.attention(normed, normed, normed, need_weights=False)[0]
        tokens = tokens + self.ffn(self.norm2(tokens))
        return tokens.transpose(1, 2).reshape(b, c, h, w)


class ConvResidualBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class SpatialInformationModule(nn.Module):
    def __init__(
        self,
        in_channels: int,
        positional_encoder: PositionalEncoder,
        feature_dim: int,
        latent_dim: int,
        sim_type: str = "multihead_attention",
        heads: int = 8,
        feedforward: int = 1024,
        blocks: int = 1,
    ):
        super().__init__()
        if sim_type not in SIM_TYPES:
            raise ValueError(f"MODEL.SIGN.SIM_TYPE must be one of {SIM_TYPES}, got {sim_type!r}")
        self.positional_encoder = positional_encoder
        self.feature_dim = feature_dim
        self.input_proj = nn.Conv2d(in_channels + positional_encoder.out_channels, feature_dim, 1)
        make_block = (
            (lambda: SelfAttentionBlock(feature_dim, heads, feedforward))
            if sim_type != "conv"
            else (lambda: ConvResidualBlock(feature_dim))
        )
        self.blocks = nn.Sequential(*[make_block() for _ in range(blocks)])
        self.mean = nn.Conv2d(feature_dim, latent_dim, 1)
        self.log_var = nn.Conv2d(feature_dim, latent_dim, 1)

    def forward(self, image_features: torch.Tensor) -> SIMOutput:
        features = self.blocks(self.input_proj(self.positional_encoder(image_features)))
        mean, log_var = self.mean(features), self.log_var(features)
        latent = reparameterize(mean, log_var) if self.training else mean
        return SIMOutput(features, latent, mean, log_var)


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """z = mu + exp(log_var / 2) * eps, eps ~ N(0, 1) (the reparameterisation trick)."""
    return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
