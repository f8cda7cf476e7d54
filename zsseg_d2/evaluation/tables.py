"""Plain-text result tables: GZS3 (one row per data set), the older papers' metrics per split,
and open-vocabulary transfer."""

from __future__ import annotations

import math
from collections.abc import Mapping

# Column label -> registered data set, in the paper's order (Table 3).
TRANSFER_SETS = {
    "A-847": "ade20k_847_val",
    "PC-459": "pascal_context_459_val",
    "A-150": "ade20k_150_val",
    "PC-59": "pascal_context_59_val",
    "VOC-20": "voc20_val",
}
GZS3_COLUMNS = ("mIoU(S)", "mIoU(U)", "hIoU", "mIoU", "fwIoU", "mACC", "pACC")
SPLITS = {"all": "", "seen": "(S)", "unseen": "(U)"}
SPLIT_COLUMNS = ("pACC", "mACC", "mIoU", "fwIoU")  # PA, MA, mIoU, fwIoU of FCN / SZN / ZS3Net


def _metrics(result: Mapping) -> Mapping:
    """Accept an evaluator's {"sem_seg": {...}} or the inner dict."""
    return result.get("sem_seg", result)


def _cell(value) -> str:
    return (
        "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"
    )


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths]] + rows
    return "\n".join(" | ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def format_gzs3_table(results: Mapping[str, Mapping]) -> str:
    """One row per data set: mIoU(S), mIoU(U), hIoU, mIoU, fwIoU, mACC, pACC ("-" where not
    reported)."""
    rows = [
        [name] + [_cell(_metrics(r).get(c)) for c in GZS3_COLUMNS] for name, r in results.items()
    ]
    return _render(["dataset", *GZS3_COLUMNS], rows)


def format_split_table(results: Mapping[str, Mapping]) -> str:
    """One row per data set and split (all / seen / unseen, those reported): pACC, mACC, mIoU, fwIoU."""
    rows = []
    for name, result in results.items():
        metrics = _metrics(result)
        for split, suffix in SPLITS.items():
            if any(c + suffix in metrics for c in SPLIT_COLUMNS):
                rows.append([name, split] + [_cell(metrics.get(c + suffix)) for c in SPLIT_COLUMNS])
    return _render(["dataset", "classes", *SPLIT_COLUMNS], rows)


def format_transfer_table(results: Mapping[str, Mapping], row_name: str = "mIoU") -> str:
    """The open-vocabulary transfer table: mIoU of A-847, PC-459, A-150, PC-59, VOC-20, for the
    data sets present in ``results`` (keyed by registered name), in that order."""
    present = [(label, name) for label, name in TRANSFER_SETS.items() if name in results]
    if not present:
        raise ValueError(
            f"no transfer data set in the results (expected some of {list(TRANSFER_SETS.values())})"
        )
    header = ["model"] + [label for label, _ in present]
    row = [row_name] + [_cell(_metrics(results[name]).get("mIoU")) for _, name in present]
    return _render(header, [row])
