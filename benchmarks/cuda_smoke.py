"""Every method's tiny CamVid stages on a GPU, chained, then evaluated: the CUDA paths in one run.

  python benchmarks/cuda_smoke.py [--iters 10] [--eval-images 12] [--device cuda|cpu]

Trains each stage (CEL with its config's AMP; SZN steps 1-2; ZS3Net stages 1-3; SIGN train,
transfer, AST; the Relation Network) for ``--iters`` iterations in one process, each later stage from
the earlier stage's weights, evaluates the last stage on the first ``--eval-images`` camvid_val
images, and prints one JSON line per method (stage times, metrics, peak GPU memory).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import traceback

import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

import zsseg_d2  # noqa: F401  (registers data sets and models)
from zsseg_d2.engine import Trainer, load_config
from zsseg_d2.engine.checkpoint import load_trained_weights

CHAINS = {
    "CEL": ["configs/cel/tiny/camvid_8-3.yaml"],
    "SZN": ["configs/szn/tiny/camvid_step1.yaml", "configs/szn/tiny/camvid_step2.yaml"],
    "ZS3Net+ZS-MMD": [
        "configs/zs3net/tiny/camvid_1_segmentation.yaml",
        "configs/zs3net/tiny/camvid_2_zs3net.yaml",
        "configs/zs3net/tiny/camvid_3_zs_mmd.yaml",
    ],
    "SIGN+AST": [
        "configs/sign/tiny/camvid.yaml",
        "configs/sign/tiny/camvid_transfer.yaml",
        "configs/sign/tiny/camvid_ast.yaml",
    ],
    "RelationNet": ["configs/relation_net/tiny/camvid.yaml"],
}
EVAL_SET = "camvid_val_subset"


def register_eval_subset(count: int) -> None:
    images = DatasetCatalog.get("camvid_val")[:count]
    DatasetCatalog.register(EVAL_SET, lambda: images)
    metadata = MetadataCatalog.get("camvid_val").as_dict()
    MetadataCatalog.get(EVAL_SET).set(**{k: v for k, v in metadata.items() if k != "name"})


def run_chain(chain: list, common: list, out: str) -> dict:
    weights, seconds = "", []
    for i, config in enumerate(chain):
        opts = (
            common
            + ["OUTPUT_DIR", f"{out}/{i}", "DATASETS.TEST", "()"]
            + (["MODEL.WEIGHTS", weights] if weights else [])
        )
        start = time.time()
        trainer = Trainer(load_config(config, opts))
        trainer.resume_or_load(resume=False)
        trainer.train()
        seconds.append(round(time.time() - start, 1))
        weights = f"{out}/{i}/model_final.pth"
    cfg = load_config(
        chain[-1],
        common
        + [
            "OUTPUT_DIR",
            f"{out}/eval",
            "DATASETS.TEST",
            f"('{EVAL_SET}',)",
            "MODEL.WEIGHTS",
            weights,
        ],
    )
    model = Trainer.build_model(cfg)
    load_trained_weights(model, weights)
    metrics = Trainer.test(cfg, model)[EVAL_SET]["sem_seg"]
    return {
        "stage_seconds": seconds,
        "mIoU(S)": round(metrics["mIoU(S)"], 2),
        "mIoU(U)": round(metrics["mIoU(U)"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iters", default="10")
    parser.add_argument("--eval-images", type=int, default=12)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    register_eval_subset(args.eval_images)
    common = ["MODEL.DEVICE", args.device, "SOLVER.MAX_ITER", args.iters, "SEED", "0",
              "MODEL.SEMANTIC.SOURCE", "clip_text", "MODEL.CLIP.MODEL_NAME", "ZSSeg-Tiny", "MODEL.CLIP.PRETRAINED", "",
              "MODEL.CLIP.PROMPT_TEMPLATES", "single"]  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        for method, chain in CHAINS.items():
            try:
                result = run_chain(chain, common, f"{out}/{method}")
            except Exception:  # report and go on: one broken method must not hide the others
                result = {"error": traceback.format_exc()[-2000:]}
            if torch.cuda.is_available():
                result["peak_gpu_GiB"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            print(json.dumps({"method": method, **result}), flush=True)


if __name__ == "__main__":
    main()
