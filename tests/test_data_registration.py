"""Registration, metadata, split helpers and lazy listing of the zsseg_d2 data sets."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from PIL import Image

import zsseg_d2.data  # noqa: F401
from zsseg_d2.data import builtin, seen_class_ids, unseen_class_ids
from zsseg_d2.data.class_lists import load_class_list

ALL = [
    "coco_stuff_171_train", "coco_stuff_171_val", "voc_gzs3_train_aug", "voc_gzs3_val", "voc20_val",
    "pascal_context_59_val", "pascal_context_459_val", "ade20k_150_val", "ade20k_847_val",
    "camvid_train", "camvid_val", "voc2012_crops_val", "labelme_voc2011",
    "zsseg_shapes_train", "zsseg_shapes_val",
]  # fmt: skip


def test_all_registered_with_gzs3_evaluator():
    for name in ALL:
        assert name in DatasetCatalog.list(), name
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "gzs3"
        assert meta.ignore_label == (
            65535 if name in ("pascal_context_459_val", "ade20k_847_val") else 255
        )


def test_class_list_sizes():
    sizes = {
        "coco_stuff_171": 171,
        "voc_20": 20,
        "pascal_context_59": 59,
        "ade20k_150": 150,
        "camvid_11": 11,
    }
    for key, size in sizes.items():
        classes = load_class_list(key)
        assert len(classes.names) == len(classes.prompts) == len(set(classes.prompts)) == size


def test_coco_stuff_split_156_15():
    meta = MetadataCatalog.get("coco_stuff_171_train")
    unseen = unseen_class_ids(meta)
    assert len(unseen) == 15 and len(seen_class_ids(meta)) == 156
    # raw PNG value = COCO id - 1: cow is COCO id 21 (thing index 19), wall-concrete id 172
    assert meta.stuff_classes[19] == "cow" and 19 in unseen
    assert meta.raw_class_names[unseen[-1]] == "wall-concrete"
    assert "concrete wall" in meta.unseen_classes and "playing field" in meta.unseen_classes
    assert load_class_list("coco_stuff_171").raw_ids[-1] == 181


def test_voc_split_and_prompt_names():
    meta = MetadataCatalog.get("voc_gzs3_val")
    assert unseen_class_ids(meta) == [15, 16, 17, 18, 19]  # pottedplant sheep sofa train tvmonitor
    assert seen_class_ids(meta) == list(range(15))
    assert meta.stuff_classes[15] == "potted plant" and meta.raw_class_names[15] == "pottedplant"
    assert meta.stuff_classes[19] == "tv monitor"
    assert MetadataCatalog.get("voc20_val").unseen_classes == []
    assert seen_class_ids(MetadataCatalog.get("voc20_val")) == list(range(20))


def test_camvid_split_8_3():
    meta = MetadataCatalog.get("camvid_val")
    assert unseen_class_ids(meta) == [5, 8, 10]  # tree, car, bicyclist
    assert seen_class_ids(meta) == [0, 1, 2, 3, 4, 6, 7, 9]
    assert meta.raw_ignore_ids == [11]


def test_split_helper_rejects_unknown_unseen_name():
    meta = Metadata(name="fake").set(stuff_classes=["a", "b"], unseen_classes=["c"])
    with pytest.raises(ValueError, match=r"\['c'\]"):
        unseen_class_ids(meta)


def test_camvid_dicts(shared_data):
    dicts = DatasetCatalog.get("camvid_val")
    assert len(dicts) == 101 and len({d["image_id"] for d in dicts}) == 101
    d = dicts[0]
    assert set(d) == {"file_name", "sem_seg_file_name", "height", "width", "image_id"}
    assert (d["height"], d["width"]) == (360, 480)
    assert len(DatasetCatalog.get("camvid_train")) == 367
    assert len(DatasetCatalog.get("voc2012_crops_val")) == 14
    assert len(DatasetCatalog.get("labelme_voc2011")) == 3


def _write_pair(root, image_dir, label_dir, stem, size=(6, 4), value=1):
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / label_dir).mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(root / image_dir / f"{stem}.jpg")
    Image.fromarray(np.full(size[::-1], value, np.uint16)).save(root / label_dir / f"{stem}.png")


def test_names_file_read_lazily(tmp_path, monkeypatch):
    """PC-459's names come from the prepared names file, read at first access only."""
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    fields = builtin._names_file_fields
    with pytest.raises(FileNotFoundError, match="class_names_459.txt"):
        fields("pascal_context/class_names_459.txt")
    (tmp_path / "pascal_context").mkdir()
    (tmp_path / "pascal_context/class_names_459.txt").write_text("accordion\naeroplane\n\n")
    assert fields("pascal_context/class_names_459.txt")["stuff_classes"] == [
        "accordion",
        "aeroplane",
    ]
    _write_pair(
        tmp_path, "VOCdevkit/VOC2010/JPEGImages", "pascal_context/labels_459/val", "2008_000001"
    )
    (d,) = DatasetCatalog.get("pascal_context_459_val")
    assert (d["image_id"], d["height"], d["width"]) == ("2008_000001", 4, 6)


def test_missing_image_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    _write_pair(tmp_path, "ade20k_full/images/val", "ade20k_full/labels/val", "a")
    (tmp_path / "ade20k_full/images/val/a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="a.jpg"):
        DatasetCatalog.get("ade20k_847_val")


def test_synthetic_shapes_registration(tmp_path, monkeypatch):
    """zsseg_shapes_{train,val}: files under $DETECTRON2_DATASETS/zsseg_shapes, classes from
    zsseg_d2.data.synthetic (a stand-in module when that file is not written yet)."""
    try:
        from zsseg_d2.data import synthetic
    except ImportError:
        synthetic = types.SimpleNamespace(
            CLASS_NAMES=["circle", "square", "star"], UNSEEN_CLASSES=["star"]
        )
        monkeypatch.setitem(sys.modules, "zsseg_d2.data.synthetic", synthetic)
    fields = builtin._synthetic_fields()
    assert fields["stuff_classes"] == list(synthetic.CLASS_NAMES)
    assert fields["unseen_classes"] == list(synthetic.UNSEEN_CLASSES)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    _write_pair(tmp_path, "zsseg_shapes/val/images", "zsseg_shapes/val/labels", "000")
    _write_pair(tmp_path, "zsseg_shapes/val/images", "zsseg_shapes/val/labels", "001")
    assert [d["image_id"] for d in DatasetCatalog.get("zsseg_shapes_val")] == ["000", "001"]
