"""The generative moment matching network (GMMN, Li et al. 2015) of ZS3Net.

Wang, Farazi, Barnes, "Recursive Training for Zero-Shot Semantic Segmentation", section III-A: the
pseudo-feature generator maps a class's word embedding concatenated with Gaussian noise of the
same size to a pixel feature of the segmentation network; it is trained with the MMD of eq. 1
(and, in recursive training, the ZS-MMD of eq. 2). The layer sizes follow ZS3Net's public code:
one hidden layer (256), LeakyReLU(0.2), dropout 0.5.
"""

from __future__ import annotations

import torch
from torch import nn


class GMMNGenerator(nn.Module):
    """``[N, E]`` class embeddings (+ ``[N, E]`` standard-normal noise) -> ``[N, F]`` features."""

    def __init__(
        self, embed_dim: int, feature_dim: int, hidden_dim: int = 256, dropout: float = 0.5
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.mlp = nn.Sequential(
            nn.Linear(2 * embed_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, feature_dim),
        )
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.constant_(layer.bias, 0.01)

    def forward(self, embeddings: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if embeddings.ndim != 2 or embeddings.shape[1] != self.embed_dim:
            raise ValueError(
                f"GMMN expects [N, {self.embed_dim}] class embeddings, got {tuple(embeddings.shape)}"
            )
        if noise is None:
            noise = torch.randn_like(embeddings)
        return self.mlp(torch.cat([embeddings, noise], dim=1))
