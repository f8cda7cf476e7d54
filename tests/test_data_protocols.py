"""Training-data protocols (DATASETS.UNSEEN_IMAGES) and the 21-way VOC / Pascal Context 33 sets."""

from __future__ import annotations

import numpy as np
import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.data import class_presence, load_sem_seg, protocols, training_dataset_dicts
from zsseg_d2.data.class_lists import load_class_list

CAMVID_RAW = {"tree": 5, "car": 8, "bicyclist": 10, "fence": 7, "pole": 2}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module: the CamVid labels are read once."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSSEG_CACHE", str(path))
        yield path


def _cfg(protocol, drop_classes=()):
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.DATASETS.TRAIN = ("camvid_train",)
    cfg.DATASETS.UNSEEN_IMAGES = protocol
    cfg.DATASETS.DROP_CLASSES = list(drop_classes)
    return cfg


def _raw_values(d):
    return set(
        np.flatnonzero(np.bincount(np.asarray(Image.open(d["sem_seg_file_name"])).ravel())).tolist()
    )


def test_drop_keeps_exactly_the_images_without_unseen_pixels(shared_data, cache, monkeypatch):
    images = DatasetCatalog.get("camvid_train")
    unseen_raw = {CAMVID_RAW[n] for n in ("tree", "car", "bicyclist")}
    expected = [d["image_id"] for d in images if not (_raw_values(d) & unseen_raw)]  # brute force
    assert len(expected) == 5  # almost every CamVid street scene has a tree or a car
    assert [d["image_id"] for d in training_dataset_dicts(_cfg("drop"))] == expected
    assert len(training_dataset_dicts(_cfg("keep"))) == len(images) == 367
    # DROP_CLASSES drops further images (SZN step 1: its train_unseen classes)
    more = [
        d["image_id"] for d in images if not (_raw_values(d) & (unseen_raw | {CAMVID_RAW["pole"]}))
    ]
    assert [d["image_id"] for d in training_dataset_dicts(_cfg("drop", ["pole"]))] == more
    assert len(more) < len(expected)
    # the second call reads the cache: no label file is decoded
    monkeypatch.setattr(
        protocols, "load_sem_seg", lambda *a: pytest.fail("label read despite the cache")
    )
    assert len(training_dataset_dicts(_cfg("drop"))) == 5


def test_class_presence_matches_labels_and_is_cached_per_file_list(shared_data, cache):
    images = DatasetCatalog.get("camvid_val")[:4]
    presence = class_presence("camvid_val", images)
    assert presence.shape == (4, 11)
    for row, d in zip(presence, images):
        assert set(np.flatnonzero(row).tolist()) == _raw_values(d) - {
            11
        }  # raw id = class id, 11 void
    class_presence("camvid_val", images[:2])  # another file list: another cache entry
    assert len(list((cache / "class_presence").glob("camvid_val-*.npy"))) == 2


def test_protocol_errors(shared_data, cache):
    with pytest.raises(ValueError, match="UNSEEN_IMAGES must be one of"):
        training_dataset_dicts(_cfg("ignore"))
    with pytest.raises(ValueError, match="only used with DATASETS.UNSEEN_IMAGES 'drop'"):
        training_dataset_dicts(_cfg("keep", ["fence"]))
    with pytest.raises(ValueError, match=r"DROP_CLASSES names \['Fence'\].*camvid_train"):
        training_dataset_dicts(_cfg("drop", ["Fence"]))  # the prompt name is "fence"
    with pytest.raises(ValueError, match="no training image is left"):
        seen = ["sky", "building", "pole", "road", "pavement", "sign symbol", "fence", "pedestrian"]
        training_dataset_dicts(_cfg("drop", seen))


def test_voc21_and_pascal_context_33_metadata(shared_data):
    voc21 = load_class_list("voc_21")
    assert (
        len(voc21.names) == 21
        and voc21.names[0] == "background"
        and voc21.raw_ids == tuple(range(21))
    )
    pc33 = load_class_list("pascal_context_33")
    assert len(pc33.names) == 33 and pc33.raw_ids == tuple(range(1, 34))
    reduced = MetadataCatalog.get("voc21_szn_9-2-10_train_aug")
    assert len(reduced.stuff_classes) == 21 and len(reduced.unseen_classes) == 10
    assert {"sheep", "train", "dog", "car"} <= set(reduced.unseen_classes)
    # the shared VOC crops read 21-way: background pixels are class 0, not ignored
    meta = MetadataCatalog.get("voc21_szn_17-2-2_crops_val")
    d = DatasetCatalog.get("voc21_szn_17-2-2_crops_val")[0]
    raw = np.asarray(Image.open(d["sem_seg_file_name"]))
    assert (load_sem_seg(d["sem_seg_file_name"], meta) == raw).all()
    assert (raw == 0).any()
