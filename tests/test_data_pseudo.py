"""load_pseudo_labels: the file of tools/generate_pseudo_labels.py, validated."""

from __future__ import annotations

import json

import pytest
from detectron2.data import DatasetCatalog

from zsseg_d2.data import load_pseudo_labels
from zsseg_d2.data.image_labels import PSEUDO_LABEL_FORMAT


def _write(path, labels, **overrides):
    data = {"format": PSEUDO_LABEL_FORMAT, "dataset": "camvid_train", "threshold": 0.99,
            "unseen_classes": ["tree", "car", "bicyclist"], "labels": labels}  # fmt: skip
    data.update(overrides)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def ids(shared_data):
    return [d["image_id"] for d in DatasetCatalog.get("camvid_train")[:3]]


def test_valid_file_to_class_ids(tmp_path, ids):
    path = _write(tmp_path / "p.json", {ids[0]: ["car", "tree"], ids[1]: ["bicyclist"], ids[2]: []})
    assert load_pseudo_labels(path, "camvid_train") == {ids[0]: [5, 8], ids[1]: [10], ids[2]: []}


def test_wrong_format(tmp_path, ids):
    path = _write(tmp_path / "p.json", {}, format="something/else")
    with pytest.raises(ValueError, match="something/else"):
        load_pseudo_labels(path, "camvid_train")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json"):
        load_pseudo_labels(tmp_path / "list.json", "camvid_train")


def test_other_dataset_or_split_rejected(tmp_path, ids):
    with pytest.raises(ValueError, match="camvid_val"):
        load_pseudo_labels(_write(tmp_path / "a.json", {}, dataset="camvid_val"), "camvid_train")
    with pytest.raises(ValueError, match="unseen classes"):
        load_pseudo_labels(_write(tmp_path / "b.json", {}, unseen_classes=["car"]), "camvid_train")
