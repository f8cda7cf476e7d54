"""ZeroShotSemanticDatasetMapper on the real CamVid / VOC-crop data, and its augmentations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.data import (
    InferenceImageMapper,
    ZeroShotSemanticDatasetMapper,
    build_dataset_mapper,
    load_sem_seg,
)
from zsseg_d2.data.augmentations import ColorAugSSD, _ssd_distort
from zsseg_d2.data.image_labels import CAPTION_NOUN_FORMAT, PSEUDO_LABEL_FORMAT

CAMVID_UNSEEN = [5, 8, 10]  # tree, car, bicyclist


def _mapper(dataset, **kwargs):
    args = dict(
        is_train=True, augmentations=[], image_format="RGB", dataset_name=dataset,
        vocabulary=list(MetadataCatalog.get(dataset).stuff_classes),
    )  # fmt: skip
    args.update(kwargs)
    return ZeroShotSemanticDatasetMapper(**args)


def _check_masks(out):
    sem_seg, inst = out["sem_seg"], out["instances"]
    present = [c for c in torch.unique(sem_seg).tolist() if c != 255]
    assert inst.gt_classes.tolist() == present
    assert inst.gt_masks.dtype == torch.bool and inst.gt_masks.shape == (
        len(present),
        *sem_seg.shape,
    )
    for c, mask in zip(present, inst.gt_masks):
        assert torch.equal(mask, sem_seg == c)


@pytest.mark.parametrize("mode", ["none", "gt"])
def test_camvid_unseen_pixels_ignored_and_image_labels(shared_data, mode):
    mapper = _mapper("camvid_train", unseen_mode=mode)
    meta = MetadataCatalog.get("camvid_train")
    for d in DatasetCatalog.get("camvid_train")[:3]:
        out = mapper(d)
        full = load_sem_seg(d["sem_seg_file_name"], meta)
        expected = full.astype(np.int64)
        for c in CAMVID_UNSEEN:  # reference: one class at a time
            expected[full == c] = 255
        assert torch.equal(out["sem_seg"], torch.from_numpy(expected))
        assert out["image"].shape == (3, 360, 480) and out["image"].dtype == torch.uint8
        _check_masks(out)
        seen_present = sorted(set(np.unique(expected).tolist()) - {255})
        unseen_present = sorted(set(np.unique(full).tolist()) & set(CAMVID_UNSEEN))
        assert unseen_present, "these images contain unseen classes"
        expected_labels = seen_present + (unseen_present if mode == "gt" else [])
        assert out["image_labels"].tolist() == sorted(expected_labels)


def _pseudo_file(path, labels, dataset="camvid_train", unseen=("tree", "car", "bicyclist")):
    data = {"format": PSEUDO_LABEL_FORMAT, "dataset": dataset, "threshold": 0.99,
            "unseen_classes": list(unseen), "labels": labels}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_pseudo_mode_via_config(shared_data, tmp_path):
    dicts = DatasetCatalog.get("camvid_train")[:2]
    path = _pseudo_file(
        tmp_path / "p.json", {dicts[0]["image_id"]: ["bicyclist"], dicts[1]["image_id"]: []}
    )
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.DATASETS.TRAIN = ("camvid_train",)
    cfg.INPUT.MIN_SIZE_TRAIN = (360,)
    cfg.INPUT.COLOR_AUG_SSD = False
    cfg.INPUT.IMAGE_LABELS.UNSEEN_MODE = "pseudo"
    cfg.INPUT.IMAGE_LABELS.PSEUDO_LABEL_FILE = str(path)
    mapper = build_dataset_mapper(cfg, is_train=True)
    for d, pseudo in zip(dicts, ([10], [])):
        out = mapper(d)
        seen = [c for c in torch.unique(out["sem_seg"]).tolist() if c != 255]
        assert out["image_labels"].tolist() == sorted(seen + pseudo)


def test_voc_crops_seen_only(shared_data):
    mapper = _mapper("voc2012_crops_val", unseen_mode="gt")
    meta = MetadataCatalog.get("voc2012_crops_val")
    unseen_found = 0
    for d in DatasetCatalog.get("voc2012_crops_val"):
        out = mapper(d)
        full = load_sem_seg(d["sem_seg_file_name"], meta)
        is_unseen = full >= 15  # pottedplant .. tvmonitor are 15..19 (255 excluded below)
        is_unseen &= full != 255
        unseen_found += int(is_unseen.any())
        assert (out["sem_seg"].numpy()[is_unseen] == 255).all()
        assert (out["sem_seg"].numpy()[~is_unseen] == full[~is_unseen]).all()
        _check_masks(out)
        assert set(out["image_labels"].tolist()) == set(np.unique(full).tolist()) - {255}
    assert unseen_found > 0


def test_augmented_crop_pad_and_consistency(shared_data):
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.DATASETS.TRAIN = ("camvid_train",)
    cfg.INPUT.MIN_SIZE_TRAIN = (200, 240, 280)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.CROP.ENABLED = True
    cfg.INPUT.CROP.TYPE = "absolute"
    cfg.INPUT.CROP.SIZE = (150, 150)
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 0.75
    cfg.INPUT.SIZE_DIVISIBILITY = 32
    cfg.INPUT.IMAGE_LABELS.UNSEEN_MODE = "gt"
    mapper = build_dataset_mapper(cfg, is_train=True)
    np.random.seed(0)
    for d in DatasetCatalog.get("camvid_train")[:4]:
        out = mapper(d)
        assert out["image"].shape == (3, 160, 160)  # 150 crop padded to a multiple of 32
        assert (out["sem_seg"][150:] == 255).all() and (out["sem_seg"][:, 150:] == 255).all()
        assert not set(torch.unique(out["sem_seg"]).tolist()) & set(CAMVID_UNSEEN)
        _check_masks(out)
        assert set(out["instances"].gt_classes.tolist()) <= set(out["image_labels"].tolist())


def test_caption_nouns_remap_and_drop(shared_data, tmp_path):
    """Open-vocabulary training: ids index the noun vocabulary; nouns dropped with probability p."""
    meta = MetadataCatalog.get("camvid_train")
    vocabulary = ["dog", "kite"] + [meta.stuff_classes[c] for c in (0, 1, 2, 3, 4, 6, 7, 9)]
    d = DatasetCatalog.get("camvid_train")[0]
    path = tmp_path / "nouns.json"
    path.write_text(json.dumps({"format": CAPTION_NOUN_FORMAT, "vocabulary": vocabulary,
                                "labels": {d["image_id"]: ["kite", "dog"]}}))  # fmt: skip
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.DATASETS.TRAIN = ("camvid_train",)
    cfg.INPUT.MIN_SIZE_TRAIN = (360,)
    cfg.INPUT.COLOR_AUG_SSD = False
    cfg.INPUT.IMAGE_LABELS.NOUN_FILE = str(path)
    for drop, nouns in ((0.0, {0, 1}), (1.0, set())):
        cfg.INPUT.IMAGE_LABELS.NOUN_DROP_PROB = drop
        out = build_dataset_mapper(cfg, is_train=True)(d)
        seen = set(torch.unique(out["sem_seg"]).tolist()) - {255}
        assert seen and min(seen) >= 2  # seen classes now index the vocabulary (offset by 2)
        full = load_sem_seg(d["sem_seg_file_name"], meta)
        road = out["sem_seg"].numpy() == vocabulary.index("road")
        assert np.array_equal(road, full == 3) or np.array_equal(road, full[:, ::-1] == 3)  # flip
        assert set(out["image_labels"].tolist()) == seen | nouns


def test_ssd_distort_steps():
    image = np.full((2, 2, 3), 100, np.uint8)
    same = dict(
        brightness=0.0, contrast=1.0, contrast_last=False, saturation=1.0, hue=0, img_format="RGB"
    )
    assert (_ssd_distort(image, **same) == 100).all()
    assert (_ssd_distort(image, **{**same, "brightness": 20.0}) == 120).all()
    assert (_ssd_distort(image, **{**same, "brightness": 200.0}) == 255).all()  # clipped
    assert (_ssd_distort(image, **{**same, "contrast": 1.5}) == 150).all()
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 200
    greyish = _ssd_distort(red, **{**same, "saturation": 0.0})
    assert greyish[0, 0, 0] == greyish[0, 0, 1] == greyish[0, 0, 2]  # no saturation left
    np.random.seed(1)
    out = ColorAugSSD("RGB").get_transform(image).apply_image(image)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_bad_mode_named():
    with pytest.raises(ValueError, match="UNSEEN_MODE"):
        _mapper("camvid_train", unseen_mode="all")


def test_inference_mapper_gives_detectron2_images_without_reading_labels(shared_data):
    from detectron2.data import DatasetMapper

    from zsseg_d2.engine import load_config

    tiny = Path(__file__).resolve().parents[1] / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"
    cfg = load_config(str(tiny), ["INPUT.MIN_SIZE_TEST", "200"])
    ours, detectron2_mapper = InferenceImageMapper(cfg), DatasetMapper(cfg, is_train=False)
    for d in DatasetCatalog.get("camvid_val")[:3]:
        out, reference = ours(d), detectron2_mapper(d)
        assert out["image"].shape == (3, 200, 267) and torch.equal(out["image"], reference["image"])
        assert "sem_seg" not in out and out["sem_seg_file_name"] == d["sem_seg_file_name"]
        assert (out["height"], out["width"]) == (360, 480)
