"""Throughput of GZS3Evaluator on the 101 CamVid val images (480x360).

Predictions are the ground truth shifted 7 pixels right (void pixels predicted as class 0), made
before timing as the model would hand them over ("sem_seg_label", int64). One run = reset +
process all images (reading and mapping each label PNG) + evaluate. Prints the median over runs
of the seconds for the data set and of megapixels/s. Reference: the public MaskFormer-based
baseline's zero-shot evaluator needs ~2.1 s for these 101 images on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectron2.data import DatasetCatalog, MetadataCatalog  # noqa: E402

from zsseg_d2.data import load_sem_seg  # noqa: E402
from zsseg_d2.evaluation import GZS3Evaluator  # noqa: E402

DATASET = "camvid_val"
RUNS = 7
SHIFT = 7


def shifted_predictions(dicts: list[dict]) -> list[dict]:
    metadata = MetadataCatalog.get(DATASET)
    outputs = []
    for d in dicts:
        gt = torch.from_numpy(load_sem_seg(d["sem_seg_file_name"], metadata).astype("int64"))
        gt[gt == metadata.ignore_label] = 0
        outputs.append({"sem_seg_label": torch.roll(gt, SHIFT, dims=1)})
    return outputs


def main() -> None:
    torch.set_num_threads(2)
    dicts = DatasetCatalog.get(DATASET)
    inputs = [
        {"file_name": d["file_name"], "sem_seg_file_name": d["sem_seg_file_name"]} for d in dicts
    ]
    outputs = shifted_predictions(dicts)
    evaluator = GZS3Evaluator(DATASET, distributed=False)
    seconds = []
    for _ in range(RUNS):
        start = time.perf_counter()
        evaluator.reset()
        for inp, out in zip(inputs, outputs):
            evaluator.process([inp], [out])
        results = evaluator.evaluate()
        seconds.append(time.perf_counter() - start)
    megapixels = sum(d["height"] * d["width"] for d in dicts) / 1e6
    median = statistics.median(seconds)
    settings = {
        "dataset": DATASET,
        "images": len(dicts),
        "runs": RUNS,
        "shift_px": SHIFT,
        "threads": 2,
    }
    for name, value, unit in (
        ("evaluator_camvid_val_seconds", median, "s"),
        ("evaluator_throughput", megapixels / median, "megapixels/s"),
        ("evaluator_speedup_vs_baseline_2.1s", 2.1 / median, "x"),
    ):
        print(
            json.dumps({"name": name, "value": round(value, 4), "unit": unit, "settings": settings})
        )
    print(
        json.dumps(
            {
                "name": "evaluator_shifted_gt_mIoU",
                "value": round(results["sem_seg"]["mIoU"], 3),
                "unit": "%",
                "settings": settings,
            }
        )
    )


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    main()
