"""load_sem_seg: raw -> contiguous ids, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from PIL import Image

from zsseg_d2.data import load_sem_seg


def _png(path, values, dtype=np.uint8):
    Image.fromarray(np.asarray(values, dtype=dtype)).save(path)
    return path


def test_voc_mapping_background_ignored(tmp_path):
    """Raw VOC files (the local crops): 0 background -> 255, 1..20 -> 0..19."""
    path = _png(tmp_path / "l.png", [[0, 1, 2], [20, 255, 16]])
    label = load_sem_seg(path, MetadataCatalog.get("voc2012_crops_val"))
    assert label.dtype == np.uint8
    assert label.tolist() == [[255, 0, 1], [19, 255, 15]]


def test_camvid_void_ignored(tmp_path):
    path = _png(tmp_path / "l.png", [[11, 0, 10]])
    assert load_sem_seg(path, MetadataCatalog.get("camvid_val")).tolist() == [[255, 0, 10]]


def test_rgb_label_rejected(tmp_path):
    path = tmp_path / "rgb.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(ValueError, match="rgb.png"):
        load_sem_seg(path, MetadataCatalog.get("camvid_val"))


def test_wide_16bit_labels(tmp_path):
    meta = Metadata(name="wide").set(
        stuff_classes=[f"c{i}" for i in range(459)],
        ignore_label=65535,
        label_offset=0,
        raw_ignore_ids=[],
    )
    label = load_sem_seg(_png(tmp_path / "w.png", [[0, 255, 300, 65535]], np.uint16), meta)
    assert label.dtype == np.int64 and label.tolist() == [[0, 255, 300, 65535]]
    with pytest.raises(ValueError, match="value 459"):
        load_sem_seg(_png(tmp_path / "w2.png", [[459]], np.uint16), meta)


def test_real_voc_crops_and_labelme(shared_data):
    for name in ("voc2012_crops_val", "labelme_voc2011"):
        meta = MetadataCatalog.get(name)
        for d in DatasetCatalog.get(name):
            raw = np.asarray(Image.open(d["sem_seg_file_name"]))
            label = load_sem_seg(d["sem_seg_file_name"], meta)
            classes = (raw >= 1) & (raw <= 20)
            assert np.array_equal(label[classes], raw[classes] - 1)
            assert (label[~classes] == 255).all()
