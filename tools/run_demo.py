#!/usr/bin/env python3
"""`make demo`: zero-shot segmentation you can see, on procedurally drawn scenes, on CPU, offline.

  0. draw the scenes (10 classes; water and car unseen) and train a small CLIP (ZSSeg-Tiny) on
     captioned regions of the training scenes, all classes taking part (tools/train_clip.py);
  1. train the tiny model on the seen classes (masks and image labels of seen classes only);
  2. tools/generate_pseudo_labels.py: unseen image-level labels from CLIP crops of its proposals;
  3. fine-tune with the pseudo labels (ranking + background-aware losses), ranking similarities
     scaled by 1/tau (--rank-scale; with eq. 6's raw cosines the unseen classes stay at mIoU 0);
then evaluate stages 1 and 3, each without and with the CLIP ensemble (mIoU(S), mIoU(U), hIoU),
report the pseudo labels' precision/recall (all also in <output>/results.json) and draw overlays.

Everything is written under --output (default output/demo, git-ignored). Each step records its
settings; a rerun reuses a step only when its settings are unchanged and otherwise runs it (and
everything after it) again. With real CLIP weights instead of the small CLIP:

  python tools/run_demo.py MODEL.CLIP.MODEL_NAME ViT-B-16 MODEL.CLIP.PRETRAINED openai
  python tools/run_demo.py MODEL.CLIP.MODEL_NAME ViT-B-16 MODEL.CLIP.PRETRAINED /path/open_clip_model.bin
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "cel" / "tiny" / "shapes.yaml"
VAL = "zsseg_shapes_val"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default=str(REPO / "output" / "demo"))
    parser.add_argument(
        "--clip-steps", type=int, default=400, help="small-CLIP training steps (0: random CLIP)"
    )
    parser.add_argument("--stage1-iters", type=int, default=600)
    parser.add_argument("--stage3-iters", type=int, default=200)
    parser.add_argument(
        "--rank-scale",
        type=float,
        default=100.0,
        help="stage 3's MODEL.CEL.LOSS.RANK_SCALE: 100 = 1/tau; 1 (eq. 6 as printed) leaves mIoU(U) at 0",
    )
    parser.add_argument("--num-train", type=int, default=300)
    parser.add_argument("--num-val", type=int, default=60)
    parser.add_argument(
        "opts", nargs=argparse.REMAINDER, help="config overrides for every stage, KEY VALUE ..."
    )
    return parser.parse_args()


def run(step: str, command: list) -> None:
    print(f"\n=== {step}\n$ {' '.join(map(str, command))}", flush=True)
    start = time.monotonic()
    subprocess.run([sys.executable, *map(str, command)], check=True, cwd=REPO)
    print(f"=== {step}: done in {time.monotonic() - start:.0f} s", flush=True)


def train_command(output: Path, iters: int, opts: list) -> list:
    return [
        "tools/train_net.py",
        "--config-file",
        CONFIG,
        "OUTPUT_DIR",
        output,
        "SOLVER.MAX_ITER",
        iters,
        "DATASETS.TEST",
        "()",
        *opts,
    ]


def evaluate(weights: Path, opts: list) -> dict:
    from zsseg_d2.engine import Trainer, load_config
    from zsseg_d2.engine.checkpoint import load_trained_weights

    cfg = load_config(str(CONFIG), ["MODEL.WEIGHTS", str(weights), *opts])
    model = Trainer.build_model(cfg).eval()
    load_trained_weights(model, str(weights))
    return Trainer.test(cfg, model)[VAL]["sem_seg"]


def draw_overlays(weights: Path, opts: list, output: Path, count: int = 6) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zsseg_d2.engine import load_config
    from zsseg_d2.engine.predictor import VocabularyPredictor
    from zsseg_d2.utils.visualization import overlay_with_legend

    cfg = load_config(str(CONFIG), ["MODEL.WEIGHTS", str(weights), *opts])
    vocabulary = MetadataCatalog.get(VAL).stuff_classes
    predictor = VocabularyPredictor(cfg, vocabulary)
    output.mkdir(parents=True, exist_ok=True)
    unseen_ids = [vocabulary.index(name) for name in MetadataCatalog.get(VAL).unseen_classes]
    with_unseen = [
        r
        for r in DatasetCatalog.get(VAL)
        if np.isin(np.asarray(Image.open(r["sem_seg_file_name"])), unseen_ids).any()
    ]
    for record in with_unseen[:count]:
        rgb = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        label = predictor(rgb)
        # the scenes are 128 px: draw at 3x so that the labels stay legible
        big_rgb, big_label = (
            np.kron(a, np.ones((3, 3) + (1,) * (a.ndim - 2), dtype=a.dtype)) for a in (rgb, label)
        )
        overlay = overlay_with_legend(big_rgb, big_label, vocabulary)
        Image.fromarray(overlay).save(output / f"{record['image_id']}_overlay.png")
    print(
        f"overlays of {min(count, len(with_unseen))} validation images with unseen classes (stage 3 with the CLIP "
        f"ensemble) in {output}"
    )


def pseudo_label_quality(summary_file: Path) -> str:
    summary = json.loads(summary_file.read_text())
    per_class = ", ".join(
        f"{name} {c.get('precision')}/{c.get('recall')}" for name, c in summary["per_class"].items()
    )
    return (
        f"pseudo labels on {summary['images_done']} training images: precision {summary['precision']}, "
        f"recall {summary['recall']} (per class precision/recall: {per_class})"
    )


def report_disk_use(output: Path) -> None:
    from zsseg_d2.utils.stages import folder_size

    parts = {p.name: folder_size(p) for p in sorted(output.iterdir()) if p.is_dir()}
    listing = ", ".join(f"{name}/ {size / 2**20:.1f} MB" for name, size in parts.items())
    print(
        f"\nwritten under {output}: {folder_size(output) / 2**20:.1f} MB ({listing}); remove the folder to start over"
    )


def main() -> None:
    args = parse_args()
    output = Path(args.output).resolve()
    # the demo's generated scenes live in its own output folder, never in a user's DETECTRON2_DATASETS
    os.environ["DETECTRON2_DATASETS"] = str(output / "datasets")
    os.environ.setdefault("ZSSEG_CACHE", str(output / "text_cache"))
    print(
        f"writing under {output}: scenes (datasets/), small CLIP (clip/), stage checkpoints (stage1/, "
        f"stage3/), pseudo labels (pseudo/), overlays (overlays/), text-embedding cache (text_cache/)"
    )
    from detectron2.data import MetadataCatalog

    import zsseg_d2  # noqa: F401  (after the environment: registers the data sets)
    from zsseg_d2.data.synthetic import GENERATOR_VERSION, generate
    from zsseg_d2.evaluation import format_gzs3_table
    from zsseg_d2.utils.stages import run_stage

    start = time.monotonic()
    generate(output / "datasets" / "zsseg_shapes", args.num_train, args.num_val)
    settings = {"scenes": [GENERATOR_VERSION, args.num_train, args.num_val], "opts": args.opts}
    clip_opts = []
    if args.clip_steps > 0 and "MODEL.CLIP.PRETRAINED" not in args.opts:
        clip = output / "clip" / "clip.pt"
        settings["clip"] = [
            "tools/train_clip.py",
            "--config-file",
            CONFIG,
            "--output",
            clip.parent,
            "--steps",
            args.clip_steps,
            *args.opts,
        ]
        run_stage(
            "step 0: small CLIP",
            clip.parent,
            settings,
            clip,
            lambda: run("step 0: small CLIP", settings["clip"]),
        )
        clip_opts = ["MODEL.CLIP.PRETRAINED", str(clip)]
    opts = [*clip_opts, *args.opts]

    stage1 = output / "stage1" / "model_final.pth"
    settings["stage1"] = train_command(
        stage1.parent, args.stage1_iters, ["INPUT.IMAGE_LABELS.UNSEEN_MODE", "none", *opts]
    )
    run_stage(
        "stage 1: seen classes only",
        stage1.parent,
        settings,
        stage1,
        lambda: run("stage 1: seen classes only", settings["stage1"]),
    )
    pseudo = output / "pseudo" / "pseudo_labels.json"
    settings["stage2"] = [
        "tools/generate_pseudo_labels.py",
        "--config-file",
        CONFIG,
        "--dataset",
        "zsseg_shapes_train",
        "--output",
        pseudo,
        "--no-progress",
        "MODEL.WEIGHTS",
        stage1,
        *opts,
    ]
    run_stage(
        "stage 2: pseudo labels",
        pseudo.parent,
        settings,
        pseudo,
        lambda: run("stage 2: pseudo labels", settings["stage2"]),
    )
    stage3 = output / "stage3" / "model_final.pth"
    settings["stage3"] = train_command(
        stage3.parent,
        args.stage3_iters,
        [
            "MODEL.WEIGHTS",
            stage1,
            "SOLVER.BASE_LR",
            "0.0001",
            "INPUT.IMAGE_LABELS.UNSEEN_MODE",
            "pseudo",
            "INPUT.IMAGE_LABELS.PSEUDO_LABEL_FILE",
            pseudo,
            "MODEL.CEL.LOSS.RANK_SCALE",
            args.rank_scale,
            *opts,
        ],
    )
    run_stage(
        "stage 3: with pseudo labels",
        stage3.parent,
        settings,
        stage3,
        lambda: run("stage 3: with pseudo labels", settings["stage3"]),
    )

    print("\n=== evaluation on", VAL, flush=True)
    results = {}
    for stage, weights in (("stage 1", stage1), ("stage 3", stage3)):
        for ensemble in (False, True):
            row = f"{stage}, ensemble {'on' if ensemble else 'off'}"
            results[row] = evaluate(weights, [*opts, "MODEL.CLIP.ENSEMBLE", ensemble])
    draw_overlays(stage3, [*opts, "MODEL.CLIP.ENSEMBLE", True], output / "overlays")
    unseen = ", ".join(MetadataCatalog.get(VAL).unseen_classes)
    print(f"\nGZS3 on {VAL} (unseen: {unseen}):\n" + format_gzs3_table(results))
    print(pseudo_label_quality(pseudo.with_suffix(".summary.json")))
    (output / "results.json").write_text(
        json.dumps(
            {
                "gzs3": results,
                "pseudo_labels": json.loads(pseudo.with_suffix(".summary.json").read_text()),
            },
            indent=1,
            default=float,
        )
    )
    if not clip_opts and "MODEL.CLIP.PRETRAINED" not in args.opts:
        print(
            "With a random CLIP (--clip-steps 0) the unseen classes cannot be recognised from their names."
        )
    report_disk_use(output)
    print(f"demo done in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
