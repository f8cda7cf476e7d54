"""The bad-input sweep: each thing a user can get wrong gives an error naming it and the fix, or a
counted skip; and no checkpoint or result file is ever left half-written.

Cases, in order: missing data root; unregistered data set name; corrupt image; truncated label
PNG; label id out of range; image/label size mismatch; empty vocabulary; duplicate class names;
unknown open_clip model name; missing, empty or truncated checkpoint; checkpoint of another
architecture; config key typo; unsafe YAML; pseudo-label file with unknown classes or images; NaN
loss during training; interrupted writes of checkpoints and result files.

Tool-level counted skips are tested with their tools: a corrupt image in ``tools/demo.py``
(tests/test_tools.py) and in the pseudo-label pass's summary (tests/test_pseudo_pass.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from PIL import Image

from zsseg_d2.data import (
    InferenceImageMapper,
    ZeroShotSemanticDatasetMapper,
    load_pseudo_labels,
    load_sem_seg,
)
from zsseg_d2.data.image_labels import PSEUDO_LABEL_FORMAT
from zsseg_d2.engine import Trainer, load_config
from zsseg_d2.engine.checkpoint import Checkpointer, load_trained_weights
from zsseg_d2.methods.cel import CELCriterion
from zsseg_d2.methods.cel.pseudo_labels.loading import PassImages
from zsseg_d2.modeling.clip import CLIPWeightsError
from zsseg_d2.utils.file_io import atomic_write

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml")
SMALL = ["INPUT.CROP.SIZE", "(64, 64)", "INPUT.SIZE_DIVISIBILITY", "64"]


@pytest.fixture(autouse=True)
def _text_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def tiny_model():
    return build_model(load_config(TINY))


def _png(path: Path, values, dtype=np.uint8) -> Path:
    Image.fromarray(np.asarray(values, dtype=dtype)).save(path)
    return path


def _camvid_record(tmp_path: Path, image_size=(8, 6), label_size=(8, 6)) -> dict:
    Image.new("RGB", image_size).save(tmp_path / "img.jpg")
    _png(tmp_path / "lab.png", np.zeros(label_size[::-1]))
    return {"file_name": str(tmp_path / "img.jpg"), "sem_seg_file_name": str(tmp_path / "lab.png"),
            "height": image_size[1], "width": image_size[0], "image_id": "img"}  # fmt: skip


def _camvid_mapper() -> ZeroShotSemanticDatasetMapper:
    return ZeroShotSemanticDatasetMapper(
        is_train=True, augmentations=[], image_format="RGB", dataset_name="camvid_train",
        vocabulary=list(MetadataCatalog.get("camvid_train").stuff_classes),
    )  # fmt: skip


# ---------------------------------------------------------------- data
def test_missing_data_root_names_path_variable_and_readme(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        DatasetCatalog.get("coco_stuff_171_val")
    message = str(err.value)
    assert str(tmp_path / "coco/stuffthingmaps_zsseg/val2017") in message
    assert "DETECTRON2_DATASETS" in message and "datasets/README.md" in message


def test_unregistered_data_set_fails_at_config_time_with_close_names():
    with pytest.raises(KeyError) as err:
        load_config(TINY, ["DATASETS.TEST", "('camvid_vall',)"])
    message = str(err.value)
    assert "DATASETS.TEST" in message and "'camvid_vall'" in message and "'camvid_val'" in message
    assert "datasets/README.md" in message


def test_corrupt_image_names_the_file_in_training_and_evaluation_and_is_a_failed_item_in_the_pass(
    tmp_path,
):
    record = _camvid_record(tmp_path)
    Path(record["file_name"]).write_bytes(b"\xff\xd8\xff not a jpeg")
    for mapper in (_camvid_mapper(), InferenceImageMapper(load_config(TINY))):
        with pytest.raises(OSError) as err:
            mapper(record)
        assert "img.jpg" in str(err.value) and "datasets/README.md" in str(err.value)
    item = PassImages(
        [record],
        MetadataCatalog.get("camvid_train"),
        T.ResizeShortestEdge(64, 640),
        all_images=True,
    )[0]
    assert item["status"] == "failed" and "img.jpg" in item["error"]


def test_truncated_label_png_names_the_file(tmp_path):
    data = _png(
        tmp_path / "full.png", np.random.default_rng(0).integers(0, 11, (64, 64))
    ).read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="truncated.png.*truncated or corrupt"):
        load_sem_seg(truncated, MetadataCatalog.get("camvid_val"))


@pytest.mark.parametrize(
    "dataset, raw, bad",
    [
        ("voc2012_crops_val", [[1, 21, 3]], 21),
        ("camvid_val", [[12, 0]], 12),
        ("voc_gzs3_val", [[0, 20]], 20),
    ],
)
def test_label_id_out_of_range_names_file_and_value(tmp_path, dataset, raw, bad):
    path = _png(tmp_path / "bad.png", raw)
    with pytest.raises(ValueError) as err:
        load_sem_seg(path, MetadataCatalog.get(dataset))
    assert str(path) in str(err.value) and f"value {bad}" in str(err.value)


def test_image_label_size_mismatch_names_both_files(tmp_path):
    with pytest.raises(ValueError) as err:
        _camvid_mapper()(_camvid_record(tmp_path, image_size=(8, 6), label_size=(8, 5)))
    assert "img.jpg is 8x6" in str(err.value) and "lab.png is 8x5" in str(err.value)


# ---------------------------------------------------------------- vocabulary and CLIP
def test_empty_vocabulary(tiny_model):
    for names in ([], ["car", "  "]):
        with pytest.raises(
            ValueError, match="empty vocabulary or empty class name in the evaluation vocabulary"
        ):
            tiny_model.set_vocabulary(names)


def test_duplicate_class_names(tiny_model):
    with pytest.raises(
        ValueError, match=r"duplicate class names \['cat'\].*each class must appear once"
    ):
        tiny_model.set_vocabulary(["cat", "dog", " cat"])


def test_unknown_open_clip_model_name_fails_when_the_model_is_built():
    with pytest.raises(
        CLIPWeightsError, match=r"'ViT-B-61' \(MODEL.CLIP.MODEL_NAME\).*e.g. 'ViT-B-16'"
    ):
        build_model(load_config(TINY, ["MODEL.CLIP.MODEL_NAME", "ViT-B-61"]))


# ---------------------------------------------------------------- checkpoints
def test_missing_empty_or_truncated_checkpoint(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match=r"missing.pth' not found \(MODEL.WEIGHTS\)"):
        load_trained_weights(tiny_model, str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="MODEL.WEIGHTS is empty.*pass MODEL.WEIGHTS"):
        load_trained_weights(tiny_model, "")
    whole = tmp_path / "whole.pth"
    torch.save({"model": tiny_model.state_dict()}, whole)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(whole.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cut.pth.*truncated file"):
        load_trained_weights(tiny_model, str(cut))


def test_checkpoint_of_another_architecture_lists_the_mismatches(tmp_path, tiny_model):
    other = build_model(load_config(TINY, ["MODEL.TRANSFORMER_DECODER.NUM_QUERIES", "8"]))
    path = tmp_path / "other.pth"
    torch.save({"model": other.state_dict(), "iteration": 0}, path)
    with pytest.raises(ValueError) as err:
        load_trained_weights(tiny_model, str(path))
    message = str(err.value)
    assert "does not fit this model's architecture" in message and "use the config file" in message
    assert "query_feat.weight: checkpoint (8, 64) vs model (16, 64)" in message


# ---------------------------------------------------------------- configs
def test_config_key_typo_is_named_with_the_keys_meant(tmp_path):
    expected = r"Non-existent key: MODEL.CEL.TEMPERATUR; did you mean \['MODEL.CEL.TEMPERATURE'.*command-line"
    with pytest.raises(KeyError, match=expected):
        load_config(TINY, ["MODEL.CEL.TEMPERATUR", "0.1"])
    typo = tmp_path / "typo.yaml"
    typo.write_text(f"_BASE_: {TINY}\nSOLVER:\n  BASE_LRR: 0.1\n")
    with pytest.raises(
        KeyError, match=r"SOLVER.BASE_LRR; did you mean \['SOLVER.BASE_LR'.*typo.yaml"
    ):
        load_config(str(typo))


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml' not found; pass --config-file"):
        load_config(str(tmp_path / "nope.yaml"))


def test_yaml_is_loaded_safely(tmp_path):
    """A config file cannot run code: Python tags are refused (Detectron2 alone would run them)."""
    evil = tmp_path / "evil.yaml"
    marker = tmp_path / "ran"
    evil.write_text(
        f"_BASE_: {TINY}\nOUTPUT_DIR: !!python/object/apply:os.system ['touch {marker}']\n"
    )
    with pytest.raises(yaml.constructor.ConstructorError, match="python/object/apply:os.system"):
        load_config(str(evil))
    assert not marker.exists()


# ---------------------------------------------------------------- pseudo-label files
@pytest.fixture
def camvid_ids(shared_data):
    return [d["image_id"] for d in DatasetCatalog.get("camvid_train")[:2]]


def _pseudo_file(path: Path, labels: dict) -> Path:
    path.write_text(json.dumps({"format": PSEUDO_LABEL_FORMAT, "dataset": "camvid_train", "threshold": 0.99,
                                "unseen_classes": ["tree", "car", "bicyclist"], "labels": labels}))  # fmt: skip
    return path


def test_pseudo_labels_with_unknown_or_seen_classes_are_refused(tmp_path, camvid_ids):
    for bad in ("giraffe", "road"):  # not a class; a seen class (pseudo labels are unseen only)
        path = _pseudo_file(tmp_path / f"{bad}.json", {camvid_ids[0]: ["car", bad]})
        with pytest.raises(ValueError) as err:
            load_pseudo_labels(path, "camvid_train")
        assert bad in str(err.value) and str(path) in str(err.value)


def test_pseudo_labels_for_unknown_images_are_counted_and_skipped(tmp_path, camvid_ids, caplog):
    path = _pseudo_file(
        tmp_path / "p.json", {camvid_ids[0]: ["car"], "nope_1": ["car"], "nope_2": []}
    )
    with caplog.at_level(logging.WARNING):
        assert load_pseudo_labels(path, "camvid_train")[camvid_ids[0]] == [8]
    assert "2 of 3 image ids" in caplog.text and "their labels are not used" in caplog.text
    with pytest.raises(ValueError, match="none of the 1 image ids"):
        load_pseudo_labels(
            _pseudo_file(tmp_path / "none.json", {"nope_1": ["car"]}), "camvid_train"
        )


# ---------------------------------------------------------------- training
def test_nan_loss_stops_training_naming_the_iteration(tmp_path, shared_data, monkeypatch):
    """From iteration 3 the loss is NaN: training stops there, the message names the iteration,
    the last checkpoint and the settings to change, and no NaN model is saved."""
    cfg = load_config(TINY, [*SMALL, "OUTPUT_DIR", str(tmp_path), "SOLVER.MAX_ITER", "6",
                             "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()"])  # fmt: skip
    criterion_forward = CELCriterion.forward
    calls = []

    def diverging(self, outputs, targets):
        calls.append(None)
        losses = criterion_forward(self, outputs, targets)
        return {**losses, "loss_ce": losses["loss_ce"] * math.nan} if len(calls) > 3 else losses

    monkeypatch.setattr(CELCriterion, "forward", diverging)
    trainer = Trainer(cfg)
    with pytest.raises(FloatingPointError) as err:
        trainer.train()
    message = str(err.value)
    assert "training stopped at iteration 3" in message and "SOLVER.BASE_LR" in message
    assert str(tmp_path / "model_0000002.pth") in message
    assert sorted(p.name for p in tmp_path.glob("*.pth")) == [
        f"model_000000{i}.pth" for i in range(3)
    ]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    state = torch.load(tmp_path / "model_0000002.pth", weights_only=True)["model"]
    assert all(torch.isfinite(value).all() for value in state.values())


# ---------------------------------------------------------------- half-written files
def test_interrupted_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    checkpointer = Checkpointer(model, save_dir=str(tmp_path))
    checkpointer.save("model_0000009")
    before = (tmp_path / "model_0000009.pth").read_bytes()

    def killed_mid_write(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0000019")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000009.pth"]
    assert (tmp_path / "model_0000009.pth").read_bytes() == before
    assert checkpointer.get_checkpoint_file() == str(tmp_path / "model_0000009.pth")


def test_interrupted_result_file_write_keeps_the_previous_file(tmp_path):
    """The pseudo-label file, its summary, metrics and caches are all written this way."""
    path = tmp_path / "pseudo.json"
    path.write_text('{"old": true}')
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as f:
            f.write('{"new": ')
            raise KeyboardInterrupt
    assert path.read_text() == '{"old": true}' and os.listdir(tmp_path) == ["pseudo.json"]
    with atomic_write(path, "w") as f:
        f.write('{"new": true}')
    assert json.loads(path.read_text()) == {"new": True} and os.listdir(tmp_path) == ["pseudo.json"]
