#!/usr/bin/env python3
"""The project's CEL model against Mask2Former's on the same device, batch and training loop.

The project: the CEL model of ``configs/cel/coco_stuff/cel_R50_156-15.yaml`` (R-50, 100 queries,
the 171 COCO-Stuff classes from the shipped CLIP ViT-B/16 text embeddings, ensemble off). The
reference: ``maskformer2_R50_bs16_160k`` of a Mask2Former checkout you name (``--mask2former``,
its commit read with ``git rev-parse HEAD``) with 171 classes. Random weights for both: nothing
is downloaded. Both use their own optimizer builder (AdamW, backbone multiplier, full-model
clipping) and pure-PyTorch deformable attention (``--deform-attn compiled`` lets each use its
compiled kernel when importable).

Every measurement runs in a fresh process (the two code bases register the same Detectron2 names,
and CPU peak memory is a per-process figure); rounds alternate the two code bases (reference
first in even rounds). A training step is Detectron2's: forward and loss sum (under autocast with
AMP), zero_grad, backward, optimizer step, with a GradScaler for float16 (bfloat16 needs none:
its exponent range is float32's, as in ``SOLVER.AMP.PRECISION``). Prints one JSON line per
measurement and per figure a line with both medians (over rounds, of each round's median) and
the project / reference ratio (below 1: the project is faster or smaller)::

    python benchmarks/bench_gpu_vs_mask2former.py --mask2former ~/Mask2Former            # CUDA
    python benchmarks/bench_gpu_vs_mask2former.py --mask2former ~/Mask2Former --device cpu \\
        --batch 2 --size 256 --steps 2 --warmup 1 --infer-size 256 342

``--profile DIR`` instead profiles one training step of each with ``torch.profiler``: operators by
self time (device kernels on CUDA), time per phase (backbone, pixel decoder, transformer decoder,
matcher, criterion, backward, optimizer), the count of operators, of host-device syncs
(``cudaStreamSynchronize`` and kin on CUDA; on the CPU the operators that would sync on a GPU:
``item``/``int()``, ``nonzero`` and boolean indexing) and, on CUDA, the device's idle time within
the step. Tables go to ``DIR/<code>_profile.txt``, traces to ``DIR/<code>_trace.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
PROJECT_CONFIG = REPO / "configs" / "cel" / "coco_stuff" / "cel_R50_156-15.yaml"
PROJECT_OPTS = [
    "MODEL.WEIGHTS", "", "MODEL.CLIP.ENSEMBLE", "False", "MODEL.CLIP.PRETRAINED", "",
    "MODEL.SEMANTIC.SOURCE", "file",
    "MODEL.SEMANTIC.FILES", "['zsseg_d2/data/embeddings/coco_stuff_171.vitb16.single.npy']",
    "INPUT.IMAGE_LABELS.UNSEEN_MODE", "none",
]  # fmt: skip
REFERENCE_CONFIG = "configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml"
NUM_CLASSES = 171
CODES = ("reference", "project")
PRECISIONS = {"fp32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Operators that make the host wait for a GPU (on the CPU they are recorded but cost nothing).
SYNC_OPS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select")
CUDA_SYNC_CALLS = (
    "cudaStreamSynchronize",
    "cudaDeviceSynchronize",
    "cudaMemcpy",
    "cudaEventSynchronize",
)


def synthetic_batch(batch: int, size: int, num_classes: int, seed: int) -> list[dict]:
    """Images with 4 random squares of distinct classes each (255 = ignored elsewhere), their
    masks and image-level labels: what both code bases' semantic mappers produce."""
    from detectron2.structures import Instances

    generator = torch.Generator().manual_seed(seed)
    inputs = []
    for _ in range(batch):
        label = torch.full((size, size), 255, dtype=torch.long)
        for c in torch.randperm(num_classes, generator=generator)[:4]:
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


# ---- inside a measuring process: build one code base's model and optimizer ----


def build_project(device: str, deform_attn: str):
    from detectron2.modeling import build_model

    import zsseg_d2  # noqa: F401  (registers the CEL model)
    from zsseg_d2.engine import load_config
    from zsseg_d2.engine.solver import build_optimizer

    impl = "auto" if deform_attn == "compiled" else "pytorch"
    cfg = load_config(
        str(PROJECT_CONFIG),
        PROJECT_OPTS + ["MODEL.DEVICE", device, "MODEL.SEM_SEG_HEAD.DEFORMABLE_ATTN_IMPL", impl],
    )
    model = build_model(cfg)
    parts = {  # (module, method) whose calls a profile reports as phases
        "backbone": (model.backbone, "forward"),
        "pixel_decoder": (model.sem_seg_head.pixel_decoder, "forward_features"),
        "transformer_decoder": (model.sem_seg_head.transformer_decoder, "forward"),
        "criterion": (model.criterion, "forward"),
        "matcher": (model.criterion.matcher, "forward"),
    }
    return model, build_optimizer(cfg, model), parts


def build_reference(device: str, deform_attn: str, checkout: Path):
    if deform_attn == "pytorch":
        # Its compiled-op import fails without the extension; an empty module makes the call fail
        # inside MSDeformAttn.forward, whose fallback is the pure-PyTorch path.
        sys.modules["MultiScaleDeformableAttention"] = types.ModuleType(
            "MultiScaleDeformableAttention"
        )
    sys.path.insert(0, str(checkout))
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from detectron2.projects.deeplab import add_deeplab_config
    from mask2former import add_maskformer2_config

    cfg = get_cfg()
    add_deeplab_config(cfg)
    add_maskformer2_config(cfg)
    cfg.merge_from_file(str(checkout / REFERENCE_CONFIG))
    cfg.merge_from_list(
        ["MODEL.SEM_SEG_HEAD.NUM_CLASSES", NUM_CLASSES, "MODEL.WEIGHTS", "", "MODEL.DEVICE", device]
    )
    model = build_model(cfg)
    spec = importlib.util.spec_from_file_location(
        "mask2former_train_net", checkout / "train_net.py"
    )
    train_net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_net)
    parts = {
        "backbone": (model.backbone, "forward"),
        "pixel_decoder": (model.sem_seg_head.pixel_decoder, "forward_features"),
        "transformer_decoder": (model.sem_seg_head.predictor, "forward"),
        "criterion": (model.criterion, "forward"),
        "matcher": (model.criterion.matcher, "forward"),
    }
    return model, train_net.Trainer.build_optimizer(cfg, model), parts


class Step:
    """One training step in the given precision, as Detectron2's trainers run it."""

    def __init__(self, model, optimizer, device: str, precision: torch.dtype | None, batch: list):
        self.model, self.optimizer, self.device, self.precision = (
            model,
            optimizer,
            device,
            precision,
        )
        self.batch = batch
        self.scaler = torch.amp.GradScaler(device, enabled=precision == torch.float16)

    def __call__(self) -> float:
        with torch.autocast(self.device, dtype=self.precision or torch.float32,
                            enabled=self.precision is not None):  # fmt: skip
            with torch.profiler.record_function("phase::forward"):
                losses = self.model(self.batch)
            total = sum(losses.values())
        self.optimizer.zero_grad()
        with torch.profiler.record_function("phase::backward"):
            self.scaler.scale(total).backward()
        with torch.profiler.record_function("phase::optimizer"):
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return total


def _synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(function, device: str, steps: int, warmup: int) -> list[float]:
    seconds = []
    for step in range(warmup + steps):
        _synchronize(device)
        start = time.perf_counter()
        function()
        _synchronize(device)
        if step >= warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def _peak_mib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak RSS, Linux: KiB


def measure(args: argparse.Namespace) -> dict:
    """What a measuring process prints: one code base, one measurement."""
    torch.manual_seed(0)
    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    if args.code == "project":
        model, optimizer, parts = build_project(args.device, args.deform_attn)
    else:
        model, optimizer, parts = build_reference(args.device, args.deform_attn, args.mask2former)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    if args.what == "inference":
        model.eval()
        height, width = args.infer_size
        image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
        inputs = [{"image": image, "height": height, "width": width}]

        def infer():
            with torch.no_grad():
                model(inputs)

        seconds = _timed(infer, args.device, args.steps, args.warmup)
        return {"median_s": statistics.median(seconds), "peak_mib": _peak_mib(args.device)}
    model.train()
    batch = synthetic_batch(args.batch, args.size, NUM_CLASSES, seed=0)
    step = Step(model, optimizer, args.device, PRECISIONS[args.what.split(":")[1]], batch)
    if args.profile:
        return profile_step(step, parts, args)
    seconds = _timed(step, args.device, args.steps, args.warmup)
    return {
        "median_s": statistics.median(seconds),
        "peak_mib": _peak_mib(args.device),
        "loss": float(step().detach()),
    }


def _annotate_phases(parts: dict) -> None:
    """A record_function range around each part's forward (what a profile attributes to it)."""

    def annotated(name: str, original):
        def call(*args, **kwargs):
            with torch.profiler.record_function(f"phase::{name}"):
                return original(*args, **kwargs)

        return call

    for name, (module, method) in parts.items():
        setattr(module, method, annotated(name, getattr(module, method)))


def profile_step(step: Step, parts: dict, args: argparse.Namespace) -> dict:
    """One training step under torch.profiler, after warm-up steps; writes the table and trace."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(args.warmup):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    _annotate_phases(parts)
    _synchronize(args.device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        with torch.profiler.record_function("phase::step"):
            step()
        _synchronize(args.device)
    wall = time.perf_counter() - start
    out = Path(args.profile)
    out.mkdir(parents=True, exist_ok=True)
    prof.export_chrome_trace(str(out / f"{args.code}_trace.json"))
    summary = summarise_profile(prof, args.device, wall)
    sort_by = "self_cuda_time_total" if args.device == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort_by, row_limit=40, max_name_column_width=60)
    (out / f"{args.code}_profile.txt").write_text(json.dumps(summary, indent=1) + "\n" + table)
    return summary


def summarise_profile(prof, device: str, wall_s: float) -> dict:
    """Per-phase times, operator and sync counts and (CUDA) device idle time of one step."""
    averages = {event.key: event for event in prof.key_averages()}
    phases = {
        key.split("::", 1)[1]: round(event.cpu_time_total / 1e6, 4)
        for key, event in averages.items()
        if key.startswith("phase::")
    }
    events = prof.events()
    operators = [  # operators dispatched from Python or the autograd engine, not from another one
        e
        for e in events
        if e.key.startswith("aten::")
        and not (e.cpu_parent is not None and e.cpu_parent.key.startswith("aten::"))
    ]
    summary = {
        "step_wall_s": round(wall_s, 4),
        "host_phase_s": phases,
        "top_level_operators": len(operators),
        "sync_ops": {key: averages[key].count for key in SYNC_OPS if key in averages},
        "sync_ops_by_phase": _sync_ops_by_phase(events),
    }
    if device == "cuda":
        summary["cuda_sync_calls"] = {
            key: event.count
            for key, event in averages.items()
            if any(key.startswith(call) for call in CUDA_SYNC_CALLS)
        }
        kernels = sorted(
            (e.time_range.start, e.time_range.end)
            for e in events
            if e.device_type == torch.autograd.DeviceType.CUDA
        )
        busy, end = 0.0, None
        for start, stop in kernels:  # union of the kernels' intervals
            if end is None or start > end:
                busy, end = busy + stop - start, stop
            elif stop > end:
                busy, end = busy + stop - end, stop
        summary["kernels"] = len(kernels)
        summary["device_busy_s"] = round(busy / 1e6, 4)
        summary["device_idle_s"] = round(wall_s - busy / 1e6, 4)
    return summary


def _sync_ops_by_phase(events) -> dict[str, int]:
    """Calls of SYNC_OPS by the innermost phase (record_function range) they ran in."""
    counts = {}
    for event in events:
        if event.key not in SYNC_OPS:
            continue
        parent = event.cpu_parent
        while parent is not None and not parent.key.startswith("phase::"):
            parent = parent.cpu_parent
        phase = parent.key.split("::", 1)[1] if parent is not None else "outside"
        counts[phase] = counts.get(phase, 0) + 1
    return counts


# ---- the driver ----


def commit_of(path: Path) -> str:
    run = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if run.returncode:
        return "unknown (not a git checkout)"
    dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return run.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def run_measurement(args: argparse.Namespace, code: str, what: str, profile: str = "") -> dict:
    command = [
        sys.executable, __file__, "--worker", "--code", code, "--what", what,
        "--mask2former", str(args.mask2former), "--device", args.device,
        "--batch", str(args.batch), "--size", str(args.size), "--steps", str(args.steps),
        "--warmup", str(args.warmup), "--infer-size", *map(str, args.infer_size),
        "--deform-attn", args.deform_attn, "--threads", str(args.threads),
    ] + (["--profile", profile] if profile else [])  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads)}
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode or not lines:
        raise RuntimeError(f"{code} {what} failed:\n{run.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def summarise(samples: list[dict]) -> list[dict]:
    """Per measurement and figure: each code base's median over rounds and project / reference.

    ``samples``: {"what", "code", "round", <figures>} rows; ratios only where both have the figure.
    """
    rows = []
    whats = list(dict.fromkeys(s["what"] for s in samples))
    for what in whats:
        for figure in ("median_s", "peak_mib"):
            medians = {}
            for code in CODES:
                values = [s[figure] for s in samples if s["what"] == what and s["code"] == code]
                if values:
                    medians[code] = statistics.median(values)
            if len(medians) == 2:
                ratio = medians["project"] / medians["reference"]
                rows.append(
                    {"name": f"{what}/{figure}", **medians, "project_over_reference": ratio}
                )
    for code in CODES:  # mixed precision against the same code base's fp32
        fp32 = [s["median_s"] for s in samples if s["what"] == "train:fp32" and s["code"] == code]
        for what in whats:
            amp = [s["median_s"] for s in samples if s["what"] == what and s["code"] == code]
            if what.startswith("train:") and what != "train:fp32" and fp32 and amp:
                speedup = statistics.median(fp32) / statistics.median(amp)
                rows.append({"name": f"{code}/{what}_speedup_over_fp32", "value": speedup})
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mask2former", type=Path, required=True,
                        help="a Mask2Former checkout (facebookresearch/Mask2Former)")  # fmt: skip
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--precisions", nargs="+", choices=tuple(PRECISIONS),
                        help="training precisions (default: fp32 float16 on CUDA, fp32 on the CPU)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=512, help="training crop size (square)")
    parser.add_argument("--infer-size", type=int, nargs=2, default=(512, 683), metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--deform-attn", choices=("pytorch", "compiled"), default="pytorch")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (--device cpu)")
    parser.add_argument("--no-inference", action="store_true", help="time training steps only")
    parser.add_argument("--profile", metavar="DIR", help="profile one training step of each")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", choices=CODES, help=argparse.SUPPRESS)
    parser.add_argument("--what", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.mask2former / REFERENCE_CONFIG).is_file():
        parser.error(f"--mask2former {args.mask2former}: no {REFERENCE_CONFIG} there; "
                     "pass the root of a facebookresearch/Mask2Former checkout")  # fmt: skip
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here (use --device cpu)")
    args.precisions = args.precisions or (
        ["fp32", "float16"] if args.device == "cuda" else ["fp32"]
    )
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        print("RESULT " + json.dumps(measure(args)), flush=True)
        return
    settings = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else f"cpu, {args.threads} threads",
        "project_commit": commit_of(REPO),
        "mask2former_commit": commit_of(args.mask2former),
        "torch": torch.__version__,
        "batch": args.batch, "size": args.size, "infer_size": list(args.infer_size),
        "steps": args.steps, "warmup": args.warmup, "deform_attn": args.deform_attn,
    }  # fmt: skip
    print(json.dumps({"name": "settings", **settings}), flush=True)
    if args.profile:
        what = f"train:{args.precisions[0]}"
        for code in CODES:
            result = run_measurement(args, code, what, profile=args.profile)
            print(json.dumps({"name": f"profile/{code}/{what}", **result}), flush=True)
        return
    whats = [f"train:{p}" for p in args.precisions] + ([] if args.no_inference else ["inference"])
    samples = []
    for round_index in range(args.rounds):
        order = CODES if round_index % 2 == 0 else CODES[::-1]
        for what in whats:
            for code in order:
                result = run_measurement(args, code, what)
                sample = {"what": what, "code": code, "round": round_index, **result}
                samples.append(sample)
                print(json.dumps({"name": "measurement", **sample}), flush=True)
    for row in summarise(samples):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
