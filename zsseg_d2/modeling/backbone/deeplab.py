"""DeepLab-v2 and DeepLab-v3+ on a dilated ResNet, as pixel-feature backbones.

Both return ONE feature map under the key ``"dense"`` (the pixel-wise methods' interface): a
per-pixel feature that a 1x1 classifier (or a semantic projection) reads.

- DeepLab-v3+ (Chen et al. 2018), the segmentation network of ZS3Net and of the recursive
  ZS-MMD training (Wang et al., section III-A): ResNet at output stride 16, ASPP, and the decoder
  that fuses the stride-4 features; the output is the decoder's 256-channel map at stride 4, the
  feature before the final 1x1 pixel classifier.
- DeepLab-v3 (Chen et al. 2017, "Rethinking atrous convolution"), the Relation Network's image
  embedding (Zhang & Khriyenko, Fig. 7: torchvision's DeepLab-v3 "removing its last 4 classifier
  layers", i.e. up to its ASPP): ResNet at output stride 8 or 16 and ASPP; the ASPP output is the
  feature.
- DeepLab-v2 (Chen et al. 2017): ResNet at output stride 8 and ASPP-L, four parallel 3x3
  convolutions with dilations 6, 12, 18, 24 whose outputs are summed; the sum is the feature.

The trunk is Detectron2's ResNet (``detectron2.modeling.backbone.resnet``) with bottleneck blocks,
its strides replaced by dilations below the output stride, so Detectron2's ImageNet checkpoints
(``MODEL.WEIGHTS detectron2://ImageNetPretrained/torchvision/R-101.pkl``) load by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from detectron2.config import CfgNode
from detectron2.layers import ASPP, Conv2d, ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone import Backbone
from detectron2.modeling.backbone.resnet import BasicStem, BottleneckBlock, ResNet
from torch import nn

_BLOCKS_PER_DEPTH = {50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}
_STAGES = ("res2", "res3", "res4", "res5")


def blocks_per_stage(cfg: CfgNode) -> list[int]:
    """``MODEL.DEEPLAB.BLOCKS_PER_STAGE`` when set (tiny models), else the blocks of ``MODEL.RESNETS.DEPTH``."""
    custom = list(cfg.MODEL.DEEPLAB.BLOCKS_PER_STAGE)
    if custom:
        if len(custom) != 4 or min(custom) < 1:
            raise ValueError(
                f"MODEL.DEEPLAB.BLOCKS_PER_STAGE must be 4 positive block counts, got {custom}"
            )
        return custom
    depth = cfg.MODEL.RESNETS.DEPTH
    if depth not in _BLOCKS_PER_DEPTH:
        raise ValueError(
            f"DeepLab needs a bottleneck ResNet (dilated 3x3 convolutions): MODEL.RESNETS.DEPTH must be one of "
            f"{sorted(_BLOCKS_PER_DEPTH)}, got {depth}. For a small model set MODEL.DEEPLAB.BLOCKS_PER_STAGE "
            f"(e.g. [1, 1, 1, 1]) and MODEL.RESNETS.RES2_OUT_CHANNELS / WIDTH_PER_GROUP"
        )
    return _BLOCKS_PER_DEPTH[depth]


def stage_dilations(output_stride: int) -> list[int]:
    """Dilation of res2..res5 so the trunk stops down-sampling at ``output_stride`` (4, 8, 16, 32)."""
    if output_stride not in (4, 8, 16, 32):
        raise ValueError(f"DeepLab output stride must be 4, 8, 16 or 32, got {output_stride}")
    dilations, stride = [], 4
    for index in range(4):
        downsample = index > 0 and stride < output_stride
        stride *= 2 if downsample else 1
        previous = dilations[-1] if dilations else 1
        dilations.append(previous if downsample or index == 0 else previous * 2)
    return dilations


def build_dilated_resnet(
    cfg: CfgNode,
    input_shape: ShapeSpec,
    output_stride: int,
    out_features: Sequence[str],
    multi_grid: Sequence[int] = (1,),
) -> ResNet:
    """Detectron2's bottleneck ResNet whose stages after ``output_stride`` dilate instead of striding.

    The last stage's blocks multiply its dilation by ``multi_grid`` (DeepLab-v3's multi-grid,
    cycled when the stage has another number of blocks)."""
    res = cfg.MODEL.RESNETS
    norm = res.NORM
    stem = BasicStem(
        in_channels=input_shape.channels, out_channels=res.STEM_OUT_CHANNELS, norm=norm
    )
    in_channels, out_channels = res.STEM_OUT_CHANNELS, res.RES2_OUT_CHANNELS
    bottleneck_channels = res.NUM_GROUPS * res.WIDTH_PER_GROUP
    multi_grid = list(multi_grid) or [1]
    dilations = stage_dilations(output_stride)
    stages = []
    for index, num_blocks in enumerate(blocks_per_stage(cfg)):
        first_stride = 2 if index > 0 and dilations[index] == 1 else 1
        grid = (
            [multi_grid[i % len(multi_grid)] for i in range(num_blocks)]
            if index == 3
            else [1] * num_blocks
        )
        stages.append(
            ResNet.make_stage(
                BottleneckBlock,
                num_blocks,
                in_channels=in_channels,
                out_channels=out_channels,
                stride_per_block=[first_stride] + [1] * (num_blocks - 1),
                dilation_per_block=[dilations[index] * g for g in grid],
                bottleneck_channels=bottleneck_channels,
                num_groups=res.NUM_GROUPS,
                stride_in_1x1=res.STRIDE_IN_1X1,
                norm=norm,
            )
        )
        in_channels, out_channels, bottleneck_channels = (
            out_channels,
            out_channels * 2,
            bottleneck_channels * 2,
        )
    return ResNet(
        stem, stages, out_features=list(out_features), freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT
    )


class DeepLabV3PlusBackbone(Backbone):
    """ResNet (output stride 16) -> ASPP -> decoder with the stride-4 features -> ``"dense"``."""

    def __init__(
        self,
        trunk: ResNet,
        *,
        aspp_channels: int,
        aspp_dilations: Sequence[int],
        aspp_dropout: float,
        low_level_channels: int,
        out_channels: int,
        norm: str,
        decoder_dropout: Sequence[float] = (),
    ):
        super().__init__()
        if len(decoder_dropout) not in (0, 2):
            raise ValueError(
                "MODEL.DEEPLAB.DECODER_DROPOUT must be [] or one rate per decoder convolution "
                f"(2), got {list(decoder_dropout)}"
            )
        self.trunk = trunk
        shapes = trunk.output_shape()
        self.aspp = ASPP(
            shapes["res5"].channels,
            aspp_channels,
            list(aspp_dilations),
            norm=norm,
            activation=F.relu,
            dropout=aspp_dropout,
        )
        self.low_level_project = Conv2d(
            shapes["res2"].channels,
            low_level_channels,
            1,
            bias=False,
            norm=get_norm(norm, low_level_channels),
            activation=F.relu,
        )
        fuse_in = [aspp_channels + low_level_channels, out_channels]
        layers = []
        for index, in_channels in enumerate(fuse_in):
            layers.append(
                Conv2d(
                    in_channels,
                    out_channels,
                    3,
                    padding=1,
                    bias=False,
                    norm=get_norm(norm, out_channels),
                    activation=F.relu,
                )
            )
            if decoder_dropout:
                layers.append(nn.Dropout(decoder_dropout[index]))
        self.fuse = nn.Sequential(*layers)
        self._out_channels = out_channels
        self._stride = shapes["res2"].stride

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.trunk(x)
        low_level = self.low_level_project(features["res2"])
        context = F.interpolate(
            self.aspp(features["res5"]),
            size=low_level.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        return {"dense": self.fuse(torch.cat([context, low_level], dim=1))}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"dense": ShapeSpec(channels=self._out_channels, stride=self._stride)}


class DeepLabV3Backbone(Backbone):
    """ResNet (``output_stride``) -> ASPP -> ``"dense"`` at the trunk's output stride."""

    def __init__(
        self,
        trunk: ResNet,
        *,
        aspp_channels: int,
        aspp_dilations: Sequence[int],
        aspp_dropout: float,
        norm: str,
    ):
        super().__init__()
        self.trunk = trunk
        res5 = trunk.output_shape()["res5"]
        self.aspp = ASPP(
            res5.channels,
            aspp_channels,
            list(aspp_dilations),
            norm=norm,
            activation=F.relu,
            dropout=aspp_dropout,
        )
        self._shape = ShapeSpec(channels=aspp_channels, stride=res5.stride)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"dense": self.aspp(self.trunk(x)["res5"])}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"dense": self._shape}


class ASPPv2(nn.Module):
    """DeepLab-v2's ASPP-L: the sum of parallel 3x3 convolutions with different dilations."""

    def __init__(self, in_channels: int, out_channels: int, dilations: Sequence[int]):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, out_channels, 3, padding=d, dilation=d) for d in dilations
        )
        for branch in self.branches:
            nn.init.normal_(branch.weight, std=0.01)
            nn.init.zeros_(branch.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(branch(x) for branch in self.branches)


class DeepLabV2Backbone(Backbone):
    """ResNet (output stride 8) -> ASPP-L -> ``"dense"``."""

    def __init__(self, trunk: ResNet, *, out_channels: int, dilations: Sequence[int]):
        super().__init__()
        self.trunk = trunk
        res5 = trunk.output_shape()["res5"]
        self.aspp = ASPPv2(res5.channels, out_channels, dilations)
        self._shape = ShapeSpec(channels=out_channels, stride=res5.stride)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"dense": self.aspp(self.trunk(x)["res5"])}

    def output_shape(self) -> dict[str, ShapeSpec]:
        return {"dense": self._shape}


@BACKBONE_REGISTRY.register()
def build_deeplab_v3plus_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DeepLab-v3+ from ``MODEL.RESNETS`` (trunk) and ``MODEL.DEEPLAB`` (ASPP, decoder)."""
    deeplab = cfg.MODEL.DEEPLAB
    if len(deeplab.ASPP_DILATIONS) != 3:
        raise ValueError(
            f"MODEL.DEEPLAB.ASPP_DILATIONS must hold 3 dilations, got {list(deeplab.ASPP_DILATIONS)}"
        )
    trunk = build_dilated_resnet(
        cfg, input_shape, deeplab.OUTPUT_STRIDE, ("res2", "res5"), deeplab.MULTI_GRID
    )
    return DeepLabV3PlusBackbone(
        trunk,
        aspp_channels=deeplab.ASPP_CHANNELS,
        aspp_dilations=deeplab.ASPP_DILATIONS,
        aspp_dropout=deeplab.ASPP_DROPOUT,
        low_level_channels=deeplab.LOW_LEVEL_CHANNELS,
        out_channels=deeplab.OUT_CHANNELS,
        norm=deeplab.NORM,
        decoder_dropout=deeplab.DECODER_DROPOUT,
    )


@BACKBONE_REGISTRY.register()
def build_deeplab_v3_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DeepLab-v3 from ``MODEL.RESNETS`` (trunk) and ``MODEL.DEEPLAB`` (output stride, multi-grid,
    ASPP); no decoder."""
    deeplab = cfg.MODEL.DEEPLAB
    if len(deeplab.ASPP_DILATIONS) != 3:
        raise ValueError(
            f"MODEL.DEEPLAB.ASPP_DILATIONS must hold 3 dilations, got {list(deeplab.ASPP_DILATIONS)}"
        )
    trunk = build_dilated_resnet(
        cfg, input_shape, deeplab.OUTPUT_STRIDE, ("res5",), deeplab.MULTI_GRID
    )
    return DeepLabV3Backbone(
        trunk,
        aspp_channels=deeplab.ASPP_CHANNELS,
        aspp_dilations=deeplab.ASPP_DILATIONS,
        aspp_dropout=deeplab.ASPP_DROPOUT,
        norm=deeplab.NORM,
    )


@BACKBONE_REGISTRY.register()
def build_deeplab_v2_backbone(cfg: CfgNode, input_shape: ShapeSpec) -> Backbone:
    """DeepLab-v2 from ``MODEL.RESNETS`` (trunk, no multi-grid) and ``MODEL.DEEPLAB.V2_*`` (ASPP-L)."""
    deeplab = cfg.MODEL.DEEPLAB
    trunk = build_dilated_resnet(cfg, input_shape, deeplab.V2_OUTPUT_STRIDE, ("res5",))
    return DeepLabV2Backbone(
        trunk, out_channels=deeplab.V2_OUT_CHANNELS, dilations=deeplab.V2_DILATIONS
    )
