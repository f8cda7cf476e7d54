"""Heads of the Seenmask Zero-shot Network (Doshi 2018, sections 4.2 and 5.2): on the fc7 map, a
1x1 convolution then a 32x transposed convolution initialised to bilinear interpolation (FCN-32s,
no skip layers): the visual-embedding head (j channels), the seenmask head (2 channels) and, for
the FCN-S baseline, a softmax classifier head (one channel per seen class)."""

from __future__ import annotations

import torch
from detectron2.config import CfgNode, configurable
from detectron2.layers import ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from torch import nn


def bilinear_upsampling_weight(factor: int) -> torch.Tensor:
    """[2f, 2f] transposed-conv kernel that upsamples by ``factor`` with bilinear interpolation
    (FCN's initialisation)."""
    center = factor - 0.5
    ramp = 1 - (torch.arange(2 * factor, dtype=torch.float64) - center).abs() / factor
    return (ramp[:, None] * ramp[None, :]).float()


class UpsamplingHead(nn.Module):
    """1x1 conv to ``out_channels``, then ``factor``x transposed conv (kernel 2f, stride f, padding
    f/2: an n-pixel side becomes n*f), bilinear at start and frozen unless ``learn_upsampling``.
    The transposed conv is channel-wise (FCN's bilinear initialisation mixes no channels; a full
    j x j x 64 x 64 kernel would cost j times the compute for the same start)."""

    def __init__(
        self, in_channels: int, out_channels: int, factor: int = 32, learn_upsampling: bool = False
    ):
        super().__init__()
        self.score = nn.Conv2d(in_channels, out_channels, 1)
        if factor == 1:  # a stride-1 backbone (U-Net): nothing to upsample
            self.upsample = nn.Identity()
            return
        if factor % 2:
            raise ValueError(
                f"the upsampling head needs an even backbone stride (or 1), got {factor}"
            )
        self.upsample = nn.ConvTranspose2d(
            out_channels,
            out_channels,
            2 * factor,
            stride=factor,
            padding=factor // 2,
            groups=out_channels,
            bias=False,
        )
        with torch.no_grad():
            self.upsample.weight.copy_(
                bilinear_upsampling_weight(factor).expand_as(self.upsample.weight)
            )
        self.upsample.weight.requires_grad_(learn_upsampling)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.score(features))


@SEM_SEG_HEADS_REGISTRY.register()
class SZNHead(nn.Module):
    """``forward(features)`` -> {"embedding": [N, j, H, W], "seenmask": [N, 2, H, W]}, or
    {"class_logits": [N, classes, H, W]} for the softmax baseline (``num_classes`` > 0)."""

    @configurable
    def __init__(
        self,
        *,
        in_channels: int,
        stride: int,
        embed_dim: int,
        num_classes: int = 0,
        learn_upsampling: bool = False,
    ):
        super().__init__()
        heads = (
            {"class_logits": num_classes}
            if num_classes > 0
            else {"embedding": embed_dim, "seenmask": 2}
        )
        self.heads = nn.ModuleDict(
            {
                name: UpsamplingHead(in_channels, channels, stride, learn_upsampling)
                for name, channels in heads.items()
            }
        )

    @classmethod
    def from_config(
        cls, cfg: CfgNode, input_shape: dict[str, ShapeSpec], embed_dim: int, num_classes: int = 0
    ) -> dict:
        dense = input_shape["dense"]
        return {
            "in_channels": dense.channels,
            "stride": dense.stride,
            "embed_dim": embed_dim,
            "num_classes": num_classes,
            "learn_upsampling": cfg.MODEL.SZN.LEARN_UPSAMPLING,
        }

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: head(features["dense"]) for name, head in self.heads.items()}
