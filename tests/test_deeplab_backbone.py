"""DeepLab-v2, -v3 and -v3+ backbones: strides, dilations, shapes, dropout, ImageNet-checkpoint names."""

from __future__ import annotations

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.modeling.backbone.deeplab import ASPPv2, blocks_per_stage, stage_dilations


def _tiny_cfg(name: str):
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS = 16
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 32
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 8
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.DEEPLAB.NORM = "BN"
    cfg.MODEL.DEEPLAB.BLOCKS_PER_STAGE = [1, 1, 1, 3]
    cfg.MODEL.DEEPLAB.ASPP_CHANNELS = 32
    cfg.MODEL.DEEPLAB.LOW_LEVEL_CHANNELS = 8
    cfg.MODEL.DEEPLAB.OUT_CHANNELS = 24
    cfg.MODEL.DEEPLAB.V2_OUT_CHANNELS = 20
    return cfg


@pytest.mark.parametrize(
    "output_stride, expected",
    [(32, [1, 1, 1, 1]), (16, [1, 1, 1, 2]), (8, [1, 1, 2, 4]), (4, [1, 2, 4, 8])],
)
def test_stage_dilations_replace_strides_after_the_output_stride(output_stride, expected):
    assert stage_dilations(output_stride) == expected


def test_bad_output_stride_is_named():
    with pytest.raises(ValueError, match="output stride must be 4, 8, 16 or 32, got 12"):
        stage_dilations(12)


def test_v3plus_gives_the_decoder_map_at_stride_4_with_multigrid_dilations():
    cfg = _tiny_cfg("build_deeplab_v3plus_backbone")
    backbone = build_backbone(cfg).eval()
    assert backbone.output_shape()["dense"] == ShapeSpec(channels=24, stride=4)
    trunk_shapes = backbone.trunk.output_shape()
    assert trunk_shapes["res5"].stride == 16 and trunk_shapes["res5"].channels == 256
    # res5 at output stride 16 has dilation 2, times the multi-grid (1, 2, 4) per block.
    assert [block.conv2.dilation for block in backbone.trunk.res5] == [(2, 2), (4, 4), (8, 8)]
    assert backbone.trunk.res5[0].shortcut.stride == (1, 1) and backbone.trunk.res4[
        0
    ].shortcut.stride == (2, 2)
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, 64, 96))
    assert list(out) == ["dense"] and out["dense"].shape == (2, 24, 16, 24)


def test_v3plus_decoder_dropout_after_each_decoder_convolution_in_training_only():
    cfg = _tiny_cfg("build_deeplab_v3plus_backbone")
    cfg.MODEL.DEEPLAB.DECODER_DROPOUT = [0.5, 0.1]
    backbone = build_backbone(cfg)
    rates = [m.p for m in backbone.fuse if isinstance(m, torch.nn.Dropout)]
    assert rates == [0.5, 0.1]  # ZS3Net's decoder: conv, dropout 0.5, conv, dropout 0.1
    assert isinstance(backbone.fuse[1], torch.nn.Dropout)  # right after the first convolution
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        backbone.eval()
        assert torch.equal(backbone(x)["dense"], backbone(x)["dense"])
        backbone.train()
        zeros = (backbone(x)["dense"] == 0).float().mean().item()
    # ReLU then dropout 0.1: about 10% more zeros than the ReLU alone gives in eval mode.
    backbone.eval()
    with torch.no_grad():
        eval_zeros = (backbone(x)["dense"] == 0).float().mean().item()
    assert zeros > eval_zeros + 0.03
    cfg.MODEL.DEEPLAB.DECODER_DROPOUT = [0.5]
    with pytest.raises(ValueError, match="DECODER_DROPOUT"):
        build_backbone(cfg)


def test_v3_is_aspp_on_the_trunk_at_the_output_stride_without_decoder():
    cfg = _tiny_cfg("build_deeplab_v3_backbone")
    cfg.MODEL.DEEPLAB.OUTPUT_STRIDE = 8
    cfg.MODEL.DEEPLAB.MULTI_GRID = [1]
    cfg.MODEL.DEEPLAB.ASPP_DILATIONS = [12, 24, 36]  # torchvision's DeepLab-v3 head
    backbone = build_backbone(cfg).eval()
    assert backbone.output_shape()["dense"] == ShapeSpec(channels=32, stride=8)
    assert not hasattr(backbone, "fuse") and not hasattr(backbone, "low_level_project")
    assert [block.conv2.dilation for block in backbone.trunk.res5] == [(4, 4)] * 3
    assert backbone.trunk.res4[0].conv2.dilation == (2, 2)
    assert [c.dilation for c in backbone.aspp.convs[1:4]] == [(12, 12), (24, 24), (36, 36)]
    with torch.no_grad():
        out = backbone(torch.randn(2, 3, 64, 96))
    assert out["dense"].shape == (2, 32, 8, 12)


def test_v2_sums_four_dilated_branches_at_stride_8_without_multigrid():
    cfg = _tiny_cfg("build_deeplab_v2_backbone")
    backbone = build_backbone(cfg).eval()
    assert backbone.output_shape()["dense"] == ShapeSpec(channels=20, stride=8)
    assert [block.conv2.dilation for block in backbone.trunk.res5] == [(4, 4)] * 3
    assert backbone.trunk.res4[0].conv2.dilation == (2, 2)
    assert [branch.dilation for branch in backbone.aspp.branches] == [
        (6, 6),
        (12, 12),
        (18, 18),
        (24, 24),
    ]
    with torch.no_grad():
        out = backbone(torch.randn(1, 3, 64, 96))
    assert list(out) == ["dense"] and out["dense"].shape == (1, 20, 8, 12)


def test_aspp_v2_on_a_constant_map_is_the_sum_of_the_branch_biases_plus_centre_taps():
    aspp = ASPPv2(1, 1, [1, 2])
    x = torch.ones(1, 1, 9, 9)
    with torch.no_grad():
        for index, branch in enumerate(aspp.branches):
            branch.weight.fill_(index + 1.0)
            branch.bias.fill_(10.0 * (index + 1))
        out = aspp(x)
    # Centre pixel: every 3x3 tap sees a 1: branch 1 gives 9 * 1 + 10, branch 2 gives 9 * 2 + 20.
    assert out[0, 0, 4, 4].item() == pytest.approx(19 + 38)
    # Corner pixel: 4 taps in the image for dilation 1 (4 + 10), 4 for dilation 2 (8 + 20).
    assert out[0, 0, 0, 0].item() == pytest.approx(14 + 28)


def test_resnet101_trunk_has_101_layers_and_detectron2_parameter_names():
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.RESNETS.DEPTH = 101
    assert blocks_per_stage(cfg) == [3, 4, 23, 3]  # 3 * 33 convs + stem + classifier = 101
    cfg.MODEL.RESNETS.DEPTH = 50
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res2", "res5"]
    cfg.MODEL.BACKBONE.NAME = "build_deeplab_v3plus_backbone"
    ours = {
        k.removeprefix("trunk."): v.shape
        for k, v in build_backbone(cfg).state_dict().items()
        if k.startswith("trunk.")
    }
    reference = {
        k: v.shape
        for k, v in build_resnet_backbone(cfg, ShapeSpec(channels=3)).state_dict().items()
    }
    # Same names and shapes as Detectron2's ResNet, so its ImageNet .pkl files load into the trunk.
    assert ours == {k: v for k, v in reference.items() if k in ours}
    assert set(ours) == set(reference)


def test_basic_block_depth_is_refused_with_what_to_set():
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.RESNETS.DEPTH = 18
    with pytest.raises(ValueError, match="BLOCKS_PER_STAGE"):
        blocks_per_stage(cfg)
    cfg.MODEL.DEEPLAB.BLOCKS_PER_STAGE = [1, 1, 1]
    with pytest.raises(ValueError, match="4 positive block counts"):
        blocks_per_stage(cfg)
