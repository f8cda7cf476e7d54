"""The Relation Network's modules for segmentation (Zhang & Khriyenko, Sec. III-B, Fig. 7-9).

r_{i,j,k,c} = g(f_1(v_c) ⊕ f_2(x_{i,j,k})) (eq. 4): the word-embedding module f_1 (FC layers on the
class vector, tiled over the feature map), the image-embedding module f_2 (a backbone), and the
relation module g (convolutions on the concatenation, one sigmoid score per pixel and class).
"""
from __future__ import annotations

import torch
from torch import nn


class WordEmbeddingModule(nn.Module):
    """f_1: ``[C, E]`` class vectors -> ``[C, H]`` semantic features (two FC layers with ReLU)."""

    def __init__(self, embed_dim: int, hidden_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, hidden_dim), nn.ReLU(inplace=True))

    def forward(self, class_vectors: torch.Tensor) -> torch.Tensor:
        return self.net(class_vectors)


def tile_pairs(visual: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
    """Every (image, class) pair: ``[B, V, h, w]`` and ``[C, H]`` -> ``[B * C, V + H, h, w]``, the
    class features repeated over the map (image-major: pair b * C + c)."""
    b, _, h, w = visual.shape
    c = semantic.shape[0]
    visual = visual[:, None].expand(b, c, *visual.shape[1:])
    semantic = semantic[None, :, :, None, None].expand(b, c, semantic.shape[1], h, w)
    return torch.cat([visual, semantic], dim=2).flatten(0, 1)


class RelationModule(nn.Module):
    """g: concatenated pair features -> one relation logit per pixel (sigmoid gives r in (0, 1))."""

    def __init__(self, in_channels: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, 1, 1),
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        return self.net(pairs)[:, 0]


class RelationHead(nn.Module):
    """f_1, tiling and g together: visual ``[B, V, h, w]`` and class vectors ``[C, E]`` ->
    relation logits ``[B, C, h, w]`` (r = sigmoid of them)."""

    def __init__(self, visual_channels: int, embed_dim: int, word_hidden: int, relation_channels: int):
        super().__init__()
        self.word_embedding = WordEmbeddingModule(embed_dim, word_hidden)
        self.relation = RelationModule(visual_channels + word_hidden, relation_channels)

    def forward(self, visual: torch.Tensor, class_vectors: torch.Tensor) -> torch.Tensor:
        logits = self.relation(tile_pairs(visual, self.word_embedding(class_vectors)))
        return logits.view(visual.shape[0], class_vectors.shape[0], *logits.shape[-2:])
