"""The offline pseudo-label pass (section 3.4, eq. 9-10): shards, resume, merge.

A data set's images are sorted by image id and dealt to ``num_shards`` shards (image k goes to
shard k mod S). A shard appends one record per image to its own JSON Lines file, flushed after
every batch; rerunning it skips the images it has finished (failed images are retried) and the
merge builds the final file from the records alone, sorted by image id, so the final file is the
same byte for byte however the work was split, interrupted and resumed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2.data import transforms as T
from tqdm import tqdm

from ....modeling.clip import ClipCropClassifier
from ....modeling.clip.scoring import labels_above, rounded_scores
from ....modeling.semantic import build_semantic_source
from .batching import CropBatcher
from .loading import PassImages, build_loader, resized_size
from .proposals import select_proposals
from .records import PassLayout, RecordFile, check_settings, final_document, write_json_atomic
from .summary import format_summary, summarize

logger = logging.getLogger(__name__)
_LOG_PERIOD_S = 60.0


class IncompleteShardsError(RuntimeError):
    """Some shard has not recorded all of its images yet."""


def pass_dataset(dataset: str) -> tuple[Metadata, list[dict]]:
    """The data set's metadata and its dicts sorted by image id (ids must be unique)."""
    metadata = MetadataCatalog.get(dataset)
    if not list(getattr(metadata, "unseen_classes", [])):
        raise ValueError(
            f"data set {dataset!r} has no unseen classes (metadata 'unseen_classes'); pseudo labels "
            f"are unseen-class labels: pick a data set with a seen/unseen split (--dataset)"
        )
    dicts = sorted(DatasetCatalog.get(dataset), key=lambda d: d["image_id"])
    ids = [d["image_id"] for d in dicts]
    duplicates = sorted({i for a, i in zip(ids, ids[1:]) if a == i})
    if duplicates:
        raise ValueError(
            f"data set {dataset!r} has duplicate image ids {duplicates[:5]}; ids must be unique"
        )
    missing = [d["image_id"] for d in dicts if "height" not in d or "width" not in d]
    if missing:
        raise ValueError(f"data set {dataset!r} dicts lack height/width (e.g. {missing[:3]})")
    return metadata, dicts


def pass_settings(cfg: CfgNode, dataset: str, metadata: Metadata) -> dict:
    """What the records depend on; a rerun must use the same (batch sizes and devices may change)."""
    model_cfg = cfg.MODEL.clone()
    model_cfg.defrost()
    model_cfg.DEVICE, model_cfg.CLIP.CACHE_DIR, model_cfg.CLIP.OFFLINE = "", "", False
    weights = cfg.MODEL.WEIGHTS
    pl = cfg.PSEUDO_LABEL
    return {
        "dataset": dataset,
        "unseen_classes": list(metadata.unseen_classes),
        "model_weights": weights,
        "model_weights_bytes": os.path.getsize(weights)
        if weights and os.path.isfile(weights)
        else None,
        "model_config_sha256": hashlib.sha256(model_cfg.dump().encode()).hexdigest(),
        "input": [cfg.INPUT.FORMAT, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST],
        "pseudo_label": {
            key: pl[key]
            for key in (
                "THRESHOLD",
                "MASK_THRESHOLD",
                "MIN_AREA",
                "TOPK",
                "MIN_QUALITY",
                "EXPAND_RATIO",
                "MASK_FILL",
                "ALL_IMAGES",
            )
        },
    }


def build_proposal_model(cfg: CfgNode) -> torch.nn.Module:
    """The first-stage model (trained on seen classes) from ``MODEL.WEIGHTS``, in eval mode."""
    from detectron2.modeling import build_model

    from ....engine.checkpoint import load_trained_weights

    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        load_trained_weights(model, cfg.MODEL.WEIGHTS)
    else:
        logger.warning("MODEL.WEIGHTS is empty: proposals come from a randomly initialised model")
    return model.eval()


def _check_shard(num_shards: int, shard_id: int) -> None:
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise ValueError(
            f"--shard-id must be in [0, --num-shards), got shard {shard_id} of {num_shards}"
        )


def _ok_record(item: dict, scores: torch.Tensor, unseen: Sequence[str], threshold: float) -> dict:
    values = rounded_scores(scores)
    return {
        "image_id": item["image_id"],
        "file_name": item["file_name"],
        "status": "ok",
        "labels": labels_above(values, unseen, threshold),
        "scores": dict(zip(unseen, values)),
        "num_proposals": item["num_proposals"],
        "gt_unseen": item["gt_unseen"],
    }


def _other_record(item: dict) -> dict:
    keys = ("image_id", "file_name", "status", "error")
    return {key: item[key] for key in keys if key in item}


class _Progress:
    """tqdm bar (images/s, ETA) plus a periodic log line for the log file."""

    def __init__(self, total: int, enabled: bool):
        self.bar = tqdm(
            total=total, unit="img", dynamic_ncols=True, disable=not enabled, desc="pseudo labels"
        )
        self.total, self.done, self.start, self.last_log = (
            total,
            0,
            time.perf_counter(),
            time.perf_counter(),
        )

    def update(self, images: int, crops: int) -> None:
        self.done += images
        self.bar.update(images)
        now = time.perf_counter()
        rate = self.done / max(now - self.start, 1e-9)
        self.bar.set_postfix(
            crops_per_s=f"{crops / max(now - self.start, 1e-9):.1f}", refresh=False
        )
        if now - self.last_log > _LOG_PERIOD_S or self.done == self.total:
            self.last_log = now
            eta = (self.total - self.done) / max(rate, 1e-9)
            logger.info(
                f"{self.done}/{self.total} images, {rate:.2f} images/s, {crops} crops, ETA {eta / 60:.1f} min"
            )

    def close(self) -> None:
        self.bar.close()


def _process(
    cfg: CfgNode,
    loader: Iterable[list[dict]],
    proposal_model: torch.nn.Module,
    batcher: CropBatcher,
    record_file: RecordFile,
    unseen: Sequence[str],
    progress: _Progress,
) -> None:
    pl = cfg.PSEUDO_LABEL
    for batch in loader:
        records = [_other_record(item) for item in batch if item["status"] != "ok"]
        items = [item for item in batch if item["status"] == "ok"]
        mask_probs = (
            proposal_model.predict_mask_probs([item["model_input"] for item in items])
            if items
            else []
        )
        for item, probs in zip(items, mask_probs):
            masks = select_proposals(probs, pl.MASK_THRESHOLD, pl.MIN_AREA, pl.TOPK, pl.MIN_QUALITY)
            crops = batcher.classifier.crops(item.pop("original"), masks)
            del item["model_input"]  # the queue keeps only what the record needs
            batcher.add({**item, "num_proposals": len(masks)}, crops)
        records += [
            _ok_record(item, scores, unseen, pl.THRESHOLD) for item, scores in batcher.completed()
        ]
        record_file.append(records)
        progress.update(len(records), batcher.crops_encoded)
    records = [
        _ok_record(item, scores, unseen, pl.THRESHOLD)
        for item, scores in batcher.completed(flush=True)
    ]
    record_file.append(records)
    progress.update(len(records), batcher.crops_encoded)


def run_shard(
    cfg: CfgNode,
    dataset: str,
    output: str | os.PathLike,
    num_shards: int = 1,
    shard_id: int = 0,
    proposal_model: torch.nn.Module | None = None,
    classifier: ClipCropClassifier | None = None,
    show_progress: bool = True,
) -> int:
    """Compute the records of one shard that are not on disk yet; returns how many were computed.

    ``proposal_model`` (anything with ``predict_mask_probs``) and ``classifier`` default to the
    ones ``cfg`` describes.
    """
    _check_shard(num_shards, shard_id)
    layout = PassLayout(Path(output))
    metadata, dicts = pass_dataset(dataset)
    check_settings(layout.settings, pass_settings(cfg, dataset, metadata))
    record_file = RecordFile(layout.shard_file(shard_id, num_shards))
    discarded = record_file.repair()
    if discarded:
        logger.warning(f"discarded a partial last record ({discarded} bytes) of {record_file.path}")
    finished = {i for i, record in record_file.read().items() if record["status"] != "failed"}
    shard = dicts[shard_id::num_shards]
    resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice")
    todo = sorted(
        (d for d in shard if d["image_id"] not in finished),
        key=lambda d: (resized_size(d["height"], d["width"], resize), d["image_id"]),
    )
    logger.info(
        f"shard {shard_id}/{num_shards} of {dataset}: {len(shard)} images, {len(todo)} to do"
    )
    if not todo:
        return 0
    proposal_model = proposal_model if proposal_model is not None else build_proposal_model(cfg)
    classifier = (
        classifier
        if classifier is not None
        else ClipCropClassifier.from_config(cfg, cfg.MODEL.DEVICE)
    )
    unseen = list(metadata.unseen_classes)
    text = build_semantic_source(cfg)
    images = PassImages(todo, metadata, resize, cfg.INPUT.FORMAT, cfg.PSEUDO_LABEL.ALL_IMAGES)
    sizes = [resized_size(d["height"], d["width"], resize) for d in todo]
    loader = build_loader(images, sizes, cfg.PSEUDO_LABEL.IMS_PER_BATCH, cfg.DATALOADER.NUM_WORKERS)
    progress = _Progress(len(todo), show_progress)
    try:
        with torch.no_grad():
            _process(
                cfg,
                loader,
                proposal_model,
                CropBatcher(classifier, text(unseen)),
                record_file,
                unseen,
                progress,
            )
    finally:
        progress.close()
    return len(todo)


def _shard_records(
    layout: PassLayout, dicts: Sequence[dict], num_shards: int
) -> tuple[dict[str, dict], list[str]]:
    """All records of the shards and, per incomplete shard, a line saying what it lacks."""
    records, incomplete = {}, []
    for shard_id in range(num_shards):
        path = layout.shard_file(shard_id, num_shards)
        shard_records = RecordFile(path).read()
        expected = [d["image_id"] for d in dicts[shard_id::num_shards]]
        missing = [i for i in expected if i not in shard_records]
        if missing:
            incomplete.append(
                f"shard {shard_id} ({path}): {len(missing)} of {len(expected)} images missing"
            )
        records.update({i: shard_records[i] for i in expected if i in shard_records})
    return records, incomplete


def merge_shards(
    cfg: CfgNode, dataset: str, output: str | os.PathLike, num_shards: int = 1
) -> dict:
    """Write the final file and the summary from the records of all shards; returns the summary.

    Raises :class:`IncompleteShardsError` naming the shards that still lack images.
    """
    layout = PassLayout(Path(output))
    metadata, dicts = pass_dataset(dataset)
    check_settings(layout.settings, pass_settings(cfg, dataset, metadata))
    records, incomplete = _shard_records(layout, dicts, num_shards)
    if incomplete:
        raise IncompleteShardsError(
            "cannot merge yet: " + "; ".join(incomplete) + ". Run (or rerun) those shards first"
        )
    ordered = [records[d["image_id"]] for d in dicts]
    unseen = list(metadata.unseen_classes)
    threshold = cfg.PSEUDO_LABEL.THRESHOLD
    write_json_atomic(layout.output, final_document(dataset, threshold, unseen, ordered))
    summary = summarize(dataset, threshold, unseen, ordered)
    write_json_atomic(layout.summary, summary)
    logger.info(f"wrote {layout.output} and {layout.summary}\n{format_summary(summary)}")
    return summary


def merge_if_complete(
    cfg: CfgNode, dataset: str, output: str | os.PathLike, num_shards: int = 1
) -> dict | None:
    """:func:`merge_shards` when every shard is complete (what the last shard to finish does)."""
    try:
        return merge_shards(cfg, dataset, output, num_shards)
    except IncompleteShardsError as error:
        logger.info(f"not merging: {error}")
        return None
