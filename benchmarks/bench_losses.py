"""Speed of the Hungarian matcher and the CEL criterion (CPU, 2 threads, medians).

Shapes: batch 2, 100 queries, 171 classes, 8 ground-truth masks per image, mask logits at
128x128 and targets at 512x512, 12544 points. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import torch
from detectron2.config import get_cfg

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.methods.cel import CELCriterion, LossDivisors
from zsseg_d2.methods.cel.criterion import BatchTargets, MatchedPairs

BATCH, QUERIES, CLASSES, TARGETS = 2, 100, 171, 8
PRED_SIZE, IMAGE_SIZE, POINTS = 128, 512, 12544
DECODER_LAYERS = 10  # the main predictions and 9 auxiliary ones
REPEATS = 7
SETTINGS = {
    "batch": BATCH,
    "queries": QUERIES,
    "classes": CLASSES,
    "targets_per_image": TARGETS,
    "pred_size": PRED_SIZE,
    "image_size": IMAGE_SIZE,
    "points": POINTS,
    "threads": 2,
    "repeats": REPEATS,
}


def make_layer_outputs() -> dict[str, torch.Tensor]:
    similarity = torch.rand(BATCH, QUERIES, CLASSES) * 2 - 1
    return {
        "pred_logits": (similarity / 0.01).requires_grad_(),
        "pred_similarity": similarity.requires_grad_(),
        "pred_masks": torch.randn(BATCH, QUERIES, PRED_SIZE, PRED_SIZE).requires_grad_(),
    }


def make_targets() -> list[dict[str, torch.Tensor]]:
    targets = []
    for _ in range(BATCH):
        segments = torch.randint(0, TARGETS + 1, (IMAGE_SIZE, IMAGE_SIZE))  # TARGETS + 1 = ignored
        targets.append(
            {
                "labels": torch.randperm(CLASSES)[:TARGETS],
                "masks": segments.unsqueeze(0) == torch.arange(TARGETS).view(-1, 1, 1),
                "ignore_mask": segments == TARGETS,
                "image_labels": torch.randperm(CLASSES)[: TARGETS + 2],
            }
        )
    return targets


def median_ms(fn: Callable[[], object]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def report(name: str, value: float, **extra: object) -> None:
    print(
        json.dumps(
            {
                "name": name,
                "value": round(value, 2),
                "unit": "ms",
                "settings": {**SETTINGS, **extra},
            }
        )
    )


def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.CEL.LOSS.TRAIN_NUM_POINTS = POINTS
    cfg.MODEL.CEL.MATCHER.NUM_POINTS = POINTS
    criterion = CELCriterion(cfg)
    outputs = make_layer_outputs()
    targets = make_targets()

    report("matcher", median_ms(lambda: criterion.matcher(outputs, targets)))

    cpu = torch.device("cpu")
    batch = BatchTargets.of_batch(targets, None, cpu)
    pairs = MatchedPairs.of_indices(criterion.matcher(outputs, targets), batch.first_row, cpu)
    num_masks = LossDivisors.of_batch(targets, outputs["pred_logits"].shape[1], cpu).masks

    def mask_loss_step() -> None:
        losses = criterion.mask_losses(outputs, batch, pairs, num_masks)
        sum(losses.values()).backward()

    report("criterion_mask_loss_fwd_bwd", median_ms(mask_loss_step))

    outputs["aux_outputs"] = [make_layer_outputs() for _ in range(DECODER_LAYERS - 1)]

    def full_step() -> None:
        sum(criterion(outputs, targets).values()).backward()

    report("criterion_full_fwd_bwd", median_ms(full_step), decoder_layers=DECODER_LAYERS)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    main()
