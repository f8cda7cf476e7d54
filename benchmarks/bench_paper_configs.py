"""Every paper config of the five methods at full size: does it build, how fast does it train, how
much GPU memory does it take.

On a CUDA device (``--device cuda``), each paper row builds its real model (real depth, widths, class
count) with random weights and trains ``--iters`` iterations (default 20) on synthetic batches
shaped like its data: the config's training crop (or its whole-image size), its per-GPU batch
(``SOLVER.IMS_PER_BATCH`` / the paper's GPU count, :data:`PAPER_GPUS`), labels drawn from its
classes (unseen ones where the stage sees them). It prints one JSON line per row: median seconds
per iteration after 2 warm-up iterations and peak GPU memory against an 80 GB card. ``--pseudo``
adds CEL's pseudo-label pass with a ViT-B/16-sized CLIP (random weights): the proposal model and
CLIP's image encoder on ``PSEUDO_LABEL.TOPK`` crops per image, per batch of images.

On the CPU (``--device cpu``, and ``tests/test_config_audit.py``), each row builds its real model
and runs one training forward pass at a reduced input size (``--cpu-size``, default 64), no
backward: a check that every config builds and runs, not a speed figure.

Nothing is downloaded: ImageNet weights are not loaded (``MODEL.WEIGHTS`` "", ``MODEL.VGG.PRETRAINED``
""), CLIP has random weights, and class-vector files that are not shipped (built with
``datasets/prepare_*.py``) are replaced by random vectors of their width (300 for word vectors,
312 for CUB's attributes) for the names of the row's classes; data sets that ship no class list
(CUB, ADE20K-847) get placeholder names, and a missing caption-noun file (Table 3) placeholder
nouns after the seen names.

    python benchmarks/bench_paper_configs.py --device cuda [--only szn zs3net] [--pseudo]
    python benchmarks/bench_paper_configs.py --device cpu --only sign
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.structures import Instances

import zsseg_d2  # noqa: F401  (registers data sets and model parts)
from zsseg_d2.data.image_labels import CAPTION_NOUN_FORMAT
from zsseg_d2.engine import Trainer, load_config
from zsseg_d2.engine.solver import build_optimizer
from zsseg_d2.modeling.semantic.embedding_file import resolve_embedding_path

REPO_ROOT = Path(__file__).resolve().parents[1]
METHODS = ("cel", "szn", "zs3net", "sign", "relation_net")
# GPUs of each method's recipe: the per-GPU batch is SOLVER.IMS_PER_BATCH / this. CEL's README
# trains on 8 GPUs; the recursive ZS-MMD paper "is trained using a NVIDIA RTX2080ti GPU"; SZN
# trains at batch 1; the Relation Network's DeepLab batch is limited by one 16 GB card; SIGN names
# no GPU count (one, our reading).
PAPER_GPUS = {"cel": 8, "szn": 1, "zs3net": 1, "sign": 1, "relation_net": 1}
CARD_GB = 80.0
CUB_SPECIES = 200


@dataclass(frozen=True)
class PaperRow:
    method: str
    config: str  # relative to the repository root

    @property
    def name(self) -> str:
        return self.config.removeprefix(f"configs/{self.method}/").removesuffix(".yaml")


def paper_rows(methods=METHODS) -> list[PaperRow]:
    """Every config of ``configs/<method>/`` except the ``Base-*`` files and ``tiny/``."""
    rows = []
    for method in methods:
        for path in sorted((REPO_ROOT / "configs" / method).rglob("*.yaml")):
            relative = path.relative_to(REPO_ROOT).as_posix()
            if not path.name.startswith("Base-") and "/tiny/" not in relative:
                rows.append(PaperRow(method, relative))
    return rows


def _dataset_classes(cfg) -> list[str]:
    names: list[str] = []
    for dataset in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST):
        names += [n for n in MetadataCatalog.get(dataset).stuff_classes if n not in names]
    return names


def _stand_in_files(cfg, folder: Path) -> list[str]:
    """``MODEL.SEMANTIC.FILES`` with every missing file replaced by random vectors of its width."""
    files = []
    for index, name in enumerate(cfg.MODEL.SEMANTIC.FILES):
        if resolve_embedding_path(name).is_file():
            files.append(name)
            continue
        width = 312 if "attributes_312" in name else 300
        names = _dataset_classes(cfg)
        vectors = np.random.default_rng(index).normal(size=(len(names), width))
        path = folder / f"stand_in_{index}_{Path(name).stem}.npz"
        np.savez(path, names=np.array(names), vectors=vectors.astype(np.float32))
        files.append(str(path))
    return files


def stand_in_class_lists(folder: Path) -> None:
    """Class lists of data sets that ship none, under ``folder`` (the root their registrations read
    when ``$DETECTRON2_DATASETS`` points at it): CUB (background, 200 species, 50 unseen) and
    ADE20K-847 (847 names)."""
    cub = folder / "cub"
    cub.mkdir(parents=True, exist_ok=True)
    species = [f"species {i}" for i in range(1, CUB_SPECIES + 1)]
    (cub / "class_names.txt").write_text("\n".join(["background", *species]) + "\n")
    (cub / "unseen_classes.txt").write_text("\n".join(species[-50:]) + "\n")
    ade = folder / "ade20k_full"
    ade.mkdir(parents=True, exist_ok=True)
    (ade / "class_names_847.txt").write_text("".join(f"ade class {i}\n" for i in range(847)))


def _stand_in_nouns(cfg, folder: Path, size: int) -> str:
    """A caption-noun file: the training set's seen names, then placeholder nouns, ``size`` in
    all (Table 3's 1047), no image labels."""
    seen = MetadataCatalog.get(cfg.DATASETS.TRAIN[0])
    names = [n for n in seen.stuff_classes if n not in seen.unseen_classes]
    vocabulary = names + [f"noun {i}" for i in range(size - len(names))]
    path = folder / f"stand_in_nouns_{size}.json"
    path.write_text(
        json.dumps({"format": CAPTION_NOUN_FORMAT, "vocabulary": vocabulary, "labels": {}})
    )
    return str(path)


def load_row(row: PaperRow, folder: Path, device: str, extra_opts=(), nouns: int = 1047) -> object:
    """The row's config with nothing to download or read (see the module docstring); a missing
    caption-noun file is replaced by ``nouns`` stand-in nouns."""
    opts = ["MODEL.WEIGHTS", "", "MODEL.VGG.PRETRAINED", "", "MODEL.DEVICE", device,
            "MODEL.CLIP.PRETRAINED", "", "MODEL.CLIP.OFFLINE", True,
            "MODEL.CLIP.CACHE_DIR", str(folder / "clip_cache"), *extra_opts]  # fmt: skip
    cfg = load_config(str(REPO_ROOT / row.config), opts)
    cfg.defrost()
    cfg.MODEL.SEMANTIC.FILES = _stand_in_files(cfg, folder)
    noun_file = cfg.INPUT.IMAGE_LABELS.NOUN_FILE
    if noun_file and not Path(noun_file).is_file():
        cfg.INPUT.IMAGE_LABELS.NOUN_FILE = _stand_in_nouns(cfg, folder, nouns)
    if cfg.MODEL.META_ARCHITECTURE == "SIGN" and cfg.MODEL.SIGN.SELF_TRAINING == "st":
        unseen = MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).unseen_classes
        cfg.MODEL.SIGN.ST_THRESHOLDS = [0.5] * len(unseen)  # the pass over the data is not run
    cfg.freeze()
    return cfg


def per_gpu_batch(row: PaperRow, cfg) -> int:
    return max(1, cfg.SOLVER.IMS_PER_BATCH // PAPER_GPUS[row.method])


def training_size(cfg) -> tuple[int, int]:
    """(h, w) of a training input: the crop, or the largest short side within MAX_SIZE_TRAIN at
    4:3 (whole images)."""
    if cfg.INPUT.CROP.ENABLED:
        return tuple(cfg.INPUT.CROP.SIZE)
    short = max(cfg.INPUT.MIN_SIZE_TRAIN)
    long = min(round(short * 4 / 3), cfg.INPUT.MAX_SIZE_TRAIN)
    return round(long * 3 / 4), long


def _stage_sees_unseen(cfg) -> bool:
    return cfg.INPUT.DATASET_MAPPER_NAME == "zs_full_label"


def synthetic_batch(cfg, model, batch: int, size: tuple[int, int], seed: int = 0) -> list[dict]:
    """Images and label maps of rectangles of the training classes (unseen ones when the stage
    keeps them), a void border; CEL's instances and image labels from the same maps."""
    generator = torch.Generator().manual_seed(seed)
    split = model.split
    classes = list(range(len(split.vocabulary))) if _stage_sees_unseen(cfg) else split.seen_ids
    h, w = size
    inputs = []
    for _ in range(batch):
        label = torch.full((h, w), classes[0], dtype=torch.long)
        for _ in range(6):
            y, x = (int(torch.randint(0, s // 2, (1,), generator=generator)) for s in (h, w))
            c = classes[int(torch.randint(len(classes), (1,), generator=generator))]
            label[y : y + h // 2, x : x + w // 2] = c
        label[:2] = model.ignore_value
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=generator)
        x = {"image": image, "sem_seg": label, "height": h, "width": w}
        if cfg.MODEL.META_ARCHITECTURE == "CEL":
            present = [int(c) for c in label.unique() if c != model.ignore_value]
            instances = Instances((h, w))
            instances.gt_classes = torch.tensor(present, dtype=torch.long)
            instances.gt_masks = torch.stack([label == c for c in present])
            x["instances"] = instances
            x["image_labels"] = torch.tensor(present, dtype=torch.long)
        inputs.append(x)
    return inputs


def _backbone_statistics_from(model: torch.nn.Module, inputs: list[dict]) -> None:
    """Set the running statistics of the backbone's BN layers to those of ``inputs``."""
    norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [(m.training, m.momentum) for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one batch gives exactly its statistics
        norm.train()
    model.backbone(model.preprocess(inputs).tensor)
    for norm, (training, momentum) in zip(norms, saved):
        norm.train(training)
        norm.momentum = momentum


def cpu_forward(row: PaperRow, folder: Path, size: int = 64) -> dict:
    """Build the row's real model on the CPU and compute its training losses once (no backward)
    on a per-GPU batch at ``size`` x ``size``: the losses' names and values. CLIP's text tower
    reads one prompt template per class instead of 80 (the same network, 80 times less text).
    FrozenBN becomes BN (same parameters) and the backbone's BN statistics are those of the batch:
    they stand for the ImageNet weights' statistics, which are not loaded; at identity statistics a
    random ResNet-101 overflows to inf / NaN."""
    cfg = load_row(row, folder, "cpu", ["MODEL.CLIP.PROMPT_TEMPLATES", "single"], nouns=200)
    if cfg.MODEL.RESNETS.NORM == "FrozenBN":
        cfg.defrost()
        cfg.MODEL.RESNETS.NORM = "BN"
        cfg.freeze()
    torch.manual_seed(0)
    model = Trainer.build_model(cfg).train()
    inputs = synthetic_batch(cfg, model, per_gpu_batch(row, cfg), (size, size))
    with torch.no_grad():
        _backbone_statistics_from(model, inputs)
        losses = model(inputs)
    return {k: float(v) for k, v in losses.items()}


def gpu_run(row: PaperRow, folder: Path, iters: int = 20) -> dict:
    """``iters`` training iterations (forward, backward, optimizer step) at the real size."""
    cfg = load_row(row, folder, "cuda")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg).train()
    optimizer = build_optimizer(cfg, model)
    batch, size = per_gpu_batch(row, cfg), training_size(cfg)
    inputs = synthetic_batch(cfg, model, batch, size)
    amp = bool(cfg.SOLVER.AMP.ENABLED)  # as the trainer: fp16 autocast and a gradient scaler
    scaler = torch.cuda.amp.GradScaler(enabled=amp)
    torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(iters):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", enabled=amp):
            losses = model(inputs)
        optimizer.zero_grad()
        scaler.scale(sum(losses.values())).backward()
        scaler.step(optimizer)
        scaler.update()
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30
    return {
        "s_per_iter": round(statistics.median(seconds[2:] or seconds), 4),
        "peak_gpu_gb": round(peak, 2),
        "of_80gb": f"{100 * peak / CARD_GB:.0f}%",
        "per_gpu_batch": batch,
        "total_batch": cfg.SOLVER.IMS_PER_BATCH,
        "input": list(size),
        "amp": amp,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
    }


def pseudo_label_pass(
    folder: Path, iters: int = 20, config: str = "configs/cel/coco_stuff/supervised_seen_R50.yaml"
) -> dict:
    """CEL's pseudo-label pass networks at full size: the proposal model (R-50 Mask2Former) on
    ``PSEUDO_LABEL.IMS_PER_BATCH`` images at ``INPUT.MIN_SIZE_TEST``, then a ViT-B/16-sized CLIP
    image encoder on ``PSEUDO_LABEL.TOPK`` crops per image (random weights)."""
    from zsseg_d2.methods.cel.pseudo_labels.runner import build_proposal_model
    from zsseg_d2.modeling.clip import ClipCropClassifier

    row = PaperRow("cel", config)
    cfg = load_row(row, folder, "cuda", ["PSEUDO_LABEL.TOPK", 16])
    model = build_proposal_model(cfg)
    classifier = ClipCropClassifier.from_config(cfg, "cuda")
    images = cfg.PSEUDO_LABEL.IMS_PER_BATCH
    size = (cfg.INPUT.MIN_SIZE_TEST, round(cfg.INPUT.MIN_SIZE_TEST * 4 / 3))
    inputs = [{"image": x["image"], "height": size[0], "width": size[1]}
              for x in synthetic_batch(cfg, model, images, size)]  # fmt: skip
    crops = torch.randn(cfg.PSEUDO_LABEL.TOPK * images, 3, *classifier.size, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    seconds = []
    with torch.no_grad():
        for _ in range(iters):
            torch.cuda.synchronize()
            start = time.perf_counter()
            model.predict_mask_probs(inputs)
            for chunk in crops.split(classifier.batch_size):
                classifier.clip_model.encode_image(chunk, normalize=True)
            torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30
    return {
        "s_per_batch": round(statistics.median(seconds[2:] or seconds), 4),
        "images_per_batch": images,
        "crops_per_image": cfg.PSEUDO_LABEL.TOPK,
        "clip": cfg.MODEL.CLIP.MODEL_NAME,
        "peak_gpu_gb": round(peak, 2),
        "of_80gb": f"{100 * peak / CARD_GB:.0f}%",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--only", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--cpu-size", type=int, default=64)
    parser.add_argument("--pseudo", action="store_true", help="also CEL's pseudo-label pass (CUDA)")
    args = parser.parse_args()
    logging.getLogger("detectron2").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        stand_in_class_lists(folder)
        os.environ.setdefault("DETECTRON2_DATASETS", str(folder))
        for row in paper_rows(args.only):
            result = {"method": row.method, "row": row.name}
            try:
                if args.device == "cuda":
                    result |= gpu_run(row, folder, args.iters)
                else:
                    result |= {"losses": cpu_forward(row, folder, args.cpu_size)}
            except torch.cuda.OutOfMemoryError:
                result["error"] = "out of GPU memory"
            finally:
                if args.device == "cuda":
                    torch.cuda.empty_cache()
            print(json.dumps(result), flush=True)
        if args.pseudo and args.device == "cuda":
            print(
                json.dumps(
                    {"method": "cel", "row": "pseudo-label pass"}
                    | pseudo_label_pass(folder, args.iters)
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
