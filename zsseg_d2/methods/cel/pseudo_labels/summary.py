"""Quality report of a pseudo-label pass: counts, failures, precision/recall against ground truth.

Precision and recall compare each image's pseudo labels with the unseen classes present in its
ground-truth label file. They are reported only when the annotation has unseen pixels at all; a
seen-only annotation (unseen pixels ignored) has nothing to compare with, and they are null.
"""

from __future__ import annotations

from collections.abc import Sequence


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _with_quality(counts: dict[str, int]) -> dict:
    """Counts plus precision (None when nothing was labelled) and recall (None without ground truth)."""
    return {
        **counts,
        "precision": _ratio(counts["true_positive"], counts["pseudo"]),
        "recall": _ratio(counts["true_positive"], counts["gt"]),
    }


def summarize(
    dataset: str, threshold: float, unseen_classes: Sequence[str], records: Sequence[dict]
) -> dict:
    """The summary of ``records`` (one per image of the pass; deterministic, no timings)."""
    done = [r for r in records if r["status"] == "ok"]
    counts: dict[str, dict[str, int]] = {
        name: {"pseudo": 0, "gt": 0, "true_positive": 0} for name in unseen_classes
    }
    with_gt = [r for r in done if r.get("gt_unseen") is not None]
    for record in done:
        for name in record["labels"]:
            counts[name]["pseudo"] += 1
    for record in with_gt:
        for name in record["gt_unseen"]:
            counts[name]["gt"] += 1
            counts[name]["true_positive"] += name in record["labels"]
    has_gt = any(c["gt"] for c in counts.values())
    per_class = {name: _with_quality(c) if has_gt else c for name, c in counts.items()}
    total = _with_quality(
        {key: sum(c[key] for c in counts.values()) for key in ("pseudo", "gt", "true_positive")}
    )
    failures: list[dict] = [
        {"image_id": r["image_id"], "file_name": r.get("file_name"), "error": r["error"]}
        for r in records
        if r["status"] == "failed"
    ]
    return {
        "dataset": dataset,
        "threshold": threshold,
        "images": len(records),
        "images_done": len(done),
        "images_skipped_no_unlabeled_pixels": sum(r["status"] == "skipped" for r in records),
        "images_failed": len(failures),
        "images_with_labels": sum(bool(r["labels"]) for r in done),
        "labels_per_image": round(total["pseudo"] / len(done), 4) if done else 0.0,
        "proposals_per_image": round(sum(r["num_proposals"] for r in done) / len(done), 4)
        if done
        else 0.0,
        "per_class": per_class,
        "precision": total["precision"] if has_gt else None,
        "recall": total["recall"] if has_gt else None,
        "failures": failures,
    }


def format_summary(summary: dict) -> str:
    """A few readable lines of ``summary``."""
    lines = [
        f"Pseudo labels for {summary['dataset']} (threshold {summary['threshold']}): "
        f"{summary['images_done']} images done, {summary['images_skipped_no_unlabeled_pixels']} skipped "
        f"(no unlabeled pixels), {summary['images_failed']} failed; {summary['labels_per_image']} labels "
        f"and {summary['proposals_per_image']} proposals per image",
    ]
    if summary["recall"] is not None:
        lines.append(
            f"against ground truth: precision {summary['precision']}, recall {summary['recall']}"
        )
    else:
        lines.append(
            "no ground-truth unseen labels in the annotation: precision/recall not available"
        )
    for name, c in summary["per_class"].items():
        quality = f", precision {c['precision']}, recall {c['recall']}" if "precision" in c else ""
        lines.append(f"  {name}: {c['pseudo']} images labelled, {c['gt']} in ground truth{quality}")
    for failure in summary["failures"][:20]:
        lines.append(f"  FAILED {failure['image_id']} ({failure['file_name']}): {failure['error']}")
    if len(summary["failures"]) > 20:
        lines.append(f"  ... {len(summary['failures']) - 20} more failures in the summary file")
    return "\n".join(lines)
