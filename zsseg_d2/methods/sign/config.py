"""SIGN's options (``MODEL.SIGN``; Cheng et al., ICCV 2021, defaults from Sec. 3 and 4.2); its
stages are ``MODEL.STAGE`` "train", "transfer" and "self_training"."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from ...config import register_method_config


@register_method_config
def add_sign_config(cfg: CN) -> None:
    sign = cfg.MODEL.SIGN = CN()
    sign.IN_FEATURE = "dense"  # backbone output read as E(x)
    sign.POSITIONAL_ENCODING = (
        "relative"  # "relative" (RPE) | "absolute" | "absolute_interp" | "none" (Table 3)
    )
    sign.PE_DIM = 300  # d_model per direction (eq. 11-14); the encoding has 2 * PE_DIM channels
    sign.PE_SCALE = 512.0  # c of eq. 15-16
    sign.PE_TRAIN_SIZE = (41, 41)  # training feature size, for "absolute_interp" at test time
    # "multihead_attention" (Table 2 "Multi SA", the paper's) | "self_attention" | "attention" |
    # "conv" | "none" (Table 4 "w/o SIM": no PE, z ~ N(0, I)); see sim.py
    sign.SIM_TYPE = "multihead_attention"
    sign.SIM_BLOCKS = 1  # residual blocks in the encoding module
    sign.SIM_HEADS = 8
    sign.SIM_FEEDFORWARD = 1024  # feed-forward width of the (multi-head) self-attention blocks
    sign.SIM_HIDDEN = 256  # channels inside the conv / attention blocks
    sign.FEATURE_DIM = 600  # channels of F_x (and of the synthetic features)
    sign.LATENT_DIM = 300  # channels of z
    sign.GENERATOR_HIDDEN = 600
    sign.DISCRIMINATOR_HIDDEN = 256
    sign.KL_WEIGHT = 100.0  # alpha (eq. 4)
    sign.MMD_WEIGHT = 50.0  # beta (eq. 8)
    sign.ADV_WEIGHT = 1.0  # weight of L_adv (eq. 8)
    sign.MMD_MAX_PIXELS = 512  # pixels per class sampled for the O(n^2) kernel sums of eq. 6
    sign.SELF_TRAINING = "none"  # "none" | "st" (top fraction, ZS3Net) | "ast" (eq. 17)
    # ST: the most confident fraction of each unseen class's pseudo labels over the training set
    # ("uses only the most confident 75% pseudo labels", Sec. 1): a pass over the training images
    # at the start of the stage gives a confidence threshold per unseen class.
    sign.ST_FRACTION = 0.75
    # ST thresholds, one per unseen class in vocabulary order ([]: computed by that pass; set them,
    # e.g. from the pass's log line, to skip it).
    sign.ST_THRESHOLDS = []
    sign.AST_TEMPERATURE = 2.0  # T of eq. 17
