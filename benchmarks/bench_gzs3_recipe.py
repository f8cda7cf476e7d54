"""CEL's whole GZS3 recipe with a small CLIP, Table 4 and Table 5 rows, over one or more seeds.

Two recipes (``--recipe``), both on CPU:

- ``scenes``: the drawn COCO-Stuff scenes (``datasets/prepare_scenes.py``, drawn if missing) in
  the real CLIP ViT-B/16 text space (``configs/cel/tiny/scenes*.yaml``); the small CLIP's image
  tower is trained against those text embeddings (locked text);
- ``camvid``: the real CamVid images of ``../shared/data`` (``configs/cel/tiny/camvid*.yaml``),
  the small CLIP learning its own text space.

Per seed (``--seeds``, each in ``--output``/seed<N>):
  0. tools/train_clip.py on the training split (all classes' regions; the val split only measured);
  1. stage 1 on the seen classes;
  2. pseudo labels for the unseen classes (tools/generate_pseudo_labels.py);
  3. fine-tuning with unseen image labels none / pseudo / gt (Table 5), and the recipe's variant
     row (scenes: gt without the ranking loss, Table 6's direction; camvid: pseudo with the ranking
     loss's scale 1 / tau);
each model evaluated with the CLIP ensemble off (the model alone) and on (Table 4). Prints each
seed's table, then the mean and spread (population standard deviation) of mIoU(S), mIoU(U) and
hIoU over the seeds, and one JSON object per row. Steps are reused from ``--output`` while their
settings are unchanged (zsseg_d2/utils/stages.py).

    python benchmarks/bench_gzs3_recipe.py --recipe scenes --seeds 1 2 3 --jobs 2
    python benchmarks/bench_gzs3_recipe.py --recipe camvid --stage1-iters 1000
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "cel" / "tiny"
CLIP_TEXT = "zsseg_d2/data/embeddings/coco_stuff_171.vitb16.multi.npy"


@dataclass(frozen=True)
class Recipe:
    clip_config: str
    stage1_config: str
    val: str
    clip_steps: int
    stage1_iters: int
    stage3_iters: int
    variant: tuple[str, str, tuple]  # (row name, config, extra options)
    clip_args: tuple = ()
    configs: dict = field(default_factory=dict)  # Table 5 row -> config


RECIPES = {
    "scenes": Recipe(
        clip_config="scenes.yaml",
        stage1_config="scenes_stage1.yaml",
        val="zsseg_scenes_val",
        clip_steps=400,
        stage1_iters=600,
        stage3_iters=400,
        variant=(
            "gt, no ranking loss",
            "scenes_labels_gt.yaml",
            ("MODEL.CEL.LOSS.USE_RANK", False),
        ),
        clip_args=("--text-embeddings", CLIP_TEXT),
        configs={
            "none": "scenes_labels_none.yaml",
            "pseudo": "scenes_pseudo.yaml",
            "gt": "scenes_labels_gt.yaml",
        },
    ),
    "camvid": Recipe(
        clip_config="camvid_8-3.yaml",
        stage1_config="camvid_stage1.yaml",
        val="camvid_val",
        clip_steps=800,
        stage1_iters=1000,
        stage3_iters=200,
        variant=(
            "pseudo, rank scale 1/tau",
            "camvid_pseudo.yaml",
            ("MODEL.CEL.LOSS.RANK_SCALE", 100.0),
        ),
        configs={
            "none": "camvid_labels_none.yaml",
            "pseudo": "camvid_pseudo.yaml",
            "gt": "camvid_labels_gt.yaml",
        },
    ),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="scenes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--output", help="default output/<recipe>_gzs3")
    parser.add_argument("--clip-steps", type=int, help="default: the recipe's")
    parser.add_argument("--stage1-iters", type=int, help="default: the recipe's")
    parser.add_argument("--stage3-iters", type=int, help="default: the recipe's")
    parser.add_argument("--jobs", type=int, default=1, help="stage-3 variants trained at once")
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides for every stage, KEY VALUE ..."
    )
    return parser.parse_args()


def timed_run(command: list, timings: dict, step: str) -> None:
    print(f"\n=== {step}\n$ {' '.join(map(str, command))}", flush=True)
    start = time.monotonic()
    subprocess.run([sys.executable, *map(str, command)], check=True, cwd=REPO)
    timings[step] = round((time.monotonic() - start) / 60, 1)


def evaluate(config: Path, weights: Path, val: str, opts: list) -> dict:
    from zsseg_d2.engine import Trainer, load_config
    from zsseg_d2.engine.checkpoint import load_trained_weights

    cfg = load_config(
        str(config), ["MODEL.WEIGHTS", str(weights), "DATASETS.TEST", f"('{val}',)", *opts]
    )
    model = Trainer.build_model(cfg).eval()
    load_trained_weights(model, str(weights))
    return Trainer.test(cfg, model)[val]["sem_seg"]


def run_seed(recipe: Recipe, args: argparse.Namespace, seed: int, output: Path) -> dict:
    """The recipe for one seed: {row: metrics}, with the pseudo-label and CLIP reports."""
    from zsseg_d2.utils.stages import run_stage

    timings: dict = {}
    clip = output / "clip" / "clip.pt"
    settings = {
        "opts": args.opts,
        "clip": [
            "tools/train_clip.py", "--config-file", CONFIGS / recipe.clip_config,
            "--output", clip.parent, "--steps", args.clip_steps, "--seed", seed,
            "--no-progress", *recipe.clip_args,
        ],
    }  # fmt: skip

    def step(name: str, key: str, product: Path) -> None:
        action = functools.partial(timed_run, settings[key], timings, name)
        run_stage(name, product.parent, settings, product, action)

    step("small CLIP", "clip", clip)
    opts = ["MODEL.CLIP.PRETRAINED", str(clip), "SEED", seed, *args.opts]
    stage1 = output / "stage1" / "model_final.pth"
    settings["stage1"] = [
        "tools/train_net.py", "--config-file", CONFIGS / recipe.stage1_config, "--overwrite",
        "OUTPUT_DIR", stage1.parent, "SOLVER.MAX_ITER", args.stage1_iters, "DATASETS.TEST", "()",
        *opts,
    ]  # fmt: skip
    step("stage 1", "stage1", stage1)
    pseudo = output / "pseudo" / "pseudo_labels.json"
    settings["pseudo"] = [
        "tools/generate_pseudo_labels.py", "--config-file", CONFIGS / recipe.stage1_config,
        "--output", pseudo, "--no-progress", "MODEL.WEIGHTS", stage1, *opts,
    ]  # fmt: skip
    step("pseudo labels", "pseudo", pseudo)

    variant_name, variant_config, variant_opts = recipe.variant
    variants = {name: (config, []) for name, config in recipe.configs.items()}
    variants[variant_name] = (variant_config, list(variant_opts))
    models = {"stage 1 (labels: none)": (CONFIGS / recipe.stage1_config, stage1)}
    jobs = []
    for name, (config, extra) in variants.items():
        folder = output / ("stage3_" + "_".join(name.replace(",", "").replace("/", "").split()))
        label = f"stage 3, labels {name}"
        command = [
            "tools/train_net.py", "--config-file", CONFIGS / config, "--overwrite",
            "OUTPUT_DIR", folder, "MODEL.WEIGHTS", stage1, "SOLVER.MAX_ITER", args.stage3_iters,
            "INPUT.IMAGE_LABELS.PSEUDO_LABEL_FILE", pseudo, "DATASETS.TEST", "()", *opts, *extra,
        ]  # fmt: skip
        jobs.append((label, folder, {**settings, label: command}, command))
        models[f"stage 3 (labels: {name})"] = (CONFIGS / config, folder / "model_final.pth")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(
                run_stage, label, folder, stage_settings, folder / "model_final.pth",
                functools.partial(timed_run, command, timings, label),
            )
            for label, folder, stage_settings, command in jobs
        ]  # fmt: skip
        for future in futures:
            future.result()

    results = {}
    for name, (config, weights) in models.items():
        for ensemble in (False, True):
            row = f"{name}, ensemble {'on' if ensemble else 'off'}"
            results[row] = evaluate(
                config, weights, recipe.val, [*opts, "MODEL.CLIP.ENSEMBLE", ensemble]
            )
    clip_report = json.loads((clip.parent / "clip.json").read_text())
    pseudo_summary = json.loads(pseudo.with_suffix(".summary.json").read_text())
    print(f"\nseed {seed}: small CLIP crop accuracy on {recipe.val}: {clip_report['val_accuracy']}")
    print(
        f"seed {seed}: pseudo labels precision {pseudo_summary['precision']}, recall {pseudo_summary['recall']}"
    )
    print(f"seed {seed}: minutes per step (reused steps not timed): {timings}")
    return results


def spread_table(per_seed: list[dict]) -> str:
    """Mean ± population std over seeds of mIoU(S), mIoU(U), hIoU, a line per row."""
    lines = [f"{'row':58s} {'mIoU(S)':>13s} {'mIoU(U)':>13s} {'hIoU':>13s}"]
    for row in per_seed[0]:
        cells = []
        for key in ("mIoU(S)", "mIoU(U)", "hIoU"):
            values = [results[row][key] for results in per_seed]
            cells.append(f"{statistics.fmean(values):6.1f} ± {statistics.pstdev(values):4.1f}")
        lines.append(f"{row:58s} " + " ".join(f"{c:>13s}" for c in cells))
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    recipe = RECIPES[args.recipe]
    for name in ("clip_steps", "stage1_iters", "stage3_iters"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(recipe, name))
    output = Path(args.output or REPO / "output" / f"{args.recipe}_gzs3").resolve()
    os.environ.setdefault("ZSSEG_CACHE", str(output / "text_cache"))
    import zsseg_d2  # noqa: F401  (registers the data sets)
    from zsseg_d2.evaluation import format_gzs3_table

    if args.recipe == "scenes":
        from zsseg_d2.data.scenes import SCENES
        from zsseg_d2.data.synthetic import generate

        generate(
            Path(os.environ.get("DETECTRON2_DATASETS", "datasets")) / "zsseg_scenes", scenes=SCENES
        )
    per_seed = []
    for seed in args.seeds:
        results = run_seed(recipe, args, seed, output / f"seed{seed}")
        print(f"\nGZS3 on {recipe.val}, seed {seed}:\n{format_gzs3_table(results)}")
        per_seed.append(results)
        for row, metrics in results.items():
            line = {
                "name": f"{args.recipe}_gzs3",
                "seed": seed,
                "row": row,
                "value": metrics,
                "unit": "%",
            }
            print(json.dumps(line))
    print(f"\nGZS3 on {recipe.val}, mean ± std over seeds {args.seeds}:\n{spread_table(per_seed)}")


if __name__ == "__main__":
    main()
