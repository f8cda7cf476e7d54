"""Peak memory of segmenting one big photo: eq. 4 with all 100 queries' masks at full resolution at
once (before) against chunks of queries (after), and whether the label maps are identical.

  python benchmarks/bench_inference_memory.py [--sizes 3000x2000 6000x4000] [--unchunked-up-to MPIX]
      [--postprocess-only] [--queries 100]

Each case runs in its own process: the tiny model with 100 queries (``--queries``; the model of
``make demo``, configs/cel/tiny/shapes.yaml, has 16) (random weights; the network
sees the image resized to 128 px, so the full-resolution post-processing is what costs memory), a
3-name vocabulary, a random RGB photo of the given size, through :class:`VocabularyPredictor`.
"before" is the path of earlier versions: MODEL.CEL.TEST.QUERY_CHUNK = 100 (all masks at once) and
dense C x H x W scores; "after" is the predictor's path: QUERY_CHUNK 16, label map only.
Prints JSON lines {"name", "value", "unit", "settings"}: peak RSS, its growth during inference, and
the seconds taken. The unchunked path needs ~20 GB at 6000x4000, so by default it runs only up to
``--unchunked-up-to`` megapixels (8); larger sizes print the "after" figure alone.

``--postprocess-only`` measures eq. 4 alone (needs only torch and numpy, e.g. on a big machine
without detectron2): random 100 x 200 x 300 mask logits (R-50's stride-4 masks of an 800 x 1200
input), upsampled to the photo's size and combined with 3 classes, by the same two paths.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUERIES = 100
VOCABULARY = ["sky", "tree", "car"]
MODES = {
    "before": ["MODEL.CEL.TEST.QUERY_CHUNK", str(QUERIES)],
    "after": ["MODEL.CEL.TEST.QUERY_CHUNK", "16"],
}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(mode: str, width: int, height: int, label_file: str, queries: int) -> dict:
    import torch
    from detectron2.modeling import build_model

    import zsseg_d2  # noqa: F401
    from zsseg_d2.engine import load_config
    from zsseg_d2.engine.checkpoint import Checkpointer
    from zsseg_d2.engine.predictor import VocabularyPredictor

    torch.set_num_threads(2)
    torch.manual_seed(0)  # the same random model in every process
    chunk = MODES[mode] if mode == "after" else ["MODEL.CEL.TEST.QUERY_CHUNK", str(queries)]
    opts = ["MODEL.TRANSFORMER_DECODER.NUM_QUERIES", str(queries), *chunk]
    cfg = load_config(str(REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"), opts)
    with tempfile.TemporaryDirectory() as folder:
        Checkpointer(build_model(cfg), save_dir=folder).save("model")
        cfg.MODEL.WEIGHTS = f"{folder}/model.pth"
        predictor = VocabularyPredictor(cfg, VOCABULARY)
    if mode == "before":
        predictor.model.max_dense_classes = (
            200  # earlier versions computed dense scores for <= 200 classes
        )
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    before = _rss_mb()
    start = time.perf_counter()
    label = predictor(image)
    seconds = time.perf_counter() - start
    np.save(label_file, label.astype(np.uint8))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_rss_mb": round(peak),
        "growth_mb": round(peak - before),
        "seconds": round(seconds, 2),
    }


def measure_postprocess(mode: str, width: int, height: int, label_file: str, queries: int) -> dict:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location(
        "eq4", REPO / "zsseg_d2" / "methods" / "cel" / "semantic_inference.py"
    )
    eq4 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eq4)
    generator = torch.Generator().manual_seed(0)
    mask_logits = torch.randn(queries, 200, 300, generator=generator) * 4
    probs = torch.randn(queries, len(VOCABULARY), generator=generator).mul(3).softmax(-1)
    chunk = queries if mode == "before" else int(MODES[mode][1])
    before = _rss_mb()
    start = time.perf_counter()
    masks = eq4.full_resolution_mask_chunks(mask_logits, (800, 1216), (800, 1200), (height, width))
    if mode == "before":
        label = eq4.chunked_semantic_scores(probs, masks, (height, width), chunk).argmax(0)
    else:
        label = eq4.semantic_argmax(probs, masks, (height, width), 64, chunk)
    seconds = time.perf_counter() - start
    np.save(label_file, label.numpy().astype(np.uint8))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "peak_rss_mb": round(peak),
        "growth_mb": round(peak - before),
        "seconds": round(seconds, 2),
    }


def _run(
    mode: str, width: int, height: int, label_file: str, postprocess_only: bool, queries: int
) -> dict:
    what = "--measure-postprocess" if postprocess_only else "--measure"
    command = [sys.executable, __file__, what, mode, f"{width}x{height}", label_file]
    command += ["--queries", str(queries)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} at {width}x{height} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _print(name: str, value, unit: str, **settings) -> None:
    print(
        json.dumps({"name": name, "value": value, "unit": unit, "settings": settings}), flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["3000x2000", "6000x4000"])
    parser.add_argument("--unchunked-up-to", type=float, default=8.0, help="megapixels")
    parser.add_argument(
        "--postprocess-only", action="store_true", help="eq. 4 alone, torch and numpy only"
    )
    parser.add_argument("--queries", type=int, default=QUERIES, help="NUM_QUERIES of the model")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--measure-postprocess", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure or args.measure_postprocess:
        mode, size, label_file = args.measure or args.measure_postprocess
        width, height = map(int, size.split("x"))
        function = measure if args.measure else measure_postprocess
        print(json.dumps(function(mode, width, height, label_file, args.queries)))
        return
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            width, height = map(int, size.split("x"))
            modes = (
                ["before", "after"] if width * height <= args.unchunked_up_to * 1e6 else ["after"]
            )
            labels = {}
            for mode in modes:
                labels[mode] = f"{folder}/{mode}_{size}.npy"
                result = _run(
                    mode, width, height, labels[mode], args.postprocess_only, args.queries
                )
                settings = {
                    "image": size,
                    "queries": args.queries,
                    "classes": len(VOCABULARY),
                    "path": mode,
                    "measured": "eq. 4 alone" if args.postprocess_only else "predictor, tiny model",
                }
                _print("inference_peak_rss", result["peak_rss_mb"], "MB", **settings)
                _print("inference_rss_growth", result["growth_mb"], "MB", **settings)
                _print("inference_seconds", result["seconds"], "s", **settings)
            if len(labels) == 2:
                same = bool(np.array_equal(np.load(labels["before"]), np.load(labels["after"])))
                _print(
                    "labels_identical_before_after", same, "bool", image=size, queries=args.queries
                )


if __name__ == "__main__":
    main()
