"""The Relation Network's modules for segmentation (Zhang & Khriyenko, Sec. III-B, Fig. 6-9).

r_{i,j,k,c} = g(f_1(v_c) ⊕ f_2(x_{i,j,k})) (eq. 4): the word-embedding module f_1 (FC layers on the
class vector, tiled over the feature map), the image-embedding module f_2 (a backbone), and the
relation module g, one sigmoid score per pixel and (image, class) pair. Two relation modules:

- "unet_decoder" (Fig. 6, the U-Net rows): "relation module uses the same structure as the decoder
  of U-Net": for each pair, the VGG-16 encoder's pool5 map ⊕ the tiled class features goes through
  a U-Net decoder with the encoder's skip connections, up to the input resolution, then a 1x1
  convolution to the logit;
- "conv" (Fig. 7, the DeepLab rows: "FC layers as word embeddings and upsampling and CNN layers
  as relation module"): on one dense map, a 1x1 convolution of the concatenation, a 3x3
  convolution and a 1x1 convolution to the logit; the model upsamples the logits. The first
  1x1 convolution is linear, so it is computed as W_x f_2(x) + W_v f_1(v_c): the visual part once
  per image, the class part once per class (the same numbers, no B x C concatenated maps).

A pair is (image ``image_index[p]``, class features ``semantic[p]``): all B x C pairs at
inference and in a multi-class episode, one pair per image in binary ZLSS.
"""

from __future__ import annotations

import torch
from detectron2.layers import ShapeSpec
from torch import nn

from ...modeling.backbone import UNetDecoder

RELATION_MODULES = ("unet_decoder", "conv")


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


class ConvRelationModule(nn.Module):
    """g on one dense map ``in_feature``: logits ``[P, h, w]`` at that map's stride."""

    def __init__(
        self, in_feature: str, visual_channels: int, semantic_channels: int, channels: int
    ):
        super().__init__()
        self.in_feature = in_feature
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

    def fused_pairs(
        self, visual: torch.Tensor, semantic: torch.Tensor, image_index: torch.Tensor
    ) -> torch.Tensor:
        """The first 1x1 convolution on each pair's concatenation: ``[P, R, h, w]``."""
        return (
            self.visual_proj(visual)[image_index] + self.semantic_proj(semantic)[:, :, None, None]
        )

    def forward(
        self, features: dict[str, torch.Tensor], semantic: torch.Tensor, image_index: torch.Tensor
    ) -> torch.Tensor:
        return self.body(self.fused_pairs(features[self.in_feature], semantic, image_index))[:, 0]


class UNetRelationModule(nn.Module):
    """g as a U-Net decoder per pair over the VGG-16 encoder's maps: logits ``[P, H, W]``."""

    def __init__(self, shapes: dict[str, ShapeSpec], semantic_channels: int):
        super().__init__()
        missing = [k for k in ("pool5", *(f"block{i}" for i in range(1, 6))) if k not in shapes]
        if missing:
            raise ValueError(
                f"MODEL.RELATION_NET.RELATION_MODULE 'unet_decoder' needs the VGG-16 encoder's maps "
                f"(MODEL.BACKBONE.NAME build_vgg16_encoder_backbone); the backbone lacks {missing}"
            )
        self.skip_names = [f"block{i}" for i in range(5, 0, -1)]
        self.decoder = UNetDecoder(
            shapes["pool5"].channels + semantic_channels,
            [shapes[name].channels for name in self.skip_names],
        )
        self.score = nn.Conv2d(shapes["block1"].channels, 1, 1)

    def forward(
        self, features: dict[str, torch.Tensor], semantic: torch.Tensor, image_index: torch.Tensor
    ) -> torch.Tensor:
        bottom = features["pool5"][image_index]
        tiled = semantic[:, :, None, None].expand(-1, -1, *bottom.shape[-2:])
        skips = [features[name][image_index] for name in self.skip_names]
        return self.score(self.decoder(torch.cat([bottom, tiled], dim=1), skips))[:, 0]


class RelationHead(nn.Module):
    """f_1 and g together: backbone maps and class vectors -> relation logits (r = sigmoid)."""

    def __init__(self, word_embedding: WordEmbeddingModule, relation: nn.Module):
        super().__init__()
        self.word_embedding, self.relation = word_embedding, relation

    def forward(
        self, features: dict[str, torch.Tensor], class_vectors: torch.Tensor
    ) -> torch.Tensor:
        """Every (image, class) pair: ``[B, C, h, w]``."""
        batch = next(iter(features.values())).shape[0]
        classes = len(class_vectors)
        semantic = self.word_embedding(class_vectors)
        image_index = torch.arange(batch, device=semantic.device).repeat_interleave(classes)
        logits = self.relation(features, semantic.repeat(batch, 1), image_index)
        return logits.view(batch, classes, *logits.shape[-2:])

    def paired(
        self, features: dict[str, torch.Tensor], class_vectors: torch.Tensor
    ) -> torch.Tensor:
        """Image b with class vector b only (binary ZLSS): ``[B, 1, h, w]``."""
        semantic = self.word_embedding(class_vectors)
        image_index = torch.arange(len(class_vectors), device=semantic.device)
        return self.relation(features, semantic, image_index)[:, None]


def build_relation_head(
    relation_module: str,
    shapes: dict[str, ShapeSpec],
    in_feature: str,
    embed_dim: int,
    word_hidden: int,
    relation_channels: int,
) -> RelationHead:
    """The head of ``MODEL.RELATION_NET.RELATION_MODULE`` over a backbone of ``shapes``."""
    if relation_module not in RELATION_MODULES:
        raise ValueError(
            f"MODEL.RELATION_NET.RELATION_MODULE must be one of {RELATION_MODULES}, got {relation_module!r}"
        )
    if relation_module == "unet_decoder":
        relation = UNetRelationModule(shapes, word_hidden)
    else:
        if in_feature not in shapes:
            raise ValueError(
                f"MODEL.RELATION_NET.IN_FEATURE {in_feature!r} is not a backbone output; it has {sorted(shapes)}"
            )
        relation = ConvRelationModule(
            in_feature, shapes[in_feature].channels, word_hidden, relation_channels
        )
    return RelationHead(WordEmbeddingModule(embed_dim, word_hidden), relation)
