"""The pseudo-label pass on a small registered data set: final file, resume after kills at several
points (byte-identical), shard merge equality, corrupt and missing images, settings mismatch.

The proposal model is a stand-in whose masks come from the image's colours (deterministic, per
image); CLIP is the tiny random one. Everything else is the real pass.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from zsseg_d2.engine import load_config
from zsseg_d2.methods.cel.pseudo_labels.records import PassLayout, RecordFile
from zsseg_d2.methods.cel.pseudo_labels.runner import (
    IncompleteShardsError,
    merge_if_complete,
    merge_shards,
    run_shard,
)
from zsseg_d2.modeling.clip import ClipCropClassifier, create_clip_model

REPO_ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["sky", "road", "tree", "car"]
UNSEEN = ["tree", "car"]
THRESHOLD = 0.7


class ColourProposals(torch.nn.Module):
    """Six masks per image from its colours at full size; optionally 'killed' after some calls."""

    def __init__(self, die_after_calls: int | None = None):
        super().__init__()
        self.calls, self.die_after_calls = 0, die_after_calls

    def predict_mask_probs(self, batched_inputs):
        if self.die_after_calls is not None and self.calls >= self.die_after_calls:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        masks = []
        for x in batched_inputs:
            image = F.interpolate(
                x["image"].float()[None], size=(x["height"], x["width"]), mode="bilinear"
            )[0]
            masks.append(torch.cat([(image - 110) / 15, (140 - image) / 15]).sigmoid())
        return masks


def _write_dataset(root: Path, count: int = 9) -> list[dict]:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    dicts = []
    for k in range(count):
        height, width = (40, 48) if k % 3 else (48, 40)  # two sizes: batches never mix them
        image = np.zeros((height, width, 3), np.uint8)
        for _ in range(4):  # a few coloured rectangles
            y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
            image[y : y + rng.integers(6, 20), x : x + rng.integers(6, 20)] = rng.integers(
                0, 256, 3
            )
        label = rng.integers(0, 2, (height, width)).astype(np.uint8)  # seen classes only ...
        if k != 4:  # ... except image 4: fully labelled with seen classes -> skipped
            label[: height // 4] = 255 if k % 2 else 2 + (k % 4 == 0)
        stem = f"img{k:02d}"
        Image.fromarray(image).save(root / "images" / f"{stem}.png")
        Image.fromarray(label).save(root / "labels" / f"{stem}.png")
        dicts.append(
            {
                "file_name": str(root / "images" / f"{stem}.png"),
                "sem_seg_file_name": str(root / "labels" / f"{stem}.png"),
                "height": height,
                "width": width,
                "image_id": stem,
            }
        )
    return dicts


def _register(dicts: list[dict]) -> str:
    name = f"pseudo_test_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, lambda: [dict(d) for d in dicts])
    MetadataCatalog.get(name).set(
        stuff_classes=CLASSES,
        unseen_classes=UNSEEN,
        ignore_label=255,
        label_offset=0,
        raw_ignore_ids=[],
    )
    return name


@pytest.fixture(scope="module")
def classifier():
    model, preprocess = create_clip_model("ZSSeg-Tiny", "")
    return ClipCropClassifier(model, preprocess, expand_ratio=0.2, mask_fill=True, batch_size=4)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return load_config(
        str(REPO_ROOT / "configs/cel/tiny/camvid_8-3.yaml"),
        [
            "MODEL.CLIP.CACHE_DIR", str(tmp_path_factory.mktemp("clip_cache")),
            "INPUT.MIN_SIZE_TEST", 32, "INPUT.MAX_SIZE_TEST", 64,
            "PSEUDO_LABEL.THRESHOLD", THRESHOLD, "PSEUDO_LABEL.IMS_PER_BATCH", 2,
            "PSEUDO_LABEL.CROP_BATCH_SIZE", 4, "PSEUDO_LABEL.EXPAND_RATIO", 0.2, "PSEUDO_LABEL.MASK_FILL", True,
            "PSEUDO_LABEL.MIN_AREA", 0.01,
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _register(_write_dataset(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def reference(cfg, dataset, classifier, tmp_path_factory):
    """One uninterrupted single-process run: (output path, final bytes, summary)."""
    output = tmp_path_factory.mktemp("reference") / "pseudo.json"
    run_shard(
        cfg,
        dataset,
        output,
        proposal_model=ColourProposals(),
        classifier=classifier,
        show_progress=False,
    )
    summary = merge_shards(cfg, dataset, output)
    return output, output.read_bytes(), summary


def _run(cfg, dataset, classifier, output, **kwargs) -> int:
    return run_shard(
        cfg,
        dataset,
        output,
        proposal_model=ColourProposals(),
        classifier=classifier,
        show_progress=False,
        **kwargs,
    )


def test_final_file_and_summary(reference):
    output, data, summary = reference
    final = json.loads(data)
    assert final["format"] == "zsseg_d2/pseudo_labels/v1" and final["threshold"] == THRESHOLD
    assert final["unseen_classes"] == UNSEEN
    assert sorted(final["labels"]) == [f"img{k:02d}" for k in range(9) if k != 4]  # image 4 skipped
    assert list(final["labels"]) == sorted(final["labels"])
    records = RecordFile(PassLayout(output).shard_file(0, 1)).read()
    for image_id, labels in final["labels"].items():
        scores = records[image_id]["scores"]
        assert labels == [name for name in UNSEEN if scores[name] >= THRESHOLD]
    assert any(final["labels"].values()) and not all(final["labels"].values()), (
        "threshold gives no contrast"
    )
    assert summary["images"] == 9 and summary["images_done"] == 8
    assert summary["images_skipped_no_unlabeled_pixels"] == 1 and summary["images_failed"] == 0
    # Ground truth: images 0, 8 hold car (label 3), 2, 6 hold tree (label 2); odd ones hold ignore only.
    assert {name: c["gt"] for name, c in summary["per_class"].items()} == {"tree": 2, "car": 2}
    pseudo = sum(len(v) for v in final["labels"].values())
    assert summary["labels_per_image"] == round(pseudo / 8, 4)
    true_positive = sum(c["true_positive"] for c in summary["per_class"].values())
    assert summary["precision"] == round(true_positive / pseudo, 4) and summary["recall"] == round(
        true_positive / 4, 4
    )
    assert json.loads(PassLayout(output).summary.read_text()) == summary


@pytest.mark.parametrize("kill", ["after_records", "mid_line", "empty_line_start"])
def test_resume_after_a_kill_is_byte_identical(cfg, dataset, classifier, reference, tmp_path, kill):
    ref_output, ref_bytes, _ = reference
    output = tmp_path / "pseudo.json"
    layout = PassLayout(output)
    layout.work_dir.mkdir()
    shutil.copy(PassLayout(ref_output).settings, layout.settings)
    lines = PassLayout(ref_output).shard_file(0, 1).read_bytes().splitlines(keepends=True)
    kept = {
        "after_records": b"".join(lines[:3]),
        "mid_line": b"".join(lines[:5]) + lines[5][:17],
        "empty_line_start": lines[0][:1],
    }[kill]
    layout.shard_file(0, 1).write_bytes(kept)
    done_before = len(RecordFile(layout.shard_file(0, 1)).read())
    computed = _run(cfg, dataset, classifier, output)
    assert computed == 9 - done_before
    merge_shards(cfg, dataset, output)
    assert output.read_bytes() == ref_bytes


def test_resume_after_an_interrupted_run(cfg, dataset, classifier, reference, tmp_path):
    output = tmp_path / "pseudo.json"
    with pytest.raises(KeyboardInterrupt):
        run_shard(
            cfg,
            dataset,
            output,
            proposal_model=ColourProposals(die_after_calls=2),
            classifier=classifier,
            show_progress=False,
        )
    written = RecordFile(PassLayout(output).shard_file(0, 1)).read()
    assert 0 < len(written) < 9  # some batches were flushed before the kill
    assert merge_if_complete(cfg, dataset, output) is None and not output.exists()
    assert _run(cfg, dataset, classifier, output) == 9 - len(written)
    merge_shards(cfg, dataset, output)
    assert output.read_bytes() == reference[1]
    assert _run(cfg, dataset, classifier, output) == 0  # nothing left to do


def test_shards_merge_to_the_single_process_file(cfg, dataset, classifier, reference, tmp_path):
    output = tmp_path / "pseudo.json"
    _run(cfg, dataset, classifier, output, num_shards=3, shard_id=2)
    _run(cfg, dataset, classifier, output, num_shards=3, shard_id=0)
    with pytest.raises(IncompleteShardsError, match="shard 1"):
        merge_shards(cfg, dataset, output, num_shards=3)
    _run(cfg, dataset, classifier, output, num_shards=3, shard_id=1)
    summary = merge_if_complete(cfg, dataset, output, num_shards=3)  # what the last shard does
    assert output.read_bytes() == reference[1]
    assert summary == reference[2]
    sizes = [len(RecordFile(PassLayout(output).shard_file(i, 3)).read()) for i in range(3)]
    assert sizes == [3, 3, 3]


def test_corrupt_and_missing_images_are_recorded_and_skipped(cfg, classifier, tmp_path):
    dicts = _write_dataset(tmp_path / "data", count=5)
    Path(dicts[1]["file_name"]).write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    Path(dicts[3]["file_name"]).unlink()
    dataset = _register(dicts)
    output = tmp_path / "pseudo.json"
    _run(cfg, dataset, classifier, output)
    summary = merge_shards(cfg, dataset, output)
    assert summary["images_failed"] == 2 and summary["images_done"] == 2  # 0, 2 (4 is skipped)
    failed = {f["image_id"]: f["error"] for f in summary["failures"]}
    assert set(failed) == {"img01", "img03"}
    assert "img03.png" in failed["img03"] and "FileNotFound" in failed["img03"]
    assert sorted(json.loads(output.read_text())["labels"]) == ["img00", "img02"]
    assert _run(cfg, dataset, classifier, output) == 2  # a rerun retries the failed images only


def test_changed_settings_are_refused(cfg, dataset, classifier, reference):
    other = cfg.clone()
    other.PSEUDO_LABEL.MIN_AREA = 0.05
    with pytest.raises(ValueError, match="MIN_AREA"):
        _run(other, dataset, classifier, reference[0])


def test_mid_file_damage_is_an_error(tmp_path):
    path = tmp_path / "shard.jsonl"
    path.write_text(
        '{"image_id": "a", "status": "ok"}\nnot json\n{"image_id": "b", "status": "ok"}\n'
    )
    with pytest.raises(ValueError, match="line 2"):
        RecordFile(path).read()
