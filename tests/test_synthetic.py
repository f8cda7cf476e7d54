"""Tests of the synthetic demo data set: determinism, label ranges, coverage, and image/label agreement."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from zsseg_d2.data import synthetic
from zsseg_d2.data.synthetic import (
    CLASS_NAMES,
    UNSEEN_CLASSES,
    draw_scene,
    generate,
    generate_split,
)

SIZE = (64, 80)  # not square: catches swapped height/width


def _read(record: dict) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.imread(record["file_name"], cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64)
    return image, cv2.imread(record["sem_seg_file_name"], cv2.IMREAD_UNCHANGED)


@pytest.fixture(scope="module")
def train_set(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[np.ndarray, np.ndarray]]:
    records = generate_split(tmp_path_factory.mktemp("synth"), "train", 150, seed=0, size=SIZE)
    return [_read(r) for r in records]


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate_split(tmp_path / name, "val", 6, seed=seed, size=SIZE)
    a, b, c = (_files(tmp_path / n) for n in "abc")
    assert len(a) == 12 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_splits_differ_for_one_seed(tmp_path: Path) -> None:
    train = generate_split(tmp_path, "train", 3, seed=0, size=SIZE)
    val = generate_split(tmp_path, "val", 3, seed=0, size=SIZE)
    assert all(
        Path(t["sem_seg_file_name"]).read_bytes() != Path(v["sem_seg_file_name"]).read_bytes()
        for t, v in zip(train, val)
    )


def test_records_sizes_and_label_range(train_set: list) -> None:
    for image, label in train_set:
        assert image.shape == (*SIZE, 3) and label.shape == SIZE and label.dtype == np.uint8
        assert label.max() < len(CLASS_NAMES)


def test_every_class_common_and_unseen_in_training_images(train_set: list) -> None:
    present = np.zeros(len(CLASS_NAMES))
    for _, label in train_set:
        present[np.unique(label)] += 1
    fraction = present / len(train_set)
    assert fraction.min() >= 0.25, dict(zip(CLASS_NAMES, fraction))
    assert all(fraction[CLASS_NAMES.index(c)] >= 0.3 for c in UNSEEN_CLASSES)
    things_per_image = [len(set(np.unique(lab)) & set(range(5, 10))) for _, lab in train_set]
    assert max(things_per_image) >= 3  # several things per scene, not always one


def test_class_lists_are_consistent() -> None:
    assert len(set(CLASS_NAMES)) == len(CLASS_NAMES) == 10
    assert set(UNSEEN_CLASSES) & set(synthetic.STUFF_CLASSES)
    assert set(UNSEEN_CLASSES) & set(synthetic.THING_CLASSES)


def _class_means(data: list, shift: int = 0) -> tuple[np.ndarray, float]:
    """Pooled mean colour per class and the mean squared distance of pixels to their class mean."""
    pixels = np.concatenate([im.reshape(-1, 3) for im, _ in data])
    labels = np.concatenate([np.roll(lab, shift, axis=1).ravel() for _, lab in data])
    means = np.stack([pixels[labels == c].mean(0) for c in range(len(CLASS_NAMES))])
    return means, float(((pixels - means[labels]) ** 2).sum(1).mean())


def test_label_map_matches_drawing(train_set: list) -> None:
    means, scatter = _class_means(train_set)
    distances = np.linalg.norm(means[:, None] - means[None], axis=-1) + 1e9 * np.eye(
        len(CLASS_NAMES)
    )
    assert distances.min() > 35, means.round()
    # single-colour classes: pooled mean is the drawn base colour (texture noise has mean 0)
    for name, colour in (
        ("sun", (250, 215, 30)),
        ("sand", (225, 195, 135)),
        ("grass", (70, 160, 45)),
        ("water", (25, 95, 130)),
    ):
        assert np.abs(means[CLASS_NAMES.index(name)] - colour).max() < 15, (name, means)
    # misaligning the labels by 5 px mixes colours: true labels explain the pixels far better
    assert scatter < 0.6 * _class_means(train_set, shift=5)[1]


def test_occluding_things_keep_their_colour_in_the_label_map() -> None:
    """On the raw drawing (no JPEG), every pixel labelled sun is yellow and every pixel labelled
    tree is dark green or brown, however the things overlap."""
    sun, tree = CLASS_NAMES.index("sun"), CLASS_NAMES.index("tree")
    for i in range(40):
        image, label = draw_scene(np.random.default_rng(i), (96, 96))
        image = image.astype(np.int64)
        r, g, b = image[label == sun].T
        assert np.all((r > 180) & (g > 150) & (b < 90))
        r, g, b = image[label == tree].T
        assert np.all((r < 150) & (g < 130) & (b < 80) & (r + g + b < 300))


def test_generate_writes_meta_and_skips_when_up_to_date(tmp_path: Path) -> None:
    generate(tmp_path, num_train=4, num_val=2, seed=1, size=SIZE)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["classes"] == CLASS_NAMES and meta["unseen_classes"] == UNSEEN_CLASSES
    assert len(list((tmp_path / "train" / "images").glob("*.jpg"))) == 4
    assert len(synthetic.split_dicts(tmp_path, "val")) == 2
    first = tmp_path / "train" / "images" / "00000.jpg"
    first.write_bytes(b"sentinel")  # a skipped call leaves the file alone
    generate(tmp_path, num_train=4, num_val=2, seed=1, size=SIZE)
    assert first.read_bytes() == b"sentinel"
    (tmp_path / "val" / "labels" / "00001.png").unlink()  # a missing file triggers regeneration
    generate(tmp_path, num_train=3, num_val=2, seed=1, size=SIZE)
    assert first.read_bytes() != b"sentinel"
    assert len(list((tmp_path / "train" / "images").glob("*.jpg"))) == 3
    assert (tmp_path / "val" / "labels" / "00001.png").is_file()


def test_bad_arguments_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_images"):
        generate_split(tmp_path, "train", 0, seed=0)
    with pytest.raises(ValueError, match="size"):
        generate_split(tmp_path, "train", 2, seed=0, size=(16, 64))
    with pytest.raises(FileNotFoundError, match="generate"):
        synthetic.split_dicts(tmp_path / "missing", "train")
