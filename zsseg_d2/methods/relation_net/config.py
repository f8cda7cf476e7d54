"""The Relation Network's options (``MODEL.RELATION_NET``; Zhang & Khriyenko, defaults from
Sec. III-IV)."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from ...config import register_method_config


@register_method_config
def add_relation_net_config(cfg: CN) -> None:
    rn = cfg.MODEL.RELATION_NET = CN()
    rn.IN_FEATURE = "dense"  # image embedding module output (U-Net VGG-16 or DeepLab-v3)
    rn.WORD_HIDDEN = (
        256  # FC word-embedding module: embedding -> hidden -> hidden, tiled over H x W
    )
    rn.RELATION_CHANNELS = 128  # width of the relation module's convolutions
    rn.EPISODE_CLASSES = 10  # classes drawn per episode
    # "all": drawn from all classes, then the unseen dropped (the paper's Sec. IV-D); "seen": drawn
    # from the seen classes only (always EPISODE_CLASSES classes).
    rn.EPISODE_POOL = "all"
    rn.BINARY = False  # binary ZLSS mode: inference also returns "binary_sem_seg" (r >= BINARY_THRESHOLD per class)
    rn.BINARY_THRESHOLD = 0.5
    rn.CLASS_CHUNK = 32  # classes scored per relation-module pass at inference (memory bound)
