"""Pixel-feature backbones of the pixel-wise methods, registered in ``BACKBONE_REGISTRY`` on import.

Each returns one feature map under the key ``"dense"``; ``output_shape()["dense"]`` gives its
channels and stride.
"""
from .deeplab import build_deeplab_v2_backbone, build_deeplab_v3plus_backbone

__all__ = ["build_deeplab_v2_backbone", "build_deeplab_v3plus_backbone"]
