"""The small-CLIP training of tools/train_clip.py: regions, batches, and zero-shot transfer that a
broken pipeline would not show (a CLIP trained for seconds on drawn scenes classifies held-out
crops far above chance, unseen classes included)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from zsseg_d2.clip_training import (
    ClipTrainingSettings,
    RegionSet,
    build_region_set,
    class_boxes,
    class_distinct_batch,
    crop_accuracy,
    random_boxes,
)
from zsseg_d2.clip_training.recipe import train_and_save
from zsseg_d2.data.synthetic import CLASS_NAMES, UNSEEN_CLASSES, generate
from zsseg_d2.engine import load_config
from zsseg_d2.modeling.clip.loader import create_clip_model

REPO = Path(__file__).resolve().parents[1]


def test_class_boxes_are_the_tight_boxes_of_each_class() -> None:
    label = np.full((8, 10), 255, np.uint8)
    label[0:2, 2:6] = 1  # 8 pixels
    label[5, 7] = 3  # 1 pixel
    label[6:8, 0:3] = 0  # 6 pixels
    boxes, classes = class_boxes(label, num_classes=4, min_fraction=0.0)
    assert classes.tolist() == [0, 1, 3]
    assert boxes.tolist() == [[0, 6, 3, 8], [2, 0, 6, 2], [7, 5, 8, 6]]
    # 2 / 80 of the image: the single pixel of class 3 is dropped, ignore (255) is never a class
    boxes, classes = class_boxes(label, num_classes=4, min_fraction=2 / 80)
    assert classes.tolist() == [0, 1]


def test_random_boxes_keep_only_boxes_dominated_by_their_class() -> None:
    label = np.zeros((40, 40), np.uint8)
    label[:, 20:] = 1
    label[:5] = 255  # ignored rows count for no class
    boxes, classes = random_boxes(label, 2, np.random.default_rng(0), count=200, min_dominance=0.9)
    assert 0 < len(boxes) < 200
    for (x0, y0, x1, y1), c in zip(boxes.int().tolist(), classes.tolist()):
        window = label[y0:y1, x0:x1]
        labelled = window[window < 2]
        assert (labelled == c).mean() >= 0.9  # brute force over the box
        assert 10 <= x1 - x0 <= 30 and 10 <= y1 - y0 <= 30  # 1/4 to 3/4 of the side
    assert set(classes.tolist()) == {0, 1}


def test_class_distinct_batch_has_one_region_of_each_class_per_group() -> None:
    labels = torch.tensor([2, 0, 1, 2, 0, 2, 1])
    class_rows = [torch.nonzero(labels == c).flatten() for c in range(3)]
    batch = class_distinct_batch(class_rows, groups=50, generator=torch.Generator().manual_seed(0))
    assert batch.shape == (50, 3)
    assert torch.equal(labels[batch], torch.tensor([0, 1, 2]).expand(50, 3))
    assert len(torch.unique(batch[:, 2])) == 3  # every region of class 2 drawn at some point


def test_crop_accuracy_counts_seen_unseen_and_unseen_among_unseen() -> None:
    text = torch.eye(4)
    # crops: class 0 right, class 1 wrong (-> 2), class 2 (unseen) wrong among all (-> 0) but right
    # among unseen {2, 3}, class 3 (unseen) right
    embeds = torch.tensor([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [1.0, 0, 0.5, 0.2], [0, 0, 0, 1.0]])
    regions = RegionSet(
        torch.zeros(4, 3, 2, 2), torch.tensor([0, 1, 2, 3]), ["a", "b", "c", "d"], [2, 3]
    )
    accuracy = crop_accuracy(embeds, regions, text)
    assert accuracy["seen"] == 50.0 and accuracy["unseen"] == 50.0
    assert accuracy["unseen_among_unseen"] == 100.0
    assert accuracy["chance_all"] == 25.0 and accuracy["chance_unseen"] == 50.0


@pytest.fixture(scope="module")
def trained_clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A ZSSeg-Tiny CLIP trained for 100 steps on the regions of 80 drawn scenes."""
    root = tmp_path_factory.mktemp("clip_training")
    generate(root / "zsseg_shapes", num_train=80, num_val=30)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETECTRON2_DATASETS", str(root))
        patch.setenv("ZSSEG_CACHE", str(root / "cache"))
        cfg = load_config(str(REPO / "configs" / "cel" / "tiny" / "shapes.yaml"))
        settings = ClipTrainingSettings(steps=100, groups=4, lr=2e-3, warmup=20, seed=0)
        report = train_and_save(cfg, root / "clip", settings, random_regions=4, progress=False)
        _, preprocess = create_clip_model("ZSSeg-Tiny", "")
        train_regions = build_region_set("zsseg_shapes_train", preprocess, random_per_image=4)
    return {"report": report, "root": root, "train_regions": train_regions}


def test_trained_clip_classifies_held_out_crops_far_above_chance(trained_clip: dict) -> None:
    accuracy = trained_clip["report"]["val_accuracy"]
    assert accuracy["chance_all"] == 10.0 and accuracy["chance_unseen"] == 50.0
    assert accuracy["seen"] >= 50.0  # 5x chance among all 10 classes
    assert accuracy["unseen_among_unseen"] >= 75.0  # water vs car, as the pseudo-label pass asks
    assert accuracy["unseen"] >= 30.0  # unseen crops among all classes: 3x chance


def test_checkpoint_and_report_load_through_the_inference_path(trained_clip: dict) -> None:
    report = trained_clip["report"]
    checkpoint = Path(report["checkpoint"])
    model, _ = create_clip_model("ZSSeg-Tiny", str(checkpoint))  # MODEL.CLIP.PRETRAINED <file>
    state = torch.load(checkpoint, weights_only=True)
    assert torch.equal(model.logit_scale, state["logit_scale"])
    assert float(model.logit_scale.exp()) > 14.3  # the learned scale grew from CLIP's 1/0.07
    saved = json.loads((checkpoint.parent / "clip.json").read_text())
    assert (
        saved["val_accuracy"] == report["val_accuracy"] and saved["model_config"]["embed_dim"] == 64
    )
    # the regions: every class, unseen ones included, from the training split only
    counts = trained_clip["train_regions"].class_counts()
    assert len(counts) == len(CLASS_NAMES) and all(count > 0 for count in counts)
    assert (
        report["train_split"] == "zsseg_shapes_train" and report["val_split"] == "zsseg_shapes_val"
    )
    assert {CLASS_NAMES[i] for i in trained_clip["train_regions"].unseen_ids} == set(UNSEEN_CLASSES)


def test_training_refuses_the_validation_split(tmp_path: Path) -> None:
    cfg = load_config(
        str(REPO / "configs" / "cel" / "tiny" / "shapes.yaml"),
        ["DATASETS.TRAIN", "('zsseg_shapes_val',)"],
    )
    with pytest.raises(ValueError, match="must not train on the validation split"):
        train_and_save(cfg, tmp_path, ClipTrainingSettings(steps=1), progress=False)


def test_locked_text_of_another_width_is_refused(
    trained_clip: dict, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("DETECTRON2_DATASETS", str(trained_clip["root"]))
    vectors = tmp_path / "text.npz"
    np.savez(
        vectors, names=np.array(CLASS_NAMES), vectors=np.eye(len(CLASS_NAMES), dtype=np.float32)
    )
    cfg = load_config(str(REPO / "configs" / "cel" / "tiny" / "shapes.yaml"))
    with pytest.raises(ValueError, match="are 10-d but the CLIP model's embedding is 64-d"):
        train_and_save(
            cfg, tmp_path, ClipTrainingSettings(steps=1), text_files=[str(vectors)], progress=False
        )


def _unseen_pixel_accuracy(clip_file: str) -> float:
    """The CLIP ensemble (Table 4) on the ground-truth class masks of the validation scenes, with a
    model that never predicts unseen classes (p_model 0.9 spread over seen, 0.1 over unseen): the
    fraction of unseen pixels whose mask gets its right class."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zsseg_d2.data.sem_seg_io import load_sem_seg, read_image
    from zsseg_d2.modeling.clip import ClipEnsemble, unseen_class_mask
    from zsseg_d2.modeling.semantic import build_semantic_source

    cfg = load_config(
        str(REPO / "configs" / "cel" / "tiny" / "shapes.yaml"), ["MODEL.CLIP.PRETRAINED", clip_file]
    )
    metadata = MetadataCatalog.get("zsseg_shapes_val")
    unseen = unseen_class_mask(metadata.stuff_classes, metadata.unseen_classes)
    text = build_semantic_source(cfg)(metadata.stuff_classes)
    ensemble = ClipEnsemble.from_config(cfg)
    p_model = torch.where(unseen, 0.1 / unseen.sum(), 0.9 / (~unseen).sum())
    correct = total = 0
    for record in DatasetCatalog.get("zsseg_shapes_val"):
        label = torch.from_numpy(
            load_sem_seg(record["sem_seg_file_name"], metadata).astype(np.int64)
        )
        image = torch.from_numpy(np.array(read_image(record["file_name"], "RGB"))).permute(2, 0, 1)
        present = torch.unique(label)
        masks = label[None] == present[:, None, None]
        predicted = ensemble(
            image, masks.float(), p_model.expand(len(present), -1), unseen, text
        ).argmax(dim=1)
        segmentation = predicted[masks.int().argmax(dim=0)]
        is_unseen = unseen[label]
        correct += (segmentation[is_unseen] == label[is_unseen]).sum().item()
        total += is_unseen.sum().item()
    return correct / total


def test_ensemble_with_the_trained_clip_segments_unseen_pixels(
    trained_clip: dict, monkeypatch
) -> None:
    monkeypatch.setenv("DETECTRON2_DATASETS", str(trained_clip["root"]))
    monkeypatch.setenv("ZSSEG_CACHE", str(trained_clip["root"] / "cache"))
    assert _unseen_pixel_accuracy(trained_clip["report"]["checkpoint"]) >= 0.6
    assert _unseen_pixel_accuracy("") <= 0.2  # random CLIP: nothing to transfer
