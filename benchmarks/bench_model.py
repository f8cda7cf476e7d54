"""Training step and inference of the default R-50 CEL model on CPU (2 threads), with peak memory.

Prints JSON lines {"name", "value", "unit", "settings"}: median seconds of a training step at batch 2
and 512x512 (forward + backward + AdamW step), median seconds of inference on one 512x683 image with
the 171 COCO-Stuff classes, and each one's peak resident memory (each measured in its own process).
Random weights everywhere (nothing can be downloaded); the text embeddings come from the cache.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
OPTS = [
    "MODEL.WEIGHTS",
    "",
    "MODEL.CLIP.PRETRAINED",
    "",
    "MODEL.CLIP.PROMPT_TEMPLATES",
    "single",
    "DATASETS.TRAIN",
    "('coco_stuff_171_train',)",
    "DATASETS.TEST",
    "('coco_stuff_171_val',)",
]
REPEATS = 3


def _model():
    from detectron2.modeling import build_model

    import zsseg_d2  # noqa: F401
    from zsseg_d2.engine import load_config

    cfg = load_config(str(REPO / "configs" / "cel" / "Base-CEL.yaml"), OPTS)
    return cfg, build_model(cfg)


def _training_batch(num_classes: int):
    from detectron2.structures import Instances

    batch = []
    for _ in range(2):
        label = torch.randint(0, 8, (512, 512)) * (num_classes // 8)
        present = label.unique()
        instances = Instances(
            (512, 512), gt_classes=present, gt_masks=label[None] == present[:, None, None]
        )
        batch.append(
            {
                "image": torch.randint(0, 256, (3, 512, 512), dtype=torch.uint8),
                "sem_seg": label,
                "instances": instances,
                "image_labels": present,
            }
        )
    return batch


def measure(what: str) -> dict:
    torch.set_num_threads(2)
    cfg, model = _model()
    times = []
    if what == "train":
        from zsseg_d2.engine.solver import build_optimizer

        model.train()
        optimizer = build_optimizer(cfg, model)
        batch = _training_batch(len(model.train_vocabulary))
        for _ in range(REPEATS + 1):
            start = time.perf_counter()
            loss = sum(model(batch).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    else:
        model.eval()
        inputs = [
            {
                "image": torch.randint(0, 256, (3, 512, 683), dtype=torch.uint8),
                "height": 512,
                "width": 683,
            }
        ]
        with torch.no_grad():
            for _ in range(REPEATS + 1):
                start = time.perf_counter()
                model(inputs)
                times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "median_s": statistics.median(times[1:]),
        "peak_rss_mb": peak_mb,
        "classes": len(model.train_vocabulary),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--measure", choices=("train", "infer"), help="one measurement (internal)")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    settings = {
        "config": "Base-CEL.yaml (R-50, 100 queries, 9 layers)",
        "threads": 2,
        "repeats": REPEATS,
    }
    for what, name, shape in (
        ("train", "train_step", "batch 2, 512x512"),
        ("infer", "inference", "1 image 512x683"),
    ):
        output = subprocess.run(
            [sys.executable, __file__, "--measure", what],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(output.stdout.strip().splitlines()[-1])
        run_settings = {**settings, "input": shape, "classes": result["classes"]}
        print(
            json.dumps(
                {
                    "name": f"{name}_time",
                    "value": round(result["median_s"], 3),
                    "unit": "s",
                    "settings": run_settings,
                }
            )
        )
        print(
            json.dumps(
                {
                    "name": f"{name}_peak_rss",
                    "value": round(result["peak_rss_mb"]),
                    "unit": "MB",
                    "settings": run_settings,
                }
            )
        )


if __name__ == "__main__":
    main()
