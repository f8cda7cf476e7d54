"""Every option of zsseg_d2, added to a Detectron2 ``CfgNode`` by :func:`add_zsseg_config`.

Names follow Detectron2 / Mask2Former where an option means the same thing there. Defaults are
the paper's (Dao et al. 2023, "Class Enhancement Losses with Pseudo Labels for Zero-shot Semantic
Segmentation") and Mask2Former's for the parts the paper takes from it.
"""

from __future__ import annotations

from detectron2.config import CfgNode as CN


def add_zsseg_config(cfg: CN) -> None:
    """Add all zsseg_d2 options to ``cfg`` in place (call before ``merge_from_file``)."""
    _add_model_config(cfg)
    _add_clip_config(cfg)
    _add_semantic_config(cfg)
    _add_loss_config(cfg)
    _add_test_config(cfg)
    _add_input_config(cfg)
    _add_solver_config(cfg)
    _add_pseudo_label_config(cfg)
    _add_dataset_config(cfg)
    _add_evaluation_config(cfg)
    # pixel-wise methods and their backbones
    _add_vgg_config(cfg)
    _add_deeplab_config(cfg)
    _add_szn_config(cfg)
    _add_zs3net_config(cfg)
    _add_sign_config(cfg)
    _add_relation_net_config(cfg)


def _add_model_config(cfg: CN) -> None:
    cfg.MODEL.META_ARCHITECTURE = "CELSegmentor"
    # The config whose run writes MODEL.WEIGHTS (an earlier stage): named, with its command, when
    # that file is missing at the start of training ("": MODEL.WEIGHTS is not a stage's output).
    cfg.MODEL.WEIGHTS_FROM = ""
    # Semantic-segmentation head: the pixel decoder plus the transformer decoder.
    head = cfg.MODEL.SEM_SEG_HEAD
    head.NAME = "CELHead"
    head.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    head.IGNORE_VALUE = 255
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
    # Vocabulary used for training ("": the training data set's ``stuff_classes`` metadata).
    cel.TRAIN_VOCABULARY = []
    # Vocabulary used for evaluation ([]: each evaluated data set's ``stuff_classes``).
    cel.TEST_VOCABULARY = []


def _add_vgg_config(cfg: CN) -> None:
    # VGG-16 of the pixel-wise methods: FCN-32s (build_vgg16_fcn_backbone) and U-Net
    # (build_unet_vgg16_backbone). Widths shrink for tiny CPU configs.
    vgg = cfg.MODEL.VGG = CN()
    vgg.BASE_CHANNELS = 64  # conv1 width; the blocks have 1, 2, 4, 8, 8 times it (64: VGG-16)
    vgg.FC_CHANNELS = 4096  # fc6 / fc7 width of the FCN
    vgg.DROPOUT = 0.5  # after fc6 and fc7 (VGG's, kept by FCN)
    # torchvision's VGG-16 state dict file (vgg16-397923af.pth) for ImageNet weights; "": random.
    vgg.PRETRAINED = ""


def _add_szn_config(cfg: CN) -> None:
    # Seenmask Zero-shot Network (Doshi 2018); its head is SEM_SEG_HEAD.NAME "SZNHead".
    szn = cfg.MODEL.SZN = CN()
    # "fcn_s": softmax over the seen classes (no zero-shot); "fcn_je": nearest class embedding over
    # all classes, no seenmask (the thesis says "among train_seen", but its Table 4 reports unseen
    # hits for FCN-JE: we infer among all); "szn": SEI with the seenmask; "szn_ps": SEI with the
    # ground-truth seenmask (oracle, evaluation only, step 1's weights).
    szn.VARIANT = "szn"
    # 1: FCN + visual-embedding head (eq. 6 / 4) on train_seen pixels; 2: seenmask head (eq. 3) on
    # the frozen FCN, from step 1's weights (MODEL.WEIGHTS). FCN-S trains its classifier in step 1.
    szn.STEP = 1
    # Seen class names held out as the seenmask's unseen examples (train_unseen). Their pixels are
    # ignored in step 1 (and, with DATASETS.UNSEEN_IMAGES "drop", their images dropped via
    # DATASETS.DROP_CLASSES); at test time they join U in SEI's unseen group.
    szn.TRAIN_UNSEEN = []
    szn.LOSS = (
        "cosine"  # joint-embedding loss: "cosine" (eq. 6, the thesis's choice) or "mse" (eq. 4)
    )
    # Learn the 32x transposed convolutions (initialised to bilinear) or keep them fixed, as the
    # PyTorch FCN the thesis adapts does.
    szn.LEARN_UPSAMPLING = False


def _add_clip_config(cfg: CN) -> None:
    clip = cfg.MODEL.CLIP = CN()
    clip.MODEL_NAME = (
        "ViT-B-16"  # an open_clip model name (or one registered by zsseg_d2, e.g. "ZSSeg-Tiny")
    )
    # An open_clip pretrained tag ("openai", "laion2b_s34b_b88k", ...), a local checkpoint file,
    # or "" for random weights (tests only).
    clip.PRETRAINED = "openai"
    # "imagenet": the 80 CLIP ImageNet prompt templates averaged; "single": "a photo of a {}."
    # (the ablation "P" of Table 6 switches templates on).
    clip.PROMPT_TEMPLATES = "imagenet"
    # Where text embeddings are cached ("": $ZSSEG_CACHE or ~/.cache/zsseg_d2).
    clip.CACHE_DIR = ""
    # Never touch the network for weights: fail at once with an error saying what to pass instead
    # (also chosen automatically when the Hugging Face hub does not answer within 3 s).
    clip.OFFLINE = False
    # CLIP ensemble at inference (Table 4), zsseg.baseline's rules: p = p_model^l * p_clip^(1-l) for
    # seen classes and p_model^(1-l) * p_clip^l for unseen ones, l = ENSEMBLE_LAMBDA (reference:
    # 0.8 COCO-Stuff, 0.7 VOC); seen = a seen class of the training data (DATASETS.TRAIN's
    # metadata); a query with an empty mask gets p_clip = 1.
    clip.ENSEMBLE = False
    clip.ENSEMBLE_LAMBDA = 0.8
    clip.ENSEMBLE_MASK_THRESHOLD = 0.5  # a query's crop region is sigma(mask logit) > this
    clip.ENSEMBLE_MASK_FILL = (
        True  # pixels outside the mask set to CLIP's pixel mean (reference "mean")
    )
    clip.ENSEMBLE_EXPAND_RATIO = 0.0  # grow the crop box by this fraction (reference: none)


def _add_semantic_config(cfg: CN) -> None:
    sem = cfg.MODEL.SEMANTIC = CN()
    # The space class names are embedded in, shared by every method (and by the CLIP ensemble and
    # the pseudo-label pass, which need it to be the space of MODEL.CLIP's image tower):
    # "clip_text": MODEL.CLIP's text tower with MODEL.CLIP.PROMPT_TEMPLATES;
    # "file": precomputed vectors from FILES (CLIP text embeddings made elsewhere, word vectors).
    sem.SOURCE = "clip_text"
    # .npz (arrays "names", "vectors") or .npy with "<stem>.names.txt" beside it; several files are
    # concatenated per class (e.g. word2vec and fastText, 600-d).
    sem.FILES = []
    sem.NORMALIZE = True  # L2-normalise each class vector (after concatenation, and after PCA)
    # > 0: project to this many dimensions by PCA (SZN: j = 20), fitted on the class names of
    # DATASETS.TRAIN and TEST (the thesis fits the whole word2vec vocabulary, not at hand here).
    sem.PCA_DIM = 0
    # Checkpoints record the text settings above (and MODEL.CLIP's name, weights, templates) and
    # the training vocabulary; loading one with other settings is an error naming both values.
    # True: load it anyway, with a warning.
    sem.ACCEPT_CHECKPOINT_MISMATCH = False


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


def _add_input_config(cfg: CN) -> None:
    cfg.INPUT.DATASET_MAPPER_NAME = "zs_semantic"
    cfg.INPUT.FORMAT = "RGB"
    cfg.INPUT.COLOR_AUG_SSD = True
    cfg.INPUT.SIZE_DIVISIBILITY = -1  # pad training crops to this size (-1: no padding)
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0
    # True: training skips an image/label pair that cannot be read (logged and counted) and takes
    # another image; False: the first one stops training with an error naming the file.
    cfg.INPUT.SKIP_UNREADABLE = False

    labels = cfg.INPUT.IMAGE_LABELS = CN()
    # Unseen image-level labels used by the ranking loss (Table 5): "none" | "pseudo" | "gt".
    labels.UNSEEN_MODE = "none"
    labels.PSEUDO_LABEL_FILE = ""  # final file written by tools/generate_pseudo_labels.py
    # Open-vocabulary training (Table 3): per-image caption nouns (datasets/prepare_coco_nouns.py)
    labels.NOUN_FILE = ""
    labels.NOUN_DROP_PROB = 0.25


def _add_solver_config(cfg: CN) -> None:
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    cfg.SOLVER.POLY_LR_POWER = 0.9  # for SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR"
    # A second optimizer for the parameters of the named top-level modules (e.g. SIGN's
    # ["generator", "discriminator"]): its own algorithm and a constant learning rate; the
    # schedule applies to the first one only. [] = one optimizer for everything.
    second = cfg.SOLVER.SECOND_OPTIMIZER = CN()
    second.MODULES = []
    second.OPTIMIZER = "ADAM"  # "ADAM" | "ADAMW" | "SGD"
    second.BASE_LR = 2e-4


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


def _add_sign_config(cfg: CN) -> None:
    """SIGN (Cheng et al., ICCV 2021); defaults are the paper's (Sec. 3, 4.2)."""
    sign = cfg.MODEL.SIGN = CN()
    # "train": Training Steps (SIM) and (G) jointly (eq. 4 + eq. 8); "transfer": C on real and
    # synthetic features (eq. 10); "self_training": eq. 10 plus pseudo-labelled unseen pixels.
    sign.STEP = "train"
    sign.IN_FEATURE = "dense"  # backbone output read as E(x)
    sign.POSITIONAL_ENCODING = (
        "relative"  # "relative" (RPE) | "absolute" | "absolute_interp" | "none" (Table 3)
    )
    sign.PE_DIM = 300  # d_model per direction (eq. 11-14); the encoding has 2 * PE_DIM channels
    sign.PE_SCALE = 512.0  # c of eq. 15-16
    sign.PE_TRAIN_SIZE = (41, 41)  # training feature size, for "absolute_interp" at test time
    sign.SIM_TYPE = "multihead_attention"  # "multihead_attention" (Table 2 best) | "conv"
    sign.SIM_BLOCKS = 1  # residual attention (or conv) blocks in the encoding module
    sign.SIM_HEADS = 8
    sign.SIM_FEEDFORWARD = 1024
    sign.FEATURE_DIM = 600  # channels of F_x (and of the synthetic features)
    sign.LATENT_DIM = 300  # channels of z
    sign.GENERATOR_HIDDEN = 600
    sign.DISCRIMINATOR_HIDDEN = 256
    sign.KL_WEIGHT = 100.0  # alpha (eq. 4)
    sign.MMD_WEIGHT = 50.0  # beta (eq. 8)
    sign.ADV_WEIGHT = 1.0  # weight of L_adv (eq. 8)
    sign.MMD_MAX_PIXELS = 512  # pixels per class sampled for the O(n^2) kernel sums of eq. 6
    sign.SELF_TRAINING = "none"  # "none" | "st" (top fraction, ZS3Net) | "ast" (eq. 17)
    sign.ST_FRACTION = 0.75  # ST: the most confident fraction of each unseen class's pixels
    sign.AST_TEMPERATURE = 2.0  # T of eq. 17


def _add_relation_net_config(cfg: CN) -> None:
    """Relation Network for ZLSS / GZLSS (Zhang & Khriyenko); defaults are the paper's (Sec. III-IV)."""
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


def _add_dataset_config(cfg: CN) -> None:
    # Data-set spec files (YAML/JSON, format in datasets/README.md) registered by every process
    # before DATASETS.TRAIN / TEST are looked up; $ZSSEG_DATASET_SPECS adds more.
    cfg.DATASETS.SPEC_FILES = []
    # Training images holding unseen pixels: "keep" them and ignore those pixels (CEL), or "drop"
    # every such image (SZN, ZS3Net). Which classes each image holds is cached per data set.
    cfg.DATASETS.UNSEEN_IMAGES = "keep"
    # With "drop": further class names whose images are dropped too (SZN step 1: train_unseen).
    cfg.DATASETS.DROP_CLASSES = []


def _add_evaluation_config(cfg: CN) -> None:
    # "all": GZS3, predictions over every class; "unseen": ZLSS, argmax over the unseen classes'
    # channels of the dense "sem_seg" scores, scored on pixels whose ground truth is unseen.
    cfg.TEST.LABEL_SPACE = "all"


def _add_deeplab_config(cfg: CN) -> None:
    # DeepLab backbones (build_deeplab_v3plus_backbone, build_deeplab_v2_backbone); the ResNet
    # trunk reads MODEL.RESNETS (DEPTH 50/101/152, widths, NORM) and MODEL.BACKBONE.FREEZE_AT.
    deeplab = cfg.MODEL.DEEPLAB = CN()
    deeplab.BLOCKS_PER_STAGE = []  # bottleneck blocks of res2..res5 ([]: from MODEL.RESNETS.DEPTH); tiny models
    deeplab.NORM = "BN"  # normalisation of the ASPP and decoder convolutions
    # DeepLab-v3+ (ZS3Net's segmentation network): trunk output stride, multi-grid of res5, ASPP
    # at stride OUTPUT_STRIDE, decoder fusing res2 projected to LOW_LEVEL_CHANNELS; output
    # OUT_CHANNELS at stride 4 (256 in ZS3Net, sec. III-A).
    deeplab.OUTPUT_STRIDE = 16
    deeplab.MULTI_GRID = [1, 2, 4]
    deeplab.ASPP_CHANNELS = 256
    deeplab.ASPP_DILATIONS = [6, 12, 18]
    deeplab.ASPP_DROPOUT = 0.1
    deeplab.LOW_LEVEL_CHANNELS = 48
    deeplab.OUT_CHANNELS = 256
    # DeepLab-v2: trunk at output stride 8, ASPP-L summing 3x3 convolutions with these dilations.
    deeplab.V2_OUTPUT_STRIDE = 8
    deeplab.V2_DILATIONS = [6, 12, 18, 24]
    deeplab.V2_OUT_CHANNELS = 256  # feature width ("dense" channels)


def _add_zs3net_config(cfg: CN) -> None:
    # ZS3Net and recursive training with ZS-MMD (Wang, Farazi, Barnes; meta-architecture "ZS3Net").
    zs3 = cfg.MODEL.ZS3NET = CN()
    # "segmentation": backbone + classifier on seen classes; "generator": ZS3Net's GMMN and
    # classifier retraining (backbone frozen); "recursive": plus ZS-MMD (eq. 2). Each stage starts
    # from the previous stage's MODEL.WEIGHTS.
    zs3.STAGE = "segmentation"
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
    # Table III ablation: the same confident features, each with weight 1 instead of c_i.
    zs3.EQUAL_WEIGHT = False
