"""CEL's options: ``MODEL.CEL``, its Mask2Former-style head (``MODEL.SEM_SEG_HEAD``,
``MODEL.TRANSFORMER_DECODER``) and the pseudo-label pass (``PSEUDO_LABEL``). Defaults are the
paper's (Dao et al. 2023) and Mask2Former's for the parts the paper takes from it."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from ...config import register_method_config


@register_method_config
def add_cel_config(cfg: CN) -> None:
    """Add CEL's nodes to ``cfg``."""
    _add_model_config(cfg)
    _add_loss_config(cfg)
    _add_test_config(cfg)
    _add_pseudo_label_config(cfg)


def _add_model_config(cfg: CN) -> None:
    # Semantic-segmentation head: the pixel decoder plus the transformer decoder.
    head = cfg.MODEL.SEM_SEG_HEAD
    head.NAME = "CELHead"
    head.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    head.CONVS_DIM = 256  # width of the pixel decoder
    head.MASK_DIM = 256  # width of the per-pixel embedding F(I) and of the mask embeddings e^m
    head.NORM = "GN"
    head.COMMON_STRIDE = 4  # stride of the mask-feature map
    head.PIXEL_DECODER_NAME = "MSDeformAttnPixelDecoder"
    # Multi-scale deformable-attention encoder of the pixel decoder (Mask2Former's design).
    head.DEFORMABLE_ENCODER_IN_FEATURES = ["res3", "res4", "res5"]
    head.ENCODER_LAYERS = 6
    head.ENCODER_HEADS = 8
    head.ENCODER_POINTS = 4
    head.ENCODER_DIM_FEEDFORWARD = 1024
    head.ENCODER_DROPOUT = 0.0
    # "auto": the compiled CUDA kernel when importable and inputs are on CUDA, else pure PyTorch;
    # "pytorch": always the pure-PyTorch (grid_sample) path.
    head.DEFORMABLE_ATTN_IMPL = "auto"

    dec = cfg.MODEL.TRANSFORMER_DECODER = CN()
    dec.NAME = "MaskedAttentionDecoder"
    dec.NUM_QUERIES = 100
    dec.HIDDEN_DIM = 256
    dec.NHEADS = 8
    dec.DIM_FEEDFORWARD = 2048
    dec.DEC_LAYERS = 9  # decoder layers; predictions are made before the first and after each
    dec.PRE_NORM = False
    dec.DROPOUT = 0.0
    dec.ENFORCE_INPUT_PROJ = False
    dec.CLASS_EMBED_LAYERS = 2  # depth of the class projection MLP E^c
    dec.MASK_EMBED_LAYERS = 3  # depth of the mask projection MLP E^m

    cel = cfg.MODEL.CEL = CN()
    # Temperature tau of p_q = softmax(cos(e_q^c, t_i) / tau) (eq. 2).
    cel.TEMPERATURE = 0.01
    # "none": the paper's model, no background class (eq. 2, 5).
    # "learned": the ablation baseline, a learned background embedding t_0 and plain CE.
    cel.BACKGROUND = "none"


def _add_loss_config(cfg: CN) -> None:
    loss = cfg.MODEL.CEL.LOSS = CN()
    loss.CLASS_WEIGHT = 2.0  # alpha (eq. 8)
    loss.MASK_WEIGHT = 5.0  # beta, on the sigmoid-CE (or focal) term of L_mask
    loss.DICE_WEIGHT = 5.0  # beta, on the dice term of L_mask
    loss.RANK_WEIGHT = 1.0  # gamma (eq. 8)
    # Factor on the cosines ranked by eq. 6-7. 1 is the paper's literal text (margins bounded to
    # [-2, 2], so the loss has a floor and small gradients); 1 / MODEL.CEL.TEMPERATURE (100) ranks
    # the logits of eq. 2 instead.
    loss.RANK_SCALE = 1.0
    loss.KL_LAMBDA = 0.6  # lambda of the background-aware class loss (eq. 5)
    loss.USE_KL = True  # False: unmatched queries get no class loss ("CE" row of Table 6)
    loss.USE_RANK = True  # False: no multi-label ranking loss (eq. 6-7)
    loss.NO_OBJECT_WEIGHT = 0.1  # background-class weight, only for BACKGROUND "learned"
    loss.FOCAL = False  # focal loss instead of sigmoid-CE in L_mask
    loss.FOCAL_ALPHA = 0.25
    loss.FOCAL_GAMMA = 2.0
    loss.DEEP_SUPERVISION = True  # apply eq. 8 to every decoder layer's predictions
    # Pixels of L_mask (and of the matching cost): "labelled", the paper's "only the pixels
    # belonging to seen classes S are used for the mask loss" (Sec. 3.2: unseen and void pixels
    # weigh 0); "all", Mask2Former's (and zsseg.baseline's), where those pixels are negatives of
    # every matched mask.
    loss.MASK_PIXELS = "labelled"
    loss.TRAIN_NUM_POINTS = 12544  # points sampled per mask for L_mask
    loss.OVERSAMPLE_RATIO = 3.0
    loss.IMPORTANCE_SAMPLE_RATIO = 0.75

    matcher = cfg.MODEL.CEL.MATCHER = CN()
    matcher.COST_CLASS = 2.0
    matcher.COST_MASK = 5.0
    matcher.COST_DICE = 5.0
    matcher.NUM_POINTS = 12544  # K random points shared by all masks of an image


def _add_test_config(cfg: CN) -> None:
    test = cfg.MODEL.CEL.TEST = CN()
    # Classes scored per chunk when combining queries at full resolution (eq. 4); bounds peak
    # memory for large vocabularies (ADE20K-847).
    test.CLASS_CHUNK = 64
    # Queries whose masks are upsampled to full resolution at a time (eq. 4): peak memory is
    # O((QUERY_CHUNK + CLASS_CHUNK) x H x W) instead of O(NUM_QUERIES x H x W) on big images.
    test.QUERY_CHUNK = 16
    # Return the dense C x H x W "sem_seg" scores (Detectron2's format) only when the vocabulary
    # has at most this many classes; "sem_seg_label" (H x W argmax) is always returned.
    test.MAX_DENSE_CLASSES = 200


def _add_pseudo_label_config(cfg: CN) -> None:
    pl = cfg.PSEUDO_LABEL = CN()
    pl.THRESHOLD = 0.99  # tau of eq. 10
    pl.MASK_THRESHOLD = 0.5  # a proposal is sigma(mask logit) > this
    pl.MIN_AREA = 0.001  # proposals smaller than this fraction of the image are dropped
    pl.TOPK = 0  # keep only the top-k proposals by mask quality (0: all)
    # Drop proposals whose quality (mean sigma inside the binary mask, Mask2Former's mask score) is
    # below this, so that eq. 10's max over crops is not dominated by junk queries.
    pl.MIN_QUALITY = 0.0
    pl.EXPAND_RATIO = 0.0  # grow each crop box by this fraction of its size (context)
    pl.MASK_FILL = False  # fill pixels outside the mask with CLIP's pixel mean
    pl.CROP_BATCH_SIZE = 64  # crops per CLIP forward, batched across images
    pl.IMS_PER_BATCH = 4  # images per proposal-model forward (--batch-size)
    pl.ALL_IMAGES = False  # False: only images whose seen-only labels have unlabeled pixels
