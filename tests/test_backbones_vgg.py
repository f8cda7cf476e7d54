"""VGG-16 FCN-32s and U-Net(VGG-16) backbones: shapes, registry, torchvision weight mapping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from detectron2.config import get_cfg
from detectron2.modeling import build_backbone
from torchvision.models.vgg import make_layers

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.modeling.backbone import VGG16FCN, load_torchvision_vgg16

BASE, FC = 4, 16  # tiny widths


def _cfg(name, pretrained=""):
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.VGG.BASE_CHANNELS, cfg.MODEL.VGG.FC_CHANNELS, cfg.MODEL.VGG.PRETRAINED = (
        BASE,
        FC,
        pretrained,
    )
    return cfg


def _torchvision_state(tmp_path):
    """A torchvision-keyed VGG-16 state dict at tiny width (features from torchvision's own
    ``make_layers``, so the layer numbering is torchvision's), saved like vgg16-397923af.pth."""
    widths = (
        [BASE, BASE, "M", 2 * BASE, 2 * BASE, "M"]
        + [4 * BASE] * 3
        + ["M"]
        + [8 * BASE] * 3
        + ["M"]
        + [8 * BASE] * 3
        + ["M"]
    )
    features = make_layers(widths)
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    state["classifier.0.weight"] = torch.randn(FC, 8 * BASE * 7 * 7)
    state["classifier.0.bias"] = torch.randn(FC)
    state["classifier.3.weight"] = torch.randn(FC, FC)
    state["classifier.3.bias"] = torch.randn(FC)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    return features, state, path


def test_fcn_dense_map_is_fc7_at_stride_32_rounded_up():
    model = build_backbone(_cfg("build_vgg16_fcn_backbone")).eval()
    out = model(torch.randn(2, 3, 65, 97))
    assert list(out) == ["dense"]
    assert out["dense"].shape == (2, FC, 3, 4)  # ceil(65/32), ceil(97/32)
    assert (
        model.output_shape()["dense"].channels == FC and model.output_shape()["dense"].stride == 32
    )
    assert (out["dense"] >= 0).all()  # fc7 is after its ReLU


def test_torchvision_weights_map_onto_the_fcn(tmp_path):
    features, state, path = _torchvision_state(tmp_path)
    model = build_backbone(_cfg("build_vgg16_fcn_backbone", str(path))).eval()
    x = torch.randn(1, 3, 64, 96)
    _, pool5 = model.encoder(x)
    assert torch.allclose(pool5, features.eval()(x), atol=1e-5)  # the 13 convs land in order
    # fc6 as a 7x7 conv equals torchvision's Linear on the flattened 7x7 pool5 map
    window = torch.randn(1, 8 * BASE, 7, 7)
    linear = F.linear(window.flatten(1), state["classifier.0.weight"], state["classifier.0.bias"])
    assert torch.allclose(model.fc6(window)[:, :, 3, 3], linear, atol=1e-4)
    assert torch.equal(model.fc7.weight[:, :, 0, 0], state["classifier.3.weight"])


def test_weight_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="MODEL.VGG.PRETRAINED 'nope.pth'"):
        build_backbone(_cfg("build_vgg16_fcn_backbone", "nope.pth"))
    _, _, path = _torchvision_state(tmp_path)
    wider = VGG16FCN(base_channels=2 * BASE, fc_channels=FC)
    with pytest.raises(ValueError, match="BASE_CHANNELS 64 and FC_CHANNELS 4096"):
        load_torchvision_vgg16(wider.encoder, str(path), fcn=wider)


def test_unet_dense_map_at_input_resolution_with_pretrained_encoder(tmp_path):
    features, _, path = _torchvision_state(tmp_path)
    model = build_backbone(_cfg("build_unet_vgg16_backbone", str(path))).eval()
    assert (
        model.output_shape()["dense"].channels == BASE and model.output_shape()["dense"].stride == 1
    )
    assert model(torch.randn(1, 3, 65, 97))["dense"].shape == (1, BASE, 65, 97)  # odd sides handled
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(model.encoder(x)[1], features.eval()(x), atol=1e-5)
    # the skips matter: changing only the stride-1 encoder features changes the output
    skips, bottom = model.encoder(x)
    base = model.decoder(bottom, skips[::-1])
    skips[0] = skips[0] + 1.0
    assert not torch.allclose(model.decoder(bottom, skips[::-1]), base)
