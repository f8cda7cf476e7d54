"""The semantic space of a model, chosen by ``MODEL.SEMANTIC.SOURCE``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from detectron2.config import CfgNode
from detectron2.data import MetadataCatalog

from ...data.vocabulary import class_name_aliases
from .clip_text import TextEmbedder
from .embedding_file import EmbeddingFileSource
from .pca import PCAProjectedSource


class SemanticSource(Protocol):
    """What every semantic source provides (CLIP text, embedding files, PCA of either)."""

    dim: int  # width D of the vectors

    def __call__(self, class_names: Sequence[str]) -> torch.Tensor:
        """``[C, D]`` float32 vectors of ``class_names``."""

    def settings_record(self) -> dict[str, dict[str, str]]:
        """Config key -> {"value": as configured, "identity": what checkpoints compare}."""


SOURCES = ("clip_text", "file")


def build_semantic_source(cfg: CfgNode) -> SemanticSource:
    """A callable mapping class names to ``[C, D]`` vectors: the CLIP text tower of ``MODEL.CLIP``
    ("clip_text") or precomputed vectors from ``MODEL.SEMANTIC.FILES`` ("file"); projected to
    ``MODEL.SEMANTIC.PCA_DIM`` dimensions when that is > 0 (fitted on the data sets' classes)."""
    source = _build_source(cfg)
    if cfg.MODEL.SEMANTIC.PCA_DIM <= 0:
        return source
    fit_names = [
        name
        for d in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST)
        for name in MetadataCatalog.get(d).stuff_classes
    ]
    if not fit_names:
        raise ValueError(
            "MODEL.SEMANTIC.PCA_DIM > 0 needs DATASETS.TRAIN or TEST: PCA is fitted on their class names"
        )
    return PCAProjectedSource(
        source, fit_names, cfg.MODEL.SEMANTIC.PCA_DIM, cfg.MODEL.SEMANTIC.NORMALIZE
    )


def _build_source(cfg: CfgNode) -> SemanticSource:
    source = cfg.MODEL.SEMANTIC.SOURCE
    if source == "clip_text":
        clip = cfg.MODEL.CLIP
        return TextEmbedder(
            clip.MODEL_NAME,
            clip.PRETRAINED,
            clip.PROMPT_TEMPLATES,
            clip.CACHE_DIR or None,
            clip.OFFLINE,
        )
    if source == "file":
        return EmbeddingFileSource(
            cfg.MODEL.SEMANTIC.FILES,
            normalize=cfg.MODEL.SEMANTIC.NORMALIZE,
            aliases=class_name_aliases([*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST]),
        )
    raise ValueError(f"MODEL.SEMANTIC.SOURCE {source!r} unknown; choose one of {SOURCES}")
