"""Training-step time of the CEL model (R-50, 100 queries, 512x512 crops, batch 8) on a GPU: fp32
against mixed precision as the trainer runs it (``SOLVER.AMP.PRECISION``: float16 autocast with a
GradScaler; bfloat16 autocast without one, where the GPU supports it), each with the compiled
deformable-attention kernel (when it is importable) and pure PyTorch.

Weights are random (no download: random CLIP text tower, one prompt template), which does not change
the cost of a step. Prints one JSON object per setting: median seconds per step after warm-up, peak
GPU memory, and the loss of the last step (finite). Needs CUDA:

    python benchmarks/bench_amp.py [--steps 10 --batch 8 --size 512]
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

from detectron2.modeling import build_model  # noqa: E402
from detectron2.structures import Instances  # noqa: E402

from zsseg_d2.engine import load_config  # noqa: E402
from zsseg_d2.engine.solver import build_optimizer  # noqa: E402
from zsseg_d2.methods.cel.pixel_decoder.ms_deform_attn import compiled_kernel_available  # noqa: E402

CONFIG = (
    Path(__file__).resolve().parents[1] / "configs" / "cel" / "coco_stuff" / "cel_R50_156-15.yaml"
)


def synthetic_batch(batch: int, size: int, num_classes: int, generator: torch.Generator) -> list:
    """Images with 4 random rectangles of distinct classes each, labels and image-level labels."""
    inputs = []
    for _ in range(batch):
        label = torch.full((size, size), 255, dtype=torch.long)
        classes = torch.randperm(num_classes, generator=generator)[:4]
        for c in classes:
            y, x = torch.randint(0, size // 2, (2,), generator=generator).tolist()
            label[y : y + size // 2, x : x + size // 2] = c
        present = label.unique()
        present = present[present != 255]
        instances = Instances(
            (size, size), gt_classes=present, gt_masks=torch.stack([label == c for c in present])
        )
        image = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=generator)
        inputs.append(
            {"image": image, "sem_seg": label, "instances": instances, "image_labels": present}
        )
    return inputs


def time_steps(cfg, precision: torch.dtype | None, steps: int, batch: list) -> dict:
    torch.manual_seed(0)
    model = build_model(cfg).train()
    optimizer = build_optimizer(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == torch.float16)
    seconds, loss = [], float("nan")
    torch.cuda.reset_peak_memory_stats()
    for step in range(steps + 2):  # two warm-up steps
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(
            "cuda", dtype=precision or torch.float32, enabled=precision is not None
        ):
            losses = model(batch)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize()
        if step >= 2:
            seconds.append(time.perf_counter() - start)
        loss = float(total.detach())
    return {
        "step_s": round(statistics.median(seconds), 4),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "last_loss": round(loss, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_amp.py times GPU training steps: no CUDA device here")
    batch = None
    precisions = [None, torch.float16] + (
        [torch.bfloat16] if torch.cuda.is_bf16_supported() else []
    )
    for impl in ("auto", "pytorch") if compiled_kernel_available() else ("pytorch",):
        for precision in precisions:
            cfg = load_config(str(CONFIG), [
                "MODEL.WEIGHTS", "", "MODEL.CLIP.PRETRAINED", "", "MODEL.CLIP.OFFLINE", "True",
                "MODEL.CLIP.PROMPT_TEMPLATES", "single", "MODEL.CLIP.ENSEMBLE", "False",
                "MODEL.SEM_SEG_HEAD.DEFORMABLE_ATTN_IMPL", impl, "MODEL.DEVICE", "cuda",
                "INPUT.IMAGE_LABELS.UNSEEN_MODE", "none",
            ])  # fmt: skip
            if batch is None:
                batch = synthetic_batch(
                    args.batch, args.size, 171, torch.Generator().manual_seed(0)
                )
            result = time_steps(cfg, precision, args.steps, batch)
            settings = {
                "amp": str(precision).removeprefix("torch.") if precision else False,
                "deform_attn": "compiled" if impl == "auto" else "pytorch",
                "batch": args.batch,
                "size": args.size,
                "steps": args.steps,
                "gpu": torch.cuda.get_device_name(),
            }
            print(
                json.dumps({"name": "cel_train_step", **result, "settings": settings}), flush=True
            )
    if not compiled_kernel_available():
        print(
            json.dumps(
                {"note": "compiled MultiScaleDeformableAttention not importable: pure PyTorch only"}
            )
        )


if __name__ == "__main__":
    main()
