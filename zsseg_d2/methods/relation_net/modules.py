"""The Relation Network's modules for segmentation (Zhang & Khriyenko, Sec. III-B, Fig. 7-9).

r_{i,j,k,c} = g(f_1(v_c) ⊕ f_2(x_{i,j,k})) (eq. 4): the word-embedding module f_1 (FC layers on the
class vector, tiled over the feature map), the image-embedding module f_2 (a backbone), and the
relation module g (convolutions on the concatenation, one sigmoid score per pixel and class).

g starts with a 1x1 convolution of the concatenation [f_2(x); tiled f_1(v_c)]. That convolution is
linear, so it equals W_x f_2(x) + W_v f_1(v_c): the visual part is computed once per image and the
class part once per class, and the (image, class) pairs are formed by a broadcast sum instead of
materialising B x C concatenated maps (the same numbers, far less memory at U-Net's stride 1).
"""

from __future__ import annotations

import torch
from torch import nn


class WordEmbeddingModule(nn.Module):
    """f_1: ``[C, E]`` class vectors -> ``[C, H]`` semantic features (two FC layers with ReLU)."""

    def __init__(self, embed_dim: int, hidden_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(embed_dim, hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, class_vectors: torch.Tensor) -> torch.Tensor:
        return self.net(class_vectors)


class RelationModule(nn.Module):
    """g: (visual map, class features) pairs -> one relation logit per pixel and pair.

    1x1 convolution of the concatenation (as the sum of its two parts), then 3x3 convolutions with
    batch norm and ReLU, then a 1x1 convolution to the logit (sigmoid gives r in (0, 1))."""

    def __init__(self, visual_channels: int, semantic_channels: int, channels: int):
        super().__init__()
        self.visual_proj = nn.Conv2d(visual_channels, channels, 1)
        self.semantic_proj = nn.Linear(semantic_channels, channels, bias=False)
        self.body = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 1, 1),
        )

    def fused_pairs(self, visual: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        """The first 1x1 convolution on every (image, class) concatenation: ``[B * C, R, h, w]``."""
        pairs = (
            self.visual_proj(visual)[:, None] + self.semantic_proj(semantic)[None, :, :, None, None]
        )
        return pairs.flatten(0, 1)

    def forward(self, visual: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        logits = self.body(self.fused_pairs(visual, semantic))[:, 0]
        return logits.view(visual.shape[0], semantic.shape[0], *logits.shape[-2:])


class RelationHead(nn.Module):
    """f_1 and g together: visual ``[B, V, h, w]`` and class vectors ``[C, E]`` -> relation logits
    ``[B, C, h, w]`` (r = their sigmoid)."""

    def __init__(
        self, visual_channels: int, embed_dim: int, word_hidden: int, relation_channels: int
    ):
        super().__init__()
        self.word_embedding = WordEmbeddingModule(embed_dim, word_hidden)
        self.relation = RelationModule(visual_channels, word_hidden, relation_channels)

    def forward(self, visual: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
        return self.relation(visual, self.word_embedding(class_vectors))
