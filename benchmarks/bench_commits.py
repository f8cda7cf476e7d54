#!/usr/bin/env python3
"""CPU time of each method's training step and inference, this tree against another commit.

The other commit is checked out into a temporary ``git worktree``; rounds alternate the two trees
(old, new, new, old, ...), each measurement in a fresh process that imports that tree's package.
Each process builds a method's tiny first-stage config, maps a fixed batch of generated images with
the tree's own training mapper, and times ``--iters`` training steps (forward, backward, SGD step)
and as many inference passes after ``--warmup`` untimed ones. Prints one JSON line per method and
tree with the medians, and one per method with the new / old ratios (below 1: the new tree is
faster)::

    python benchmarks/bench_commits.py --old 0aa14ac --rounds 5   # default --old HEAD
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A method's tiny first-stage config, under the layout of either tree (the first that exists).
METHOD_CONFIGS = {
    "CEL": ["configs/cel/tiny/camvid_8-3.yaml", "configs/tiny/camvid_8-3.yaml"],
    "SZN": ["configs/szn/tiny/camvid_step1.yaml"],
    "ZS3Net": ["configs/zs3net/tiny/camvid_1_segmentation.yaml"],
    "SIGN": ["configs/sign/tiny/camvid.yaml"],
    "RelationNet": ["configs/relation_net/tiny/camvid.yaml"],
}

# Run inside the measured tree (its own zsseg_d2 on PYTHONPATH): argv = config, iters, warmup, seed.
SNIPPET = r"""
import json, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
from pathlib import Path
import numpy as np, torch
from PIL import Image
import zsseg_d2
from zsseg_d2.data import InferenceImageMapper, build_dataset_mapper
from zsseg_d2.engine import Trainer, load_config

config, iters, warmup, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(2)
folder = Path(tempfile.mkdtemp())
rng = np.random.default_rng(seed)
records = []
for i in range(4):
    label = np.repeat(np.repeat(rng.integers(0, 12, size=(10, 12)), 16, 0), 16, 1).astype(np.uint8)
    image = (rng.integers(0, 256, size=(12, 3)).astype(np.uint8))[label]
    Image.fromarray(image).save(folder / f"i{i}.png")
    Image.fromarray(label).save(folder / f"l{i}.png")
    records.append({"file_name": str(folder / f"i{i}.png"), "sem_seg_file_name": str(folder / f"l{i}.png"),
                    "image_id": f"i{i}", "height": 160, "width": 192})
cfg = load_config(config, ["MODEL.WEIGHTS", ""])
torch.manual_seed(seed)
np.random.seed(seed)
model = Trainer.build_model(cfg)
mapper = build_dataset_mapper(cfg, True)
batch = [mapper(dict(r)) for r in records]
test_batch = [InferenceImageMapper(cfg)(dict(r)) for r in records[:1]]
optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6)

def train_step():
    model.train()
    loss = sum(model(batch).values())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

def infer():
    model.eval()
    with torch.no_grad():
        model(test_batch)

times = {}
for name, step in (("train_step_s", train_step), ("inference_s", infer)):
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    times[name] = (time.perf_counter() - start) / iters
print("RESULT " + json.dumps(times))
"""


def _worktree(revision: str, folder: Path) -> Path:
    tree = folder / "old"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    return tree


def _measure(tree: Path, config: str, args: argparse.Namespace, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "2"}
    command = [sys.executable, "-c", SNIPPET, config, str(args.iters), str(args.warmup), str(seed)]
    run = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    if run.returncode or not lines:
        raise RuntimeError(f"{tree} {config}: {run.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def _config_in(tree: Path, candidates: list[str]) -> str:
    return next(c for c in candidates if (tree / c).is_file())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--old",
        default="HEAD",
        help="the revision to compare against (default HEAD: your uncommitted change)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="measurements per tree and method")
    parser.add_argument("--iters", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--methods", nargs="*", default=list(METHOD_CONFIGS))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a killed run still removes its worktree
    with tempfile.TemporaryDirectory() as folder:
        old = _worktree(args.old, Path(folder))
        try:
            trees = {"old": old, "new": REPO}
            for method in args.methods:
                samples = {name: [] for name in trees}
                for round_index in range(args.rounds):
                    order = ["old", "new"] if round_index % 2 == 0 else ["new", "old"]
                    for name in order:
                        config = _config_in(trees[name], METHOD_CONFIGS[method])
                        samples[name].append(_measure(trees[name], config, args, seed=round_index))
                medians = {
                    name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
                    for name, runs in samples.items()
                }
                for name in trees:
                    print(json.dumps({"name": f"{method}/{name}", **medians[name], "unit": "s",
                                      "rounds": args.rounds, "iters": args.iters}))  # fmt: skip
                ratios = {key: medians["new"][key] / medians["old"][key] for key in medians["new"]}
                print(
                    json.dumps({"name": f"{method}/new_over_old", **ratios, "old": args.old}),
                    flush=True,
                )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True
            )


if __name__ == "__main__":
    main()
