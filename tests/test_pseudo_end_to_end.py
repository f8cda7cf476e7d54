"""tools/generate_pseudo_labels.py end to end on real CamVid images: the tiny model (random weights)
and the tiny random CLIP, in one process and as two CPU processes through ``launch``; the final
file is the same and the data mapper's reader accepts it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import MetadataCatalog

from zsseg_d2.data import load_pseudo_labels, load_sem_seg

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES = 4


@pytest.fixture(scope="module")
def camvid_subset(shared_data, tmp_path_factory) -> Path:
    """A data root whose camvid/train holds the first few real CamVid training pairs (links)."""
    root = tmp_path_factory.mktemp("shared")
    for kind in ("images", "labels"):
        (root / "camvid/train" / kind).mkdir(parents=True)
    for label in sorted((shared_data / "camvid/train/labels").glob("*.png"))[:IMAGES]:
        image = shared_data / "camvid/train/images" / f"{label.stem}.jpg"
        (root / "camvid/train/labels" / label.name).symlink_to(label)
        (root / "camvid/train/images" / image.name).symlink_to(image)
    return root


def _arguments(root: Path, output: Path, *extra: str) -> list[str]:
    return [
        "--config-file", str(REPO_ROOT / "configs/cel/tiny/camvid_8-3.yaml"), "--dataset", "camvid_train",
        "--output", str(output), "--threshold", "0.5", "--batch-size", "2", "--no-progress", *extra,
        "MODEL.CLIP.CACHE_DIR", str(root / "clip_cache"), "DATALOADER.NUM_WORKERS", "1",
    ]  # fmt: skip


def _tool():
    path = REPO_ROOT / "tools/generate_pseudo_labels.py"
    spec = importlib.util.spec_from_file_location("generate_pseudo_labels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_pass_on_camvid_one_process_and_two_cpu_processes(
    camvid_subset, tmp_path, monkeypatch, run_tool
):
    monkeypatch.setenv("ZSSEG_SHARED_DATA", str(camvid_subset))
    single = tmp_path / "single" / "camvid_pseudo.json"
    tool = _tool()
    summary = tool.main(tool.parse_args(_arguments(camvid_subset, single)))
    assert json.loads((single.parent / "camvid_pseudo.summary.json").read_text()) == summary
    assert (
        summary["images"] == IMAGES
        and summary["images_done"] == IMAGES
        and summary["images_failed"] == 0
    )
    assert summary["proposals_per_image"] > 0
    # Ground-truth unseen classes per image, brute force from the label files.
    metadata = MetadataCatalog.get("camvid_train")
    unseen_ids = {metadata.stuff_classes.index(name): name for name in metadata.unseen_classes}
    expected_gt = {name: 0 for name in metadata.unseen_classes}
    for label in sorted((camvid_subset / "camvid/train/labels").glob("*.png")):
        for class_id in np.unique(load_sem_seg(label, metadata)):
            if int(class_id) in unseen_ids:
                expected_gt[unseen_ids[int(class_id)]] += 1
    assert {name: c["gt"] for name, c in summary["per_class"].items()} == expected_gt
    log = (single.parent / "camvid_pseudo.work" / "log-shard-000-of-001.txt").read_text()
    assert "images done" in log  # the summary is logged (and printed)
    assert (
        len(load_pseudo_labels(single, "camvid_train")) == IMAGES
    )  # what the mapper's "pseudo" mode reads

    # Two CPU processes through launch: one shard each, rank 0 merges; the same final file.
    launched = tmp_path / "launched" / "camvid_pseudo.json"
    run_tool(
        "tools/generate_pseudo_labels.py", *_arguments(camvid_subset, launched, "--num-gpus", "2")
    )
    assert launched.read_bytes() == single.read_bytes()
    assert (launched.parent / "camvid_pseudo.work" / "shard-001-of-002.jsonl").is_file()
