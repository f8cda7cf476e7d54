"""Speed of the pseudo-label pass against its floor: the two networks alone (CPU, 2 threads, medians).

For each setting the same CamVid training images go through
- the whole pass (``run_shard``: loading in a DataLoader worker, proposals, crops, CLIP, records);
- the networks alone on the same batches: the proposal model's ``predict_mask_probs`` on
  preloaded inputs, and CLIP's image encoder on as many crops as the pass made, in batches of
  ``PSEUDO_LABEL.CROP_BATCH_SIZE``.
Overhead = pass / (model + CLIP) - 1: everything else (decoding, proposals, cropping, resizing,
I/O, bookkeeping) on top of the networks; reported against the networks timed alone, and against
the time the same pass spent inside the two networks ("in_pass", robust to other work on the
machine). Settings: the tiny test model with the tiny random CLIP, and R-50 + ViT-B-16, both with
random weights. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T

import zsseg_d2  # noqa: F401  (registers data sets and model parts)
from zsseg_d2.engine import load_config
from zsseg_d2.methods.cel.pseudo_labels.loading import PassImages, resized_size, same_size_batches
from zsseg_d2.methods.cel.pseudo_labels.records import PassLayout, RecordFile
from zsseg_d2.methods.cel.pseudo_labels.runner import build_proposal_model, run_shard
from zsseg_d2.modeling.clip import ClipCropClassifier

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_DATASET = "camvid_train"
SETTINGS = [
    {
        "name": "tiny",
        "config": "configs/cel/tiny/camvid_8-3.yaml",
        "images": 24,
        "repeats": 3,
        "opts": ["PSEUDO_LABEL.IMS_PER_BATCH", 4, "PSEUDO_LABEL.CROP_BATCH_SIZE", 64],
    },
    {
        "name": "r50_vitb16",
        "config": "configs/cel/Base-CEL.yaml",  # R-50, 100 queries, 6 + 9 layers; CLIP ViT-B-16
        "images": 4,
        "repeats": 2,
        "opts": [
            "MODEL.CLIP.PRETRAINED", "", "MODEL.CLIP.PROMPT_TEMPLATES", "single",
            "INPUT.MIN_SIZE_TEST", 360, "INPUT.MAX_SIZE_TEST", 1333,
            "PSEUDO_LABEL.IMS_PER_BATCH", 2, "PSEUDO_LABEL.CROP_BATCH_SIZE", 32, "PSEUDO_LABEL.TOPK", 16,
        ],
    },
]  # fmt: skip


def subset_dataset(count: int) -> str:
    """The first ``count`` images of CamVid train, registered under a name of their own."""
    name = f"bench_pseudo_{count}"
    if name not in DatasetCatalog.list():
        dicts = DatasetCatalog.get(SOURCE_DATASET)[:count]
        DatasetCatalog.register(name, lambda: [dict(d) for d in dicts])
        source = MetadataCatalog.get(SOURCE_DATASET)
        MetadataCatalog.get(name).set(
            **{
                key: getattr(source, key)
                for key in (
                    "stuff_classes",
                    "unseen_classes",
                    "ignore_label",
                    "label_offset",
                    "raw_ignore_ids",
                )
            }
        )
    return name


class NetworkClock:
    """Wraps the proposal model's forward and CLIP's encoder to sum the time spent in them."""

    def __init__(self, model, classifier: ClipCropClassifier):
        self.seconds = 0.0
        self.model = model
        self.classifier = classifier
        classifier.encode = self._timed(classifier.encode)

    def _timed(self, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            result = fn(*args, **kwargs)
            self.seconds += time.perf_counter() - start
            return result

        return timed

    def predict_mask_probs(self, batched_inputs):
        return self._timed(self.model.predict_mask_probs)(batched_inputs)


def time_pass(cfg, dataset: str, clock: NetworkClock) -> tuple[float, float, int]:
    """Seconds of one whole pass from scratch, the seconds of it spent in the networks, crops made."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "pseudo.json"
        clock.seconds = 0.0
        start = time.perf_counter()
        run_shard(
            cfg,
            dataset,
            output,
            proposal_model=clock,
            classifier=clock.classifier,
            show_progress=False,
        )
        elapsed = time.perf_counter() - start
        records = RecordFile(PassLayout(output).shard_file(0, 1)).read().values()
    return elapsed, clock.seconds, sum(r.get("num_proposals", 0) for r in records)


def networks_alone(cfg, dataset: str, model, classifier) -> Callable[[int], tuple[float, float]]:
    """A function timing the proposal model on the pass's batches (preloaded) and CLIP's encoder on
    ``num_crops`` crops in batches of ``CROP_BATCH_SIZE``: (model seconds, CLIP seconds)."""
    resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")
    dicts = sorted(DatasetCatalog.get(dataset), key=lambda d: d["image_id"])
    items = PassImages(dicts, MetadataCatalog.get(dataset), resize, cfg.INPUT.FORMAT, True)
    inputs = [items[i]["model_input"] for i in range(len(items))]
    sizes = [resized_size(d["height"], d["width"], resize) for d in dicts]
    batch_indices = same_size_batches(sizes, cfg.PSEUDO_LABEL.IMS_PER_BATCH)
    batches: list[list] = [[inputs[i] for i in batch] for batch in batch_indices]
    crop_batch = torch.randn(classifier.batch_size, 3, *classifier.size)

    def run(num_crops: int) -> tuple[float, float]:
        start = time.perf_counter()
        for batch in batches:
            model.predict_mask_probs(batch)
        middle = time.perf_counter()
        with torch.no_grad():
            for _ in range(-(-num_crops // classifier.batch_size)):
                classifier.clip_model.encode_image(crop_batch, normalize=True)
        return middle - start, time.perf_counter() - middle

    return run


def run_setting(setting: dict, cache_dir: str, num_workers: int) -> None:
    opts = [
        "MODEL.CLIP.CACHE_DIR",
        cache_dir,
        "MODEL.WEIGHTS",
        "",
        "DATALOADER.NUM_WORKERS",
        num_workers,
        *setting["opts"],
    ]
    cfg = load_config(str(REPO_ROOT / setting["config"]), opts)
    dataset = subset_dataset(setting["images"])
    cfg.defrost()
    cfg.DATASETS.TRAIN = (dataset,)
    cfg.freeze()
    torch.manual_seed(0)  # random weights, but the same proposals (and crop count) every run
    model = build_proposal_model(cfg)
    classifier = ClipCropClassifier.from_config(cfg, cfg.MODEL.DEVICE)
    alone = networks_alone(cfg, dataset, model, classifier)
    clock = NetworkClock(model, classifier)
    _, _, crops = time_pass(cfg, dataset, clock)  # warm-up (text-embedding cache, allocator)
    alone(crops)
    passes, alones = [], []
    for _ in range(
        setting["repeats"]
    ):  # interleaved, so that drifting machine load hits both alike
        passes.append(time_pass(cfg, dataset, clock))
        alones.append(alone(crops))
    pass_s = statistics.median(p[0] for p in passes)
    in_pass_overhead = statistics.median(
        100.0 * (total / networks - 1.0) for total, networks, _ in passes
    )
    model_s = statistics.median(a[0] for a in alones)
    clip_s = statistics.median(a[1] for a in alones)
    images = setting["images"]
    common = {
        "setting": setting["name"], "images": images, "crops": crops, "threads": torch.get_num_threads(),
        "ims_per_batch": cfg.PSEUDO_LABEL.IMS_PER_BATCH, "crop_batch_size": cfg.PSEUDO_LABEL.CROP_BATCH_SIZE,
        "min_size_test": cfg.INPUT.MIN_SIZE_TEST, "clip": cfg.MODEL.CLIP.MODEL_NAME, "repeats": setting["repeats"],
        "num_workers": cfg.DATALOADER.NUM_WORKERS,
    }  # fmt: skip
    floor = model_s + clip_s
    for name, value, unit in (
        ("pseudo_pass_images_per_s", images / pass_s, "images/s"),
        ("pseudo_pass_crops_per_s", crops / pass_s, "crops/s"),
        ("networks_only_images_per_s", images / floor, "images/s"),
        ("proposal_model_s_per_image", model_s / images, "s"),
        ("clip_encoder_s_per_image", clip_s / images, "s"),
        ("pseudo_pass_overhead_vs_networks_alone", 100.0 * (pass_s / floor - 1.0), "%"),
        ("pseudo_pass_overhead_in_pass", in_pass_overhead, "%"),
    ):
        print(
            json.dumps({"name": name, "value": round(value, 4), "unit": unit, "settings": common}),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=[s["name"] for s in SETTINGS], help="run one setting")
    parser.add_argument("--num-workers", type=int, default=1, help="DataLoader workers of the pass")
    args = parser.parse_args()
    torch.set_num_threads(2)
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as cache_dir:
        for setting in SETTINGS:
            if args.only in (None, setting["name"]):
                run_setting(setting, cache_dir, args.num_workers)


if __name__ == "__main__":
    main()
