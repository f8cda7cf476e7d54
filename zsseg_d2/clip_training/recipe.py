"""The whole job of ``tools/train_clip.py``: regions of the training split, training, a checkpoint
that loads through ``MODEL.CLIP.PRETRAINED``, and zero-shot crop accuracy on the validation split
measured through the inference path (the checkpoint file, the configured semantic source)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import open_clip
import torch
from detectron2.config import CfgNode

from ..data.vocabulary import class_name_aliases
from ..modeling.clip.loader import create_clip_model
from ..modeling.semantic import PROMPT_TEMPLATES, EmbeddingFileSource, build_semantic_source
from ..utils.file_io import atomic_write
from .evaluation import crop_accuracy, encode_crops
from .regions import RegionSet, build_region_set
from .trainer import ClipTrainingSettings, train_clip

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "clip.pt"
REPORT_NAME = "clip.json"


def _check_splits(cfg: CfgNode) -> tuple[str, str]:
    """(training split, validation split) of ``cfg``; they must differ."""
    if not cfg.DATASETS.TRAIN or not cfg.DATASETS.TEST:
        raise ValueError(
            "CLIP training needs DATASETS.TRAIN (regions to train on) and DATASETS.TEST (to measure)"
        )
    train, val = cfg.DATASETS.TRAIN[0], cfg.DATASETS.TEST[0]
    if train == val:
        raise ValueError(
            f"DATASETS.TRAIN and DATASETS.TEST are both '{train}': CLIP must not train on the validation split"
        )
    return train, val


def eval_config(cfg: CfgNode, checkpoint: Path, text_files: Sequence[str] = ()) -> CfgNode:
    """``cfg`` pointing at ``checkpoint`` (and, in locked-text mode, at the fixed text files)."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.CLIP.PRETRAINED = str(checkpoint)
    if text_files:
        cfg.MODEL.SEMANTIC.SOURCE, cfg.MODEL.SEMANTIC.FILES = "file", list(text_files)
    return cfg


def evaluate_checkpoint(cfg: CfgNode, regions: RegionSet) -> dict[str, float]:
    """Crop accuracy of ``cfg``'s CLIP (``MODEL.CLIP``) with ``cfg``'s class texts (``MODEL.SEMANTIC``)."""
    model, _ = create_clip_model(cfg.MODEL.CLIP.MODEL_NAME, cfg.MODEL.CLIP.PRETRAINED, offline=True)
    text = build_semantic_source(cfg)(regions.class_names)
    return crop_accuracy(encode_crops(model, regions.crops), regions, text)


def train_and_save(
    cfg: CfgNode,
    output: Path,
    settings: ClipTrainingSettings,
    *,
    random_regions: int = 8,
    text_files: Sequence[str] = (),
    progress: bool = True,
) -> dict:
    """Train ``MODEL.CLIP.MODEL_NAME`` from random weights on ``DATASETS.TRAIN[0]``; write
    ``output/clip.pt`` (a state dict) and ``output/clip.json`` (settings, model config, accuracy)."""
    train_split, val_split = _check_splits(cfg)
    name = cfg.MODEL.CLIP.MODEL_NAME
    model, preprocess = create_clip_model(name, "")
    train_regions = build_region_set(
        train_split, preprocess, random_per_image=random_regions, seed=settings.seed
    )
    logger.info(
        f"{len(train_regions)} training regions of {train_split}; per class {train_regions.class_counts()}"
    )
    text_features = (
        _locked_text(text_files, train_regions.class_names, model, (train_split, val_split))
        if text_files
        else None
    )
    templates = PROMPT_TEMPLATES[cfg.MODEL.CLIP.PROMPT_TEMPLATES]
    history = train_clip(
        model,
        train_regions,
        templates,
        open_clip.get_tokenizer(name),
        settings,
        text_features,
        progress,
    )
    checkpoint = output / CHECKPOINT_NAME
    with atomic_write(checkpoint) as f:
        torch.save(model.state_dict(), f)
    val_regions = build_region_set(val_split, preprocess)
    accuracy = evaluate_checkpoint(eval_config(cfg, checkpoint, text_files), val_regions)
    report = {
        "checkpoint": str(checkpoint),
        "model_name": name,
        "model_config": open_clip.get_model_config(name),
        "prompt_templates": cfg.MODEL.CLIP.PROMPT_TEMPLATES,
        "locked_text_files": list(text_files),
        "train_split": train_split,
        "train_regions": len(train_regions),
        "random_regions_per_image": random_regions,
        "settings": dataclasses.asdict(settings),
        "history": history,
        "val_split": val_split,
        "val_accuracy": accuracy,
    }
    with atomic_write(output / REPORT_NAME, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    return report


def _locked_text(
    text_files: Sequence[str],
    class_names: Sequence[str],
    model: torch.nn.Module,
    datasets: Sequence[str],
) -> torch.Tensor:
    """The fixed class vectors of ``class_names``, looked up as ``MODEL.SEMANTIC.SOURCE "file"``
    does (a data set's prompt names through its raw names, e.g. "sky" -> "sky-other")."""
    vectors = EmbeddingFileSource(text_files, aliases=class_name_aliases(datasets))(class_names)
    width = model.visual.output_dim
    if vectors.shape[1] != width:
        raise ValueError(
            f"text embeddings in {list(text_files)} are {vectors.shape[1]}-d but the CLIP model's embedding is "
            f"{width}-d; choose a MODEL.CLIP.MODEL_NAME whose embed_dim is {vectors.shape[1]}"
        )
    return vectors


def format_accuracy(accuracy: dict[str, float], split: str) -> str:
    """Readable lines of :func:`crop_accuracy`'s result."""
    lines = [
        f"Zero-shot crop classification on {split} ({int(accuracy['crops'])} class boxes):",
        f"  seen classes, among all classes:     {accuracy['seen']:6.2f}%  (chance {accuracy['chance_all']:.1f}%)",
        f"  unseen classes, among all classes:   {accuracy['unseen']:6.2f}%",
    ]
    if "unseen_among_unseen" in accuracy:
        lines.append(
            f"  unseen classes, among unseen (eq. 9): {accuracy['unseen_among_unseen']:5.2f}%  "
            f"(chance {accuracy['chance_unseen']:.1f}%)"
        )
    return "\n".join(lines)
