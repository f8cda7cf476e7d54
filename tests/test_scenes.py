"""The drawn COCO-Stuff scenes (zsseg_d2/data/scenes.py): names in the shipped text space, designed
pairs, determinism, and what the ranking loss needs to see in the training images."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from zsseg_d2.data import scenes
from zsseg_d2.data.class_lists import load_class_list
from zsseg_d2.data.scenes import CLASS_NAMES, PAIRS, SCENES, UNSEEN_CLASSES, neighbour_report
from zsseg_d2.data.synthetic import generate, generate_split, split_dicts

CLIP_FILE = "zsseg_d2/data/embeddings/coco_stuff_171.vitb16.multi.npy"
SIZE = (96, 112)


@pytest.fixture(scope="module")
def labels(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    records = generate_split(tmp_path_factory.mktemp("scenes"), "train", 200, 0, SIZE, SCENES)
    return [cv2.imread(r["sem_seg_file_name"], cv2.IMREAD_UNCHANGED) for r in records]


def test_names_are_coco_stuff_classes_and_pairs_cover_the_unseen() -> None:
    assert set(CLASS_NAMES) <= set(load_class_list("coco_stuff_171").names)
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES)
    assert sorted(u for u, _ in PAIRS) == sorted(UNSEEN_CLASSES)
    assert all(seen not in UNSEEN_CLASSES for _, seen in PAIRS)
    assert set(UNSEEN_CLASSES) & set(scenes.STUFF) and set(UNSEEN_CLASSES) & set(scenes.THINGS)


def test_each_pair_is_close_in_clip_text_space() -> None:
    """Each unseen class's nearest seen class is its designed neighbour, and the pair is among
    the closest 1% of the 14535 pairs of COCO-Stuff names."""
    report = neighbour_report(CLIP_FILE)
    assert [(r["unseen"], r["seen"]) for r in report] == list(PAIRS)
    for row in report:
        assert row["nearest_seen"] == row["seen"], row
        assert row["pairs"] == 171 * 170 // 2
        assert row["rank"] <= 0.01 * row["pairs"] and row["cosine"] > 0.9, row
    clouds = next(r for r in report if r["unseen"] == "clouds")
    assert clouds["cosine"] == pytest.approx(0.932, abs=1e-3)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        generate_split(tmp_path / name, "val", 4, 7, SIZE, SCENES)
    files = [
        {p.relative_to(tmp_path / n): p.read_bytes() for p in (tmp_path / n).rglob("*.*")}
        for n in "ab"
    ]
    assert len(files[0]) == 8 and files[0] == files[1]


def test_labels_and_class_frequencies(labels: list[np.ndarray]) -> None:
    present = np.zeros(len(CLASS_NAMES))
    for label in labels:
        assert label.shape == SIZE and label.max() < len(CLASS_NAMES)
        present[np.unique(label)] += 1
    assert (present / len(labels)).min() >= 0.15, dict(zip(CLASS_NAMES, present))


def test_unseen_classes_appear_without_their_neighbour(labels: list[np.ndarray]) -> None:
    """The ranking loss can only separate an unseen class from its neighbour in images that hold
    one and not the other; both kinds occur, and images with both too."""
    for unseen, seen in PAIRS:
        u, s = CLASS_NAMES.index(unseen), CLASS_NAMES.index(seen)
        has = [(u in np.unique(label), s in np.unique(label)) for label in labels]
        assert sum(a and not b for a, b in has) >= 20, unseen
        assert sum(b and not a for a, b in has) >= 20, seen
        assert sum(a and b for a, b in has) >= 2, (unseen, seen)


def test_generate_writes_meta_and_registers(tmp_path: Path, monkeypatch) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import zsseg_d2.data  # noqa: F401  (registers zsseg_scenes_*)

    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    generate(tmp_path / "zsseg_scenes", 3, 2, size=SIZE, scenes=SCENES)
    assert [r["image_id"] for r in split_dicts(tmp_path / "zsseg_scenes", "val")] == [
        "00000",
        "00001",
    ]
    assert len(DatasetCatalog.get("zsseg_scenes_train")) == 3
    metadata = MetadataCatalog.get("zsseg_scenes_val")
    assert metadata.raw_class_names == list(CLASS_NAMES)
    assert metadata.stuff_classes[0] == "sky" and "brick wall" in metadata.stuff_classes
    assert metadata.unseen_classes == list(UNSEEN_CLASSES)
