#!/usr/bin/env python3
"""`make demo`: the paper's three-stage GZS3 pipeline on procedurally drawn scenes, on CPU.

  1. train the tiny model on the seen classes (masks and image labels of seen classes only);
  2. tools/generate_pseudo_labels.py: unseen image-level labels from CLIP crops of its proposals;
  3. fine-tune with the pseudo labels (ranking + background-aware losses);
then evaluate stages 1 and 3 side by side (mIoU(S), mIoU(U), hIoU) and draw a few overlays.

The embedded default uses a random-weight CLIP (nothing can be downloaded here), so unseen classes
cannot be recognised from their names: expect mIoU(U) near 0 and few or no pseudo labels. To run
the same job with real CLIP on a connected machine (or with a local checkpoint file):

  python tools/run_demo.py MODEL.CLIP.MODEL_NAME ViT-B-16 MODEL.CLIP.PRETRAINED openai
  python tools/run_demo.py MODEL.CLIP.MODEL_NAME ViT-B-16 MODEL.CLIP.PRETRAINED /path/open_clip_model.bin
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "tiny" / "shapes.yaml"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=str(REPO / "output" / "demo"))
    parser.add_argument("--stage1-iters", type=int, default=600)
    parser.add_argument("--stage3-iters", type=int, default=200)
    parser.add_argument("--num-train", type=int, default=300)
    parser.add_argument("--num-val", type=int, default=60)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides for every stage, KEY VALUE ...")
    return parser.parse_args()


def run(step: str, command: list) -> None:
    print(f"\n=== {step}\n$ {' '.join(map(str, command))}", flush=True)
    start = time.monotonic()
    subprocess.run([sys.executable, *map(str, command)], check=True, cwd=REPO)
    print(f"=== {step}: done in {time.monotonic() - start:.0f} s", flush=True)


def train(step: str, output: Path, iters: int, opts: list) -> Path:
    weights = output / "model_final.pth"
    if weights.is_file():
        print(f"=== {step}: reusing {weights}")
        return weights
    run(step, ["tools/train_net.py", "--config-file", CONFIG, "OUTPUT_DIR", output, "SOLVER.MAX_ITER", iters,
               "DATASETS.TEST", "()", *opts])
    return weights


def evaluate(weights: Path, opts: list) -> dict:
    from zsseg_d2.engine import Trainer, load_config
    from zsseg_d2.engine.checkpoint import load_trained_weights

    cfg = load_config(str(CONFIG), ["MODEL.WEIGHTS", str(weights), *opts])
    model = Trainer.build_model(cfg).eval()
    load_trained_weights(model, str(weights))
    return Trainer.test(cfg, model)["zsseg_shapes_val"]["sem_seg"]


def draw_overlays(weights: Path, opts: list, output: Path, count: int = 4) -> None:
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zsseg_d2.engine import load_config
    from zsseg_d2.engine.predictor import VocabularyPredictor
    from zsseg_d2.utils.visualization import overlay_with_legend

    cfg = load_config(str(CONFIG), ["MODEL.WEIGHTS", str(weights), *opts])
    vocabulary = MetadataCatalog.get("zsseg_shapes_val").stuff_classes
    predictor = VocabularyPredictor(cfg, vocabulary)
    output.mkdir(parents=True, exist_ok=True)
    for record in DatasetCatalog.get("zsseg_shapes_val")[:count]:
        rgb = np.asarray(Image.open(record["file_name"]).convert("RGB"))
        label = predictor(rgb)
        # the scenes are 128 px: draw at 3x so that the labels stay legible
        big_rgb, big_label = (np.kron(a, np.ones((3, 3) + (1,) * (a.ndim - 2), dtype=a.dtype)) for a in (rgb, label))
        overlay = overlay_with_legend(big_rgb, big_label, vocabulary)
        Image.fromarray(overlay).save(output / f"{record['image_id']}_overlay.png")
    print(f"overlays of {count} validation images in {output}")


def main() -> None:
    args = parse_args()
    output = Path(args.output).resolve()
    os.environ.setdefault("DETECTRON2_DATASETS", str(REPO / "datasets"))
    os.environ.setdefault("ZSSEG_CACHE", str(output / "text_cache"))
    import zsseg_d2  # noqa: F401  (after the environment: registers the data sets)
    from detectron2.data import MetadataCatalog
    from zsseg_d2.data.synthetic import generate
    from zsseg_d2.evaluation import format_gzs3_table

    generate(Path(os.environ["DETECTRON2_DATASETS"]) / "zsseg_shapes", args.num_train, args.num_val)
    stage1 = train("stage 1: seen classes only", output / "stage1", args.stage1_iters,
                   ["INPUT.IMAGE_LABELS.UNSEEN_MODE", "none", *args.opts])
    pseudo = output / "pseudo_labels.json"
    run("stage 2: pseudo labels", ["tools/generate_pseudo_labels.py", "--config-file", CONFIG, "--dataset",
                                   "zsseg_shapes_train", "--output", pseudo, "MODEL.WEIGHTS", stage1, *args.opts])
    stage3 = train("stage 3: with pseudo labels", output / "stage3", args.stage3_iters,
                   ["MODEL.WEIGHTS", stage1, "SOLVER.BASE_LR", "0.0001", "INPUT.IMAGE_LABELS.UNSEEN_MODE", "pseudo",
                    "INPUT.IMAGE_LABELS.PSEUDO_LABEL_FILE", pseudo, *args.opts])
    results = {"stage 1 (seen only)": evaluate(stage1, args.opts), "stage 3 (+pseudo labels)": evaluate(stage3, args.opts)}
    draw_overlays(stage3, args.opts, output / "overlays")
    unseen = ", ".join(MetadataCatalog.get("zsseg_shapes_val").unseen_classes)
    print(f"\nGZS3 on zsseg_shapes_val (unseen: {unseen}):\n" + format_gzs3_table(results))
    print("\nWith random CLIP weights the unseen classes cannot be recognised from their names, so mIoU(U)\n"
          "stays near 0; run with MODEL.CLIP.PRETRAINED openai (connected machine) or a local CLIP file.")


if __name__ == "__main__":
    main()
