"""One comparison table of the framework's methods: each trained with a tiny config on CamVid
(8 seen / 3 unseen classes), in one semantic space, evaluated by one evaluator, seeded.

  python benchmarks/bench_methods.py [--iters 200] [--out output/bench_methods] [--methods CEL SZN] [--reuse]

A method is a list of stages (:class:`Stage`): a config plus overrides, trained by
tools/train_net.py unless ``train`` is False, from the weights of an earlier stage when
``weights_from`` names it. Stages of the same name are trained once and shared (SZN's step 1 gives
FCN-JE, SZN and SZN-PS). The last stage is evaluated on camvid_val with tools/train_net.py
--eval-only. A new method adds its row by adding one :data:`METHODS` entry.

Common to all: DATASETS camvid_train / camvid_val, the tiny random CLIP text space
(MODEL.SEMANTIC.SOURCE "clip_text", ZSSeg-Tiny, one prompt), SEED 0, SOLVER.MAX_ITER = --iters,
MODEL.DEVICE = --device.
Prints one table (metrics in %) and writes it, with each run's metrics, to <out>/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST_SET = "camvid_val"
COMMON = ["SEED", "0", "MODEL.SEMANTIC.SOURCE", "clip_text", "MODEL.CLIP.MODEL_NAME", "ZSSeg-Tiny",
          "MODEL.CLIP.PRETRAINED", "", "MODEL.CLIP.PROMPT_TEMPLATES", "single",
          "DATASETS.TRAIN", "('camvid_train',)"]  # fmt: skip
COLUMNS = [
    ("mIoU(S)", "mIoU(S)"),
    ("mIoU(U)", "mIoU(U)"),
    ("hIoU", "hIoU"),
    ("PA", "pACC"),
    ("MA", "mACC"),
    ("fwIoU", "fwIoU"),
]


@dataclass(frozen=True)
class Stage:
    name: str  # runs of the same name are trained once per benchmark
    config: str
    opts: Sequence[str] = ()
    train: bool = True
    weights_from: str | None = None  # MODEL.WEIGHTS = that stage's model_final.pth


@dataclass(frozen=True)
class Method:
    name: str
    stages: list[Stage] = field(default_factory=list)


SZN_STEP1 = Stage("szn_step1", "configs/szn/tiny/camvid_step1.yaml")
ZS3_SEGMENTATION = Stage("zs3_segmentation", "configs/zs3net/tiny/camvid_1_segmentation.yaml")
ZS3_GENERATOR = Stage(
    "zs3_generator", "configs/zs3net/tiny/camvid_2_zs3net.yaml", weights_from="zs3_segmentation"
)
SIGN_TRAIN = Stage("sign_train", "configs/sign/tiny/camvid.yaml")
SIGN_TRANSFER = Stage(
    "sign_transfer", "configs/sign/tiny/camvid_transfer.yaml", weights_from="sign_train"
)
METHODS = [
    Method("CEL", [Stage("cel", "configs/cel/tiny/camvid_8-3.yaml")]),
    Method("FCN-S", [Stage("fcn_s", "configs/szn/tiny/camvid_fcn_s.yaml")]),
    Method(
        "FCN-JE",
        [
            SZN_STEP1,
            Stage("fcn_je", SZN_STEP1.config, ("MODEL.SZN.VARIANT", "fcn_je"), False, "szn_step1"),
        ],
    ),
    Method(
        "SZN",
        [
            SZN_STEP1,
            Stage("szn_step2", "configs/szn/tiny/camvid_step2.yaml", weights_from="szn_step1"),
        ],
    ),
    Method(
        "SZN-PS",
        [
            SZN_STEP1,
            Stage("szn_ps", SZN_STEP1.config, ("MODEL.SZN.VARIANT", "szn_ps"), False, "szn_step1"),
        ],
    ),
    Method("ZS3Net", [ZS3_SEGMENTATION, ZS3_GENERATOR]),
    Method(
        "ZS3Net+ZS-MMD",
        [
            ZS3_SEGMENTATION,
            ZS3_GENERATOR,
            Stage(
                "zs3_zs_mmd",
                "configs/zs3net/tiny/camvid_3_zs_mmd.yaml",
                weights_from="zs3_generator",
            ),
        ],
    ),
    Method("SIGN", [SIGN_TRAIN, SIGN_TRANSFER]),
    Method(
        "SIGN+ST",
        [
            SIGN_TRAIN,
            SIGN_TRANSFER,
            Stage("sign_st", "configs/sign/tiny/camvid_st.yaml", weights_from="sign_transfer"),
        ],
    ),
    Method(
        "SIGN+AST",
        [
            SIGN_TRAIN,
            SIGN_TRANSFER,
            Stage("sign_ast", "configs/sign/tiny/camvid_ast.yaml", weights_from="sign_transfer"),
        ],
    ),
    Method("RelationNet", [Stage("relation_net", "configs/relation_net/tiny/camvid.yaml")]),
]


def _train_net(args: list[str], log: Path) -> None:
    command = [sys.executable, str(REPO / "tools/train_net.py"), *args]
    with open(log, "w") as f:
        python_path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        done = subprocess.run(
            command,
            cwd=REPO,
            stdout=f,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": python_path},
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")


def run_stage(
    stage: Stage, out: Path, iters: int, device: str, trained: dict[str, Path], reuse: bool = False
) -> Path:
    """Train ``stage`` (once per name; with ``reuse``, not at all when an earlier benchmark left its
    weights); the weights file it leaves, or its source's for eval-only stages."""
    if not stage.train:
        return trained[stage.weights_from]
    folder = out / stage.name
    if reuse and (folder / "model_final.pth").is_file():
        trained[stage.name] = folder / "model_final.pth"
    if stage.name in trained:
        return trained[stage.name]
    folder.mkdir(parents=True, exist_ok=True)
    opts = [*COMMON, "MODEL.DEVICE", device, *stage.opts, "SOLVER.MAX_ITER", str(iters), "DATASETS.TEST", "()",
            "OUTPUT_DIR", str(folder)]  # fmt: skip
    if stage.weights_from:
        opts += ["MODEL.WEIGHTS", str(trained[stage.weights_from])]
    start = time.perf_counter()
    _train_net(["--config-file", stage.config, "--overwrite", *opts], folder / "train.log")
    print(f"# trained {stage.name} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    trained[stage.name] = folder / "model_final.pth"
    return trained[stage.name]


def evaluate(method: Method, out: Path, weights: Path, device: str) -> dict:
    last = method.stages[-1]
    folder = out / f"eval_{method.name}"
    opts = [
        *COMMON,
        "MODEL.DEVICE",
        device,
        *last.opts,
        "DATASETS.TEST",
        f"('{TEST_SET}',)",
        "OUTPUT_DIR",
        str(folder),
        "MODEL.WEIGHTS",
        str(weights),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    _train_net(
        ["--config-file", last.config, "--eval-only", "--overwrite", *opts], folder / "eval.log"
    )
    return json.loads((folder / "inference" / TEST_SET / "gzs3_metrics.json").read_text())


def format_table(results: dict[str, dict]) -> str:
    header = "| method | " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [header, "|---" * (len(COLUMNS) + 1) + "|"]
    for method, metrics in results.items():
        cells = [f"{metrics[key]:.1f}" if key in metrics else "n/a" for _, key in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--iters", type=int, default=200, help="SOLVER.MAX_ITER of every training stage"
    )
    parser.add_argument("--out", type=Path, default=REPO / "output" / "bench_methods")
    parser.add_argument("--device", default="cpu", help="MODEL.DEVICE of every run (cpu, cuda)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the weights an earlier run with the same --out left",
    )
    parser.add_argument(
        "--methods", nargs="*", default=[m.name for m in METHODS], choices=[m.name for m in METHODS]
    )
    args = parser.parse_args(argv)
    trained: dict[str, Path] = {}
    results: dict[str, dict] = {}
    title = (
        f"CamVid val, tiny models, {args.iters} iterations per training stage on {args.device}, "
        "tiny random CLIP text space"
    )
    for method in (m for m in METHODS if m.name in args.methods):
        weights = None
        for stage in method.stages:
            weights = run_stage(stage, args.out, args.iters, args.device, trained, args.reuse)
        results[method.name] = evaluate(method, args.out, weights, args.device)
        summary = {"title": title, "table": format_table(results), "metrics": results}
        (args.out / "results.json").write_text(json.dumps(summary, indent=1))  # after each method
        print(f"# {method.name} done", file=sys.stderr)
    print(title)
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
