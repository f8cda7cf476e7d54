"""The Relation Network's options (``MODEL.RELATION_NET``; Zhang & Khriyenko, defaults from
Sec. III-IV)."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from ...config import register_method_config


@register_method_config
def add_relation_net_config(cfg: CN) -> None:
    rn = cfg.MODEL.RELATION_NET = CN()
    # "unet_decoder": a U-Net decoder per (image, class) pair on the VGG-16 encoder's maps (Fig. 6,
    # backbone build_vgg16_encoder_backbone); "conv": convolutions on one dense map IN_FEATURE
    # (Fig. 7, DeepLab-v3), the logits upsampled.
    rn.RELATION_MODULE = "unet_decoder"
    rn.IN_FEATURE = "dense"  # the "conv" relation module's input map
    rn.WORD_HIDDEN = (
        256  # FC word-embedding module: embedding -> hidden -> hidden, tiled over H x W
    )
    rn.RELATION_CHANNELS = 128  # width of the relation module's convolutions
    rn.EPISODE_CLASSES = 10  # classes drawn per episode
    # "all": drawn from all classes, then the unseen dropped (the paper's Sec. IV-D); "seen": drawn
    # from the seen classes only (always EPISODE_CLASSES classes).
    rn.EPISODE_POOL = "all"
    # Binary ZLSS (the CUB protocol): one pair per image, its target class against the background,
    # in training and at inference (the target read from the image's label file); a pixel is the
    # target when r >= BINARY_THRESHOLD, else BINARY_BACKGROUND (a class of the data set).
    rn.BINARY = False
    rn.BINARY_THRESHOLD = 0.5
    rn.BINARY_BACKGROUND = "background"
    rn.CLASS_CHUNK = 32  # classes scored per relation-module pass at inference (memory bound)
