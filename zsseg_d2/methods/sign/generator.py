"""SIGN's generator G and discriminator D (Sec. 3.2), both applied to one pixel's vector at a time.

G maps a class's semantic embedding e = M(y) concatenated with the latent z to a synthetic
feature F^_x = G(e ⊕ z); D scores a feature as real (logit > 0) or synthetic (eq. 7).
"""

from __future__ import annotations

import torch
from torch import nn


class FeatureGenerator(nn.Module):
    """G(e ⊕ z): ``[N, E]`` embeddings and ``[N, Z]`` latents -> ``[N, D]`` synthetic features."""

    def __init__(self, embed_dim: int, latent_dim: int, hidden_dim: int, feature_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim + latent_dim, hidden_dim),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden_dim, feature_dim),
        )

    def forward(self, embeddings: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([embeddings, latent], dim=-1))


class FeatureDiscriminator(nn.Module):
    """D(f): ``[N, D]`` features -> ``[N]`` real-vs-synthetic logits."""

    def __init__(self, feature_dim: int, hidden_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(feature_dim, hidden_dim),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).squeeze(-1)
