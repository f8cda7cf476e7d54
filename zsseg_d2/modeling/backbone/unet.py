"""U-Net (Ronneberger et al. 2015) on a VGG-16 encoder, as the Relation Network uses it (Zhang &
Khriyenko, Fig. 6: ImageNet VGG-16 image embedding, U-Net decoder).

The encoder is :class:`VGG16Encoder` (the 13 conv layers, no fc6/fc7); the decoder goes back up
from pool5 to the input resolution: at each of the 5 steps a 2x transposed convolution, the
encoder map of that stride concatenated (the U-Net skip), and two 3x3 conv + ReLU layers of that
map's width. One output, ``"dense"``: BASE_CHANNELS channels at stride 1.

``build_vgg16_encoder_backbone`` gives the encoder alone, for a relation module that runs the
U-Net decoder itself on every (image, class) pair (the Relation Network's Fig. 6): the block
outputs ``"block1"`` .. ``"block5"`` (strides 1 .. 16) and ``"pool5"`` (stride 32).
"""

from __future__ import annotations

import torch
from detectron2.config import CfgNode
from detectron2.layers import ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from torch import nn

from .vgg import VGG16Encoder, load_torchvision_vgg16


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True),
    )  # fmt: skip


class UNetDecoder(nn.Module):
    """From the stride-32 map up to stride 1, with one skip per encoder block (widths given
    top-down by ``skip_channels``, e.g. 512, 512, 256, 128, 64)."""

    def __init__(self, bottom_channels: int, skip_channels: list[int]):
        super().__init__()
        self.center = _double_conv(bottom_channels, bottom_channels)
        ups, convs, channels = [], [], bottom_channels
        for skip in skip_channels:
            ups.append(nn.ConvTranspose2d(channels, skip, 2, stride=2))
            convs.append(_double_conv(2 * skip, skip))
            channels = skip
        self.ups, self.convs = nn.ModuleList(ups), nn.ModuleList(convs)

    def forward(self, bottom: torch.Tensor, skips_top_down: list[torch.Tensor]) -> torch.Tensor:
        x = self.center(bottom)
        for up, conv, skip in zip(self.ups, self.convs, skips_top_down):
            x = up(x)[
                ..., : skip.shape[-2], : skip.shape[-1]
            ]  # odd sides: ceil-mode pools overshoot
            x = conv(torch.cat([x, skip], dim=1))
        return x


class UNetVGG16(Backbone):
    def __init__(self, base_channels: int = 64):
        super().__init__()
        self.encoder = VGG16Encoder(base_channels)
        channels = self.encoder.block_channels
        self.decoder = UNetDecoder(channels[-1], channels[::-1])
        self.out_channels = channels[0]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skips, bottom = self.encoder(x)
        return {"dense": self.decoder(bottom, skips[::-1])}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"dense": ShapeSpec(channels=self.out_channels, stride=1)}

    @property
    def size_divisibility(self) -> int:
        return 32


@BACKBONE_REGISTRY.register()
def build_unet_vgg16_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> UNetVGG16:
    """U-Net on VGG-16 (``MODEL.VGG``; ImageNet weights for the encoder only): ``"dense"``, stride 1."""
    model = UNetVGG16(cfg.MODEL.VGG.BASE_CHANNELS)
    if cfg.MODEL.VGG.PRETRAINED:
        load_torchvision_vgg16(model.encoder, cfg.MODEL.VGG.PRETRAINED)
    return model


class VGG16EncoderBackbone(Backbone):
    """VGG-16's conv blocks: ``"block1"``.. ``"block5"`` before pooling and ``"pool5"``."""

    def __init__(self, base_channels: int = 64):
        super().__init__()
        self.encoder = VGG16Encoder(base_channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        skips, bottom = self.encoder(x)
        return {**{f"block{i + 1}": skip for i, skip in enumerate(skips)}, "pool5": bottom}

    def output_shape(self) -> dict[str, ShapeSpec]:
        channels = self.encoder.block_channels
        shapes = {
            f"block{i + 1}": ShapeSpec(channels=c, stride=2**i) for i, c in enumerate(channels)
        }
        return {**shapes, "pool5": ShapeSpec(channels=channels[-1], stride=32)}

    @property
    def size_divisibility(self) -> int:
        return 32


@BACKBONE_REGISTRY.register()
def build_vgg16_encoder_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> VGG16EncoderBackbone:
    """VGG-16's 13 conv layers (``MODEL.VGG``, ImageNet weights): the multi-scale block outputs."""
    model = VGG16EncoderBackbone(cfg.MODEL.VGG.BASE_CHANNELS)
    if cfg.MODEL.VGG.PRETRAINED:
        load_torchvision_vgg16(model.encoder, cfg.MODEL.VGG.PRETRAINED)
    return model
