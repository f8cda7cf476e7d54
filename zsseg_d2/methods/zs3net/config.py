"""ZS3Net's and ZS-MMD's options (``MODEL.ZS3NET``); its stages are ``MODEL.STAGE``
"segmentation", "generator" (ZS3Net) and "recursive" (ZS-MMD)."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from ...config import register_method_config


@register_method_config
def add_zs3net_config(cfg: CN) -> None:
    # ZS3Net and recursive training with ZS-MMD (Wang, Farazi, Barnes; meta-architecture "ZS3Net").
    zs3 = cfg.MODEL.ZS3NET = CN()
    zs3.GENERATOR_HIDDEN_DIM = (
        256  # GMMN hidden layer (ZS3Net's code); noise has the embedding's size
    )
    zs3.GENERATOR_DROPOUT = 0.5
    zs3.GENERATOR_BATCH = 128  # features per class and MMD term (sec. IV-A)
    # Images whose seen-class features train the GMMN: "unseen_free" (ZS3Net's code: only images
    # without unseen pixels) | "all" (every image's seen pixels; for data where most images hold
    # an unseen class, e.g. CamVid).
    zs3.GENERATOR_IMAGES = "unseen_free"
    # Gaussian-mixture kernel sum_s exp(-||x - y||^2 / (2 s)) of eq. 1-2 (ZS3Net's code's s).
    zs3.MMD_BANDWIDTHS = [2.0, 5.0, 10.0, 20.0, 40.0, 80.0]
    # Cross-entropy weight of unseen classes when retraining the classifier (ZS3Net's code: 100).
    zs3.UNSEEN_CLASS_WEIGHT = 100.0
    zs3.CONFIDENCE_THRESHOLD = (
        0.7  # tau: generated features kept when predicted right with c_i > tau
    )
    zs3.ZS_MMD_WEIGHT = 0.0125  # gamma, the scale of the ZS-MMD loss (VOC K = 4, 6, 8: 1/80)
    # Stage "recursive": iterations of ZS3Net's training (no ZS-MMD) before the ZS-MMD loss joins,
    # counted by the model from the stage's start ("We first train our proposed model following
    # the original training procedure proposed by ZS3Net", sec. III). 0: ZS-MMD from the start.
    zs3.ZS_MMD_START_ITER = 0
    # Table III ablation "Equal Weight" ("we first select all pseudo-features and weigh them
    # equally"): a of eq. 2 is a second generated batch, all selected, weights 1, drawn
    # independently of b (with a = b the loss would be identically 0).
    zs3.EQUAL_WEIGHT = False
