"""zsseg_d2's options, added to a Detectron2 ``CfgNode`` by :func:`add_zsseg_config`.

This module holds the nodes every method shares (stages, vocabularies, semantic space, CLIP, data,
evaluation, solver, the pixel-wise backbones). Each method adds its own node from its folder
(``zsseg_d2/methods/<method>/config.py``) through :func:`register_method_config`; importing
``zsseg_d2`` registers them all. Names follow Detectron2 where an option means the same there.
"""

from __future__ import annotations

from typing import Callable

from detectron2.config import CfgNode as CN

ConfigAdder = Callable[[CN], None]
_METHOD_CONFIGS: list[ConfigAdder] = []

# Keys of earlier versions -> the key that replaced them (a config using one stops with its name).
RENAMED_KEYS = {
    "MODEL.CEL.TRAIN_VOCABULARY": "MODEL.VOCABULARY.TRAIN",
    "MODEL.CEL.TEST_VOCABULARY": "MODEL.VOCABULARY.TEST",
    "MODEL.SZN.STEP": "MODEL.STAGE",
    "MODEL.ZS3NET.STAGE": "MODEL.STAGE",
    "MODEL.SIGN.STEP": "MODEL.STAGE",
}
# META_ARCHITECTURE values of earlier versions -> today's.
RENAMED_ARCHITECTURES = {"CELSegmentor": "CEL", "SZNSegmentor": "SZN"}


def register_method_config(adder: ConfigAdder) -> ConfigAdder:
    """Decorator: ``adder(cfg)`` adds a method's node; :func:`add_zsseg_config` calls every one."""
    _METHOD_CONFIGS.append(adder)
    return adder


def add_zsseg_config(cfg: CN) -> None:
    """Add all zsseg_d2 options to ``cfg`` in place (call before ``merge_from_file``)."""
    _add_model_config(cfg)
    _add_clip_config(cfg)
    _add_semantic_config(cfg)
    _add_input_config(cfg)
    _add_solver_config(cfg)
    _add_dataloader_config(cfg)
    _add_dataset_config(cfg)
    _add_evaluation_config(cfg)
    _add_vgg_config(cfg)
    _add_deeplab_config(cfg)
    for adder in _METHOD_CONFIGS:
        adder(cfg)
    for old, new in RENAMED_KEYS.items():
        cfg.register_renamed_key(old, new, message=f"Use {new} (see docs/architecture.md).")


def _add_model_config(cfg: CN) -> None:
    cfg.MODEL.META_ARCHITECTURE = "CEL"  # the main method; every config names its own
    # The method's training stage (its STAGES, e.g. ZS3Net "segmentation" | "generator" |
    # "recursive"); "" = the first. A later stage starts from the earlier stage's MODEL.WEIGHTS.
    cfg.MODEL.STAGE = ""
    # The config whose run writes MODEL.WEIGHTS (an earlier stage): named, with its command, when
    # that file is missing at the start of training ("": MODEL.WEIGHTS is not a stage's output).
    cfg.MODEL.WEIGHTS_FROM = ""
    cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE = 255

    vocabulary = cfg.MODEL.VOCABULARY = CN()
    # Class names the training label ids index ([]: the training data set's stuff_classes).
    vocabulary.TRAIN = []
    # Class names predicted at evaluation ([]: each evaluated data set's stuff_classes).
    vocabulary.TEST = []


def _add_clip_config(cfg: CN) -> None:
    clip = cfg.MODEL.CLIP = CN()
    # An open_clip model name (or one registered by zsseg_d2, e.g. "ZSSeg-Tiny").
    clip.MODEL_NAME = "ViT-B-16"
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
    clip.ENSEMBLE_MASK_FILL = True  # pixels outside the mask set to CLIP's pixel mean ("mean")
    clip.ENSEMBLE_EXPAND_RATIO = 0.0  # grow the crop box by this fraction (reference: none)


def _add_semantic_config(cfg: CN) -> None:
    sem = cfg.MODEL.SEMANTIC = CN()
    # The space class names are embedded in, shared by every method (and by the CLIP ensemble and
    # the pseudo-label pass, which need it to be the space of MODEL.CLIP's image tower):
    # "clip_text": MODEL.CLIP's text tower with MODEL.CLIP.PROMPT_TEMPLATES;
    # "file": precomputed vectors from FILES (CLIP text embeddings made elsewhere, word vectors;
    # zsseg_d2/data/embeddings/ ships those of VOC and COCO-Stuff).
    sem.SOURCE = "clip_text"
    # .npz (arrays "names", "vectors") or .npy with "<stem>.names.txt" beside it; several files are
    # concatenated per class (e.g. word2vec and fastText, 600-d). Relative paths: from the working
    # directory, else from the repository root.
    sem.FILES = []
    sem.NORMALIZE = True  # L2-normalise each class vector (after concatenation, and after PCA)
    # > 0: project to this many dimensions by PCA (SZN: j = 20), fitted on the class names of
    # DATASETS.TRAIN and TEST (the thesis fits the whole word2vec vocabulary, not at hand here).
    sem.PCA_DIM = 0
    # Checkpoints record the text settings above (and MODEL.CLIP's name, weights, templates) and
    # the training vocabulary; loading one with other settings is an error naming both values.
    # True: load it anyway, with a warning.
    sem.ACCEPT_CHECKPOINT_MISMATCH = False


def _add_input_config(cfg: CN) -> None:
    # A name in DATASET_MAPPER_REGISTRY (zsseg_d2/data/build.py): "zs_semantic" (unseen pixels
    # ignored) or "zs_full_label" (unseen labels kept, ZS3Net's protocol).
    cfg.INPUT.DATASET_MAPPER_NAME = "zs_semantic"
    cfg.INPUT.FORMAT = "RGB"
    cfg.INPUT.COLOR_AUG_SSD = True
    cfg.INPUT.SIZE_DIVISIBILITY = -1  # pad training crops to this size (-1: no padding)
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0
    # Random Gaussian blur of training images (ZS3Net's augmentation): with probability PROB, a
    # blur of standard deviation drawn uniformly in [0, MAX_SIGMA) pixels.
    blur = cfg.INPUT.GAUSSIAN_BLUR = CN()
    blur.ENABLED = False
    blur.PROB = 0.5
    blur.MAX_SIGMA = 1.0
    # True: training skips an image/label pair that cannot be read (logged and counted) and takes
    # another image; False: the first one stops training with an error naming the file.
    cfg.INPUT.SKIP_UNREADABLE = False

    labels = cfg.INPUT.IMAGE_LABELS = CN()
    # Unseen image-level labels the training mapper gives each image (CEL's ranking loss, Table
    # 5): "none" | "pseudo" | "gt".
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
    # > 0: train this many epochs; SOLVER.MAX_ITER becomes ceil(EPOCHS x images / IMS_PER_BATCH),
    # the images of DATASETS.TRAIN counted after DATASETS.UNSEEN_IMAGES (0: SOLVER.MAX_ITER as set).
    cfg.SOLVER.EPOCHS = 0
    # Autocast dtype with SOLVER.AMP.ENABLED: "float16" (any CUDA GPU; loss scaling; on the CPU
    # training falls back to float32) or "bfloat16" (Ampere and later GPUs, the CPU; no scaling).
    cfg.SOLVER.AMP.PRECISION = "float16"
    # A second optimizer for the parameters of the named top-level modules (e.g. SIGN's
    # ["generator", "discriminator"]): its own algorithm and a constant learning rate; the
    # schedule applies to the first one only. [] = one optimizer for everything.
    second = cfg.SOLVER.SECOND_OPTIMIZER = CN()
    second.MODULES = []
    second.OPTIMIZER = "ADAM"  # "ADAM" | "ADAMW" | "SGD"
    second.BASE_LR = 2e-4


def _add_dataloader_config(cfg: CN) -> None:
    # Training batches in page-locked memory when MODEL.DEVICE is a GPU: faster copies to it.
    # (No persistent-workers option: the training loader is iterated once, without end.)
    cfg.DATALOADER.PIN_MEMORY = True


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


def _add_vgg_config(cfg: CN) -> None:
    # VGG-16 of the pixel-wise methods: FCN-32s (build_vgg16_fcn_backbone) and U-Net
    # (build_unet_vgg16_backbone). Widths shrink for tiny CPU configs.
    vgg = cfg.MODEL.VGG = CN()
    vgg.BASE_CHANNELS = 64  # conv1 width; the blocks have 1, 2, 4, 8, 8 times it (64: VGG-16)
    vgg.FC_CHANNELS = 4096  # fc6 / fc7 width of the FCN
    vgg.DROPOUT = 0.5  # after fc6 and fc7 (VGG's, kept by FCN)
    # torchvision's VGG-16 state dict file (vgg16-397923af.pth) for ImageNet weights; "": random.
    vgg.PRETRAINED = ""


def _add_deeplab_config(cfg: CN) -> None:
    # DeepLab backbones (build_deeplab_v3plus_backbone, build_deeplab_v3_backbone,
    # build_deeplab_v2_backbone); the ResNet
    # trunk reads MODEL.RESNETS (DEPTH 50/101/152, widths, NORM) and MODEL.BACKBONE.FREEZE_AT.
    deeplab = cfg.MODEL.DEEPLAB = CN()
    # Bottleneck blocks of res2..res5 ([]: from MODEL.RESNETS.DEPTH); for tiny models.
    deeplab.BLOCKS_PER_STAGE = []
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
    # Dropout after each of the decoder's two 3x3 convolutions ([]: none; ZS3Net's code: [0.5, 0.1]).
    deeplab.DECODER_DROPOUT = []
    # DeepLab-v3 (build_deeplab_v3_backbone): the trunk at OUTPUT_STRIDE and ASPP (ASPP_CHANNELS,
    # ASPP_DILATIONS, ASPP_DROPOUT, MULTI_GRID); the ASPP output is the feature, no decoder.
    # DeepLab-v2: trunk at output stride 8, ASPP-L summing 3x3 convolutions with these dilations.
    deeplab.V2_OUTPUT_STRIDE = 8
    deeplab.V2_DILATIONS = [6, 12, 18, 24]
    deeplab.V2_OUT_CHANNELS = 256  # feature width ("dense" channels)
