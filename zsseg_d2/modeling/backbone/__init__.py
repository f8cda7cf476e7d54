"""Backbones of the pixel-wise methods, registered in ``BACKBONE_REGISTRY`` on import. Each returns
one feature map under ``"dense"`` (``output_shape()["dense"]`` gives its channels and stride)."""

from .deeplab import (
    build_deeplab_v2_backbone,
    build_deeplab_v3_backbone,
    build_deeplab_v3plus_backbone,
)
from .unet import (
    UNetDecoder,
    UNetVGG16,
    VGG16EncoderBackbone,
    build_unet_vgg16_backbone,
    build_vgg16_encoder_backbone,
)
from .vgg import VGG16FCN, VGG16Encoder, build_vgg16_fcn_backbone, load_torchvision_vgg16

__all__ = [
    "UNetDecoder",
    "UNetVGG16",
    "VGG16Encoder",
    "VGG16EncoderBackbone",
    "VGG16FCN",
    "build_deeplab_v2_backbone",
    "build_deeplab_v3_backbone",
    "build_deeplab_v3plus_backbone",
    "build_unet_vgg16_backbone",
    "build_vgg16_encoder_backbone",
    "build_vgg16_fcn_backbone",
    "load_torchvision_vgg16",
]
