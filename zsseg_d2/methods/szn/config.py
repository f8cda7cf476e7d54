"""SZN's options (``MODEL.SZN``); its stages are ``MODEL.STAGE`` "embedding" (step 1) and
"seenmask" (step 2)."""

from __future__ import annotations

from detectron2.config import CfgNode as CN

from ...config import register_method_config


@register_method_config
def add_szn_config(cfg: CN) -> None:
    # Seenmask Zero-shot Network (Doshi 2018); its head is SEM_SEG_HEAD.NAME "SZNHead".
    szn = cfg.MODEL.SZN = CN()
    # "fcn_s": softmax over the seen classes (no zero-shot); "fcn_je": nearest class embedding over
    # all classes, no seenmask (the thesis says "among train_seen", but its Table 4 reports unseen
    # hits for FCN-JE: we infer among all); "szn": SEI with the seenmask; "szn_ps": SEI with the
    # ground-truth seenmask (oracle, evaluation only, step 1's weights).
    szn.VARIANT = "szn"
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
