"""CamVid GZS3 with a small CLIP trained on camvid_train: Table 4 and Table 5 rows in one table.

The recipe of configs/cel/tiny/camvid_*.yaml, run end to end on ../shared/data/camvid (CPU):
  0. tools/train_clip.py on camvid_train (all 11 classes' regions; camvid_val only measured);
  1. stage 1 on the 8 seen classes (camvid_stage1.yaml);
  2. pseudo labels for the 3 unseen classes (tools/generate_pseudo_labels.py);
  3. fine-tuning with unseen image labels none / pseudo / gt (Table 5), and with pseudo labels
     and the ranking loss's similarity scale 1 / tau (MODEL.CEL.LOSS.RANK_SCALE) beside scale 1;
each stage evaluated on camvid_val with the CLIP ensemble off and on (Table 4). Prints the GZS3
table, the pseudo-label quality and the minutes each step took, then one JSON object per row.
Steps are reused from --output while their settings are unchanged (zsseg_d2/utils/stages.py).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs" / "cel" / "tiny"
VAL = "camvid_val"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default=str(REPO / "output" / "camvid"))
    parser.add_argument("--clip-steps", type=int, default=800)
    parser.add_argument("--stage1-iters", type=int, default=1000)
    parser.add_argument("--stage3-iters", type=int, default=200)
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


def evaluate(config: Path, weights: Path, opts: list) -> dict:
    from zsseg_d2.engine import Trainer, load_config
    from zsseg_d2.engine.checkpoint import load_trained_weights

    cfg = load_config(str(config), ["MODEL.WEIGHTS", str(weights), *opts])
    model = Trainer.build_model(cfg).eval()
    load_trained_weights(model, str(weights))
    return Trainer.test(cfg, model)[VAL]["sem_seg"]


def main() -> None:
    args = parse_args()
    output = Path(args.output).resolve()
    os.environ.setdefault("ZSSEG_CACHE", str(output / "text_cache"))
    import zsseg_d2  # noqa: F401  (registers the data sets)
    from zsseg_d2.evaluation import format_gzs3_table
    from zsseg_d2.utils.stages import run_stage

    timings: dict = {}
    clip = output / "clip" / "clip.pt"
    settings = {
        "opts": args.opts,
        "clip": [
            "tools/train_clip.py",
            "--config-file",
            CONFIGS / "camvid_8-3.yaml",
            "--output",
            clip.parent,
            "--steps",
            args.clip_steps,
            "--no-progress",
        ],
    }
    run_stage(
        "small CLIP",
        clip.parent,
        settings,
        clip,
        lambda: timed_run(settings["clip"], timings, "small CLIP"),
    )
    opts = ["MODEL.CLIP.PRETRAINED", str(clip), *args.opts]
    stage1 = output / "stage1" / "model_final.pth"
    settings["stage1"] = [
        "tools/train_net.py",
        "--config-file",
        CONFIGS / "camvid_stage1.yaml",
        "OUTPUT_DIR",
        stage1.parent,
        "SOLVER.MAX_ITER",
        args.stage1_iters,
        "DATASETS.TEST",
        "()",
        *opts,
    ]
    run_stage(
        "stage 1",
        stage1.parent,
        settings,
        stage1,
        lambda: timed_run(settings["stage1"], timings, "stage 1"),
    )
    pseudo = output / "pseudo" / "pseudo_labels.json"
    settings["pseudo"] = [
        "tools/generate_pseudo_labels.py",
        "--config-file",
        CONFIGS / "camvid_stage1.yaml",
        "--output",
        pseudo,
        "--no-progress",
        "MODEL.WEIGHTS",
        stage1,
        *opts,
    ]
    run_stage(
        "pseudo labels",
        pseudo.parent,
        settings,
        pseudo,
        lambda: timed_run(settings["pseudo"], timings, "pseudo labels"),
    )

    variants = {
        "none": ("camvid_labels_none.yaml", []),
        "pseudo": ("camvid_pseudo.yaml", []),
        "gt": ("camvid_labels_gt.yaml", []),
        "pseudo, rank scale 1/tau": ("camvid_pseudo.yaml", ["MODEL.CEL.LOSS.RANK_SCALE", 100.0]),
    }
    models = {"stage 1 (labels: none)": (CONFIGS / "camvid_stage1.yaml", stage1)}
    stage3_jobs = []
    for name, (config, extra) in variants.items():
        folder = output / ("stage3_" + name.replace(", rank scale 1/tau", "_rank100"))
        step = f"stage 3, labels {name}"
        command = [
            "tools/train_net.py",
            "--config-file",
            CONFIGS / config,
            "OUTPUT_DIR",
            folder,
            "MODEL.WEIGHTS",
            stage1,
            "SOLVER.MAX_ITER",
            args.stage3_iters,
            "INPUT.IMAGE_LABELS.PSEUDO_LABEL_FILE",
            pseudo,
            "DATASETS.TEST",
            "()",
            *opts,
            *extra,
        ]
        stage3_jobs.append((step, folder, {**settings, step: command}, command))
        models[f"stage 3 (labels: {name})"] = (CONFIGS / config, folder / "model_final.pth")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(
                run_stage,
                step,
                folder,
                stage_settings,
                folder / "model_final.pth",
                functools.partial(timed_run, command, timings, step),
            )
            for step, folder, stage_settings, command in stage3_jobs
        ]
        for future in futures:
            future.result()

    results = {}
    start = time.monotonic()
    for name, (config, weights) in models.items():
        for ensemble in (False, True):
            results[f"{name}, ensemble {'on' if ensemble else 'off'}"] = evaluate(
                config, weights, [*opts, "MODEL.CLIP.ENSEMBLE", ensemble]
            )
    timings["evaluation (10 runs)"] = round((time.monotonic() - start) / 60, 1)
    clip_report = json.loads((clip.parent / "clip.json").read_text())
    pseudo_summary = json.loads(pseudo.with_suffix(".summary.json").read_text())
    print(
        f"\nGZS3 on {VAL} (unseen: tree, car, bicyclist), tiny model, small CLIP trained on camvid_train:"
    )
    print(format_gzs3_table(results))
    print(f"small CLIP crop accuracy on {VAL}: {clip_report['val_accuracy']}")
    print(
        f"pseudo labels: precision {pseudo_summary['precision']}, recall {pseudo_summary['recall']}, "
        "per class "
        + json.dumps(
            {
                k: (v.get("precision"), v.get("recall"))
                for k, v in pseudo_summary["per_class"].items()
            }
        )
    )
    print(f"minutes per step (this run; reused steps not timed): {timings}")
    for row, metrics in results.items():
        print(
            json.dumps(
                {
                    "name": "camvid_gzs3",
                    "row": row,
                    "value": metrics,
                    "unit": "%",
                    "settings": {
                        "clip_steps": args.clip_steps,
                        "stage1_iters": args.stage1_iters,
                        "stage3_iters": args.stage3_iters,
                    },
                }
            )
        )


if __name__ == "__main__":
    main()
