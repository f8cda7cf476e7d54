"""Every data set of zsseg_d2, registered on import of :mod:`zsseg_d2.data`.

Splits (seen/unseen) are defined here once, with the data sets' own class names, and stored in
the metadata as prompt names (``unseen_classes`` is a subset of ``stuff_classes``):

- COCO-Stuff-164k, 171 classes, 156 seen / 15 unseen (the GZS3 split of the paper);
- Pascal VOC 2012 + SBD, 20 classes (background ignored), 15 seen / 5 unseen;
- Pascal VOC 2012 + SBD, 21 classes (background a class, as ZS3Net and SZN), with the SZN thesis's
  unseen sets U of its (9, 2, 10) and (17, 2, 2) splits, also on the thesis's own data (section
  6.1.1: SBD train, 8498 images; VOC 2011 val minus SBD train and val); Pascal Context 33 with U of
  (31, 2, 2), and with no unseen class (the thesis's Table 2 baselines);
- Pascal VOC 2012 + SBD (21 classes) and Pascal Context 60 (59 + background) with ZS3Net's
  K = 2, 4, 6, 8, 10 unseen classes;
- CamVid (local, 11 classes), 8 seen / 3 unseen: tree (a stuff class, 9.7% of training pixels),
  car (a frequent thing, 5.9%) and bicyclist (a rare thing, 0.3%), so that the unseen side mixes
  stuff, frequent and rare classes as COCO-Stuff's does;
- COCO-Stuff with all 182 ids, 167 seen / 15 unseen (the Relation Network's label space);
- CUB-200-2011, background and 200 species, 150 seen / 50 unseen species (the Relation Network's
  binary ZLSS; written by datasets/prepare_cub.py);
- open-vocabulary evaluation sets without a split: Pascal Context 59 / 459, ADE20K 150 / 847,
  VOC-20.
"""

from __future__ import annotations

import functools

from .class_lists import ClassList, load_class_list, read_names_file
from .registration import (
    DATASETS_ENV,
    SHARED_DATA_ENV,
    SplitFiles,
    data_root,
    missing_data_error,
    register_sem_seg,
)

COCO_STUFF_UNSEEN = (
    "cow", "giraffe", "suitcase", "frisbee", "skateboard", "carrot", "scissors", "cardboard",
    "clouds", "grass", "playingfield", "river", "road", "tree", "wall-concrete",
)  # fmt: skip
VOC_UNSEEN = ("pottedplant", "sheep", "sofa", "train", "tvmonitor")
# Unseen sets U of the SZN thesis's splits (|train_seen|, |train_unseen|, |U|). The thesis names
# sheep and train in every U, and dog and car in U of (9, 2, 10) (section 8.2.1); the other six of
# that U follow the thesis code's 10-class split, with dog in place of pottedplant.
SZN_UNSEEN = {
    "szn_9-2-10": (
        "bus",
        "car",
        "dog",
        "horse",
        "motorbike",
        "person",
        "sheep",
        "sofa",
        "train",
        "tvmonitor",
    ),
    "szn_17-2-2": ("sheep", "train"),
    "szn_21-0-0": (),  # no unseen class: the supervised baselines of Table 2
}
# Evaluation-only split of Table 6: the (9, 2, 10) model scored with "the unseen metrics only
# apply to the two unseen classes of sheep and train".
SZN_EVAL_UNSEEN = {"szn_9-2-2": ("sheep", "train")}
PASCAL_CONTEXT_33_UNSEEN = ("sheep", "train")  # U of the thesis's (31, 2, 2) split
PASCAL_CONTEXT_33_SIGN_UNSEEN = ("cow", "motorbike", "sofa", "cat")  # SIGN's / CaGNet's 4 unseen
# ZS3Net's and the recursive-training paper's splits: the first K of this list unseen, K = 2..10.
ZS3NET_UNSEEN_ORDER = (
    "cow", "motorbike", "aeroplane", "sofa", "cat", "tvmonitor", "train", "bottle", "chair", "pottedplant",
)  # fmt: skip
ZS3NET_K = (2, 4, 6, 8, 10)
CAMVID_UNSEEN = ("Tree", "Car", "Bicyclist")

VOC_LABEL_FIELDS = {"label_offset": 1, "raw_ignore_ids": (0,)}  # raw 0 = background: ignored
WIDE_LABEL_FIELDS = {"ignore_label": 65535}  # > 255 classes: 16-bit label PNGs


def class_fields(classes: ClassList, unseen_names: tuple[str, ...] = ()) -> dict:
    """Metadata class fields; ``unseen_names`` are the data set's own names, stored as prompts."""
    unknown = [name for name in unseen_names if name not in classes.names]
    if unknown:
        raise ValueError(f"unseen classes {unknown} are not in the class list {classes.names}")
    return {
        "stuff_classes": list(classes.prompts),
        "raw_class_names": list(classes.names),
        "unseen_classes": [classes.prompts[classes.names.index(n)] for n in unseen_names],
    }


def _names_file_fields(relative_path: str) -> dict:
    """Class fields read from a names file written by ``datasets/prepare_*.py`` (no split)."""
    path = data_root(DATASETS_ENV) / relative_path
    if not path.is_file():
        raise missing_data_error(path, DATASETS_ENV, "class names file")
    names = read_names_file(path)
    return {"stuff_classes": names, "raw_class_names": names, "unseen_classes": []}


def _synthetic_fields() -> dict:
    from .synthetic import CLASS_NAMES, UNSEEN_CLASSES

    return {
        "stuff_classes": list(CLASS_NAMES),
        "raw_class_names": list(CLASS_NAMES),
        "unseen_classes": list(UNSEEN_CLASSES),
    }


def _scenes_fields() -> dict:
    """The drawn COCO-Stuff scenes: COCO-Stuff names, prompted as in the COCO-Stuff class list."""
    from .scenes import CLASS_NAMES, UNSEEN_CLASSES

    coco = load_class_list("coco_stuff_171")
    prompts = {name: prompt for name, prompt in zip(coco.names, coco.prompts)}
    return {
        "stuff_classes": [prompts[name] for name in CLASS_NAMES],
        "raw_class_names": list(CLASS_NAMES),
        "unseen_classes": [prompts[name] for name in UNSEEN_CLASSES],
    }


def _register_prepared() -> None:
    """Data sets under $DETECTRON2_DATASETS, in the layout of datasets/README.md."""
    coco = class_fields(load_class_list("coco_stuff_171"), COCO_STUFF_UNSEEN)
    coco_182 = class_fields(load_class_list("coco_stuff_182"), COCO_STUFF_UNSEEN)
    for split in ("train2017", "val2017"):
        files = SplitFiles(DATASETS_ENV, f"coco/{split}", f"coco/stuffthingmaps_zsseg/{split}")
        register_sem_seg(f"coco_stuff_171_{split[:-4]}", files, coco)
        raw = SplitFiles(DATASETS_ENV, f"coco/{split}", f"coco/stuffthingmaps_trainval2017/{split}")
        register_sem_seg(f"coco_stuff_182_{split[:-4]}", raw, coco_182)  # as downloaded

    voc = load_class_list("voc_20")
    for split in ("train", "train_aug", "val"):
        files = SplitFiles(
            DATASETS_ENV,
            "VOCdevkit/VOC2012/JPEGImages",
            f"VOCdevkit/VOC2012/SegmentationClassZS/{split}",
        )
        register_sem_seg(f"voc_gzs3_{split}", files, class_fields(voc, VOC_UNSEEN))
        if split == "val":
            register_sem_seg("voc20_val", files, class_fields(voc))

    _register_voc21()
    _register_zs3net_splits()
    _register_cub()

    pc_images = "VOCdevkit/VOC2010/JPEGImages"
    pc33 = class_fields(load_class_list("pascal_context_33"), PASCAL_CONTEXT_33_UNSEEN)
    for split in ("train", "val"):
        files = SplitFiles(DATASETS_ENV, pc_images, f"pascal_context/labels_33/{split}")
        register_sem_seg(f"pascal_context_33_{split}", files, pc33, **VOC_LABEL_FIELDS)
        pc33_sign = class_fields(
            load_class_list("pascal_context_33"), PASCAL_CONTEXT_33_SIGN_UNSEEN
        )
        register_sem_seg(f"pascal_context_33_sign_{split}", files, pc33_sign, **VOC_LABEL_FIELDS)
        pc33_all = class_fields(load_class_list("pascal_context_33"))
        register_sem_seg(f"pascal_context_33_all_{split}", files, pc33_all, **VOC_LABEL_FIELDS)
    register_sem_seg(
        "pascal_context_59_val",
        SplitFiles(DATASETS_ENV, pc_images, "pascal_context/labels_59/val"),
        class_fields(load_class_list("pascal_context_59")),
    )
    register_sem_seg(
        "pascal_context_459_val",
        SplitFiles(DATASETS_ENV, pc_images, "pascal_context/labels_459/val"),
        functools.partial(_names_file_fields, "pascal_context/class_names_459.txt"),
        **WIDE_LABEL_FIELDS,
    )
    # ADE20K-150 is read straight from the official annotations (raw 0 = "other", ignored).
    register_sem_seg(
        "ade20k_150_val",
        SplitFiles(
            DATASETS_ENV,
            "ADEChallengeData2016/images/validation",
            "ADEChallengeData2016/annotations/validation",
        ),
        class_fields(load_class_list("ade20k_150")),
        **VOC_LABEL_FIELDS,
    )
    register_sem_seg(
        "ade20k_847_val",
        SplitFiles(DATASETS_ENV, "ade20k_full/images/val", "ade20k_full/labels/val"),
        functools.partial(_names_file_fields, "ade20k_full/class_names_847.txt"),
        **WIDE_LABEL_FIELDS,
    )
    for split in ("train", "val"):
        register_sem_seg(
            f"zsseg_shapes_{split}",
            SplitFiles(
                DATASETS_ENV, f"zsseg_shapes/{split}/images", f"zsseg_shapes/{split}/labels"
            ),
            _synthetic_fields,
        )
        register_sem_seg(
            f"zsseg_scenes_{split}",
            SplitFiles(
                DATASETS_ENV, f"zsseg_scenes/{split}/images", f"zsseg_scenes/{split}/labels"
            ),
            _scenes_fields,
        )


def _register_voc21() -> None:
    """VOC with background as class 0 (21-way), per key of :data:`SZN_UNSEEN`:
    ``voc21_<key>_{train_aug,val}`` (VOC 2012 + SBD, datasets/prepare_voc_sbd.py) and the SZN
    thesis's own data ``voc21_<key>_sbd_train`` (SBD train) and ``voc21_<key>_voc11_val`` (VOC 2011
    val minus SBD train and val), written by datasets/prepare_voc_szn.py."""
    voc21 = load_class_list("voc_21")
    folders = {
        "train_aug": "train_aug",
        "val": "val",
        "sbd_train": "sbd_train",
        "voc11_val": "voc11_val",
    }
    splits = [(key, unseen, list(folders)) for key, unseen in SZN_UNSEEN.items()]
    splits += [(key, unseen, ["voc11_val"]) for key, unseen in SZN_EVAL_UNSEEN.items()]
    for key, unseen, names in splits:
        for split in names:
            files = SplitFiles(
                DATASETS_ENV,
                "VOCdevkit/VOC2012/JPEGImages",
                f"VOCdevkit/VOC2012/SegmentationClass21/{folders[split]}",
            )
            register_sem_seg(f"voc21_{key}_{split}", files, class_fields(voc21, unseen))


def _cub_fields() -> dict:
    """CUB's classes (background and the 200 species) and its 50 unseen species, from the files
    datasets/prepare_cub.py writes."""
    root = data_root(DATASETS_ENV) / "cub"
    paths = [root / "class_names.txt", root / "unseen_classes.txt"]
    for path in paths:
        if not path.is_file():
            raise missing_data_error(path, DATASETS_ENV, "CUB class list (datasets/prepare_cub.py)")
    names, unseen = (read_names_file(path) for path in paths)
    unknown = [n for n in unseen if n not in names]
    if unknown:
        raise ValueError(f"unseen CUB classes {unknown} of {paths[1]} are not in {paths[0]}")
    return {"stuff_classes": names, "raw_class_names": names, "unseen_classes": unseen}


def _register_cub() -> None:
    """``cub_{train,test}``: CUB-200-2011 images of the seen (train) and unseen (test) species,
    label 0 background and k the k-th species (datasets/prepare_cub.py)."""
    for split in ("train", "test"):
        files = SplitFiles(DATASETS_ENV, f"cub/images/{split}", f"cub/labels/{split}")
        register_sem_seg(f"cub_{split}", files, _cub_fields)


def _register_zs3net_splits() -> None:
    """``voc21_zs3_k{K}_{train_aug,val}`` (VOC-21, labels of datasets/prepare_voc_sbd.py) and
    ``pascal_context_60_zs3_k{K}_{train,val}`` (datasets/prepare_pascal_context_60.py): background
    a class, the first K of :data:`ZS3NET_UNSEEN_ORDER` unseen."""
    voc21, pc60 = load_class_list("voc_21"), load_class_list("pascal_context_60")
    for k in ZS3NET_K:
        unseen = ZS3NET_UNSEEN_ORDER[:k]
        for split in ("train_aug", "val"):
            files = SplitFiles(
                DATASETS_ENV,
                "VOCdevkit/VOC2012/JPEGImages",
                f"VOCdevkit/VOC2012/SegmentationClass21/{split}",
            )
            register_sem_seg(f"voc21_zs3_k{k}_{split}", files, class_fields(voc21, unseen))
        for split in ("train", "val"):
            files = SplitFiles(
                DATASETS_ENV, "VOCdevkit/VOC2010/JPEGImages", f"pascal_context/labels_60/{split}"
            )
            register_sem_seg(
                f"pascal_context_60_zs3_k{k}_{split}", files, class_fields(pc60, unseen)
            )


def _register_shared() -> None:
    """The small real data sets of $ZSSEG_SHARED_DATA (see its README.md)."""
    camvid = class_fields(load_class_list("camvid_11"), CAMVID_UNSEEN)
    for split in ("train", "val"):
        files = SplitFiles(SHARED_DATA_ENV, f"camvid/{split}/images", f"camvid/{split}/labels")
        register_sem_seg(f"camvid_{split}", files, camvid, raw_ignore_ids=(11,))

    voc = class_fields(load_class_list("voc_20"), VOC_UNSEEN)
    crops = SplitFiles(
        SHARED_DATA_ENV, "voc2012_val_crops/images", "voc2012_val_crops/labels", ".png"
    )
    register_sem_seg("voc2012_crops_val", crops, voc, **VOC_LABEL_FIELDS)
    for key, unseen in SZN_UNSEEN.items():  # the same crops, 21-way (background a class)
        register_sem_seg(
            f"voc21_{key}_crops_val", crops, class_fields(load_class_list("voc_21"), unseen)
        )
    labelme = SplitFiles(
        SHARED_DATA_ENV, "labelme_voc2011/JPEGImages", "labelme_voc2011/SegmentationClass"
    )
    register_sem_seg("labelme_voc2011", labelme, voc, **VOC_LABEL_FIELDS)


def register_all() -> None:
    _register_prepared()
    _register_shared()
