"""Segmentation metrics from one confusion matrix (rows: ground truth, columns: prediction)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int) -> np.ndarray:
    """num_classes x num_classes counts of (gt, pred) pairs over pixels whose gt is not ignored,
    by one ``np.bincount``. ``pred`` must lie in [0, num_classes)."""
    valid = gt != ignore_label
    index = gt[valid].astype(np.int64) * num_classes + pred[valid]
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def harmonic_iou(seen: float, unseen: float) -> float:
    """hIoU = 2SU / (S + U); 0 (not nan) when either side is 0 or undefined."""
    if not (seen > 0 and unseen > 0):
        return 0.0
    return 2 * seen * unseen / (seen + unseen)


def segmentation_metrics(
    conf: np.ndarray, class_names: Sequence[str], unseen_ids: Sequence[int] = ()
) -> "OrderedDict[str, float]":
    """mIoU, and with unseen classes mIoU(S), mIoU(U), hIoU; mACC, pACC and IoU-<class>, in %.

    Classes absent from the ground truth (zero row) have IoU nan and are left out of every mean;
    a mean over no class is nan (hIoU is then 0).
    """
    conf = conf.astype(np.float64)
    tp = np.diag(conf)
    gt_pixels, pred_pixels = conf.sum(1), conf.sum(0)
    present = gt_pixels > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(present, tp / (gt_pixels + pred_pixels - tp), np.nan) * 100
        acc = np.where(present, tp / gt_pixels, np.nan) * 100
    unseen = np.zeros(len(class_names), dtype=bool)
    unseen[list(unseen_ids)] = True

    def mean(values: np.ndarray) -> float:
        return float(np.nanmean(values)) if np.any(~np.isnan(values)) else float("nan")

    results = OrderedDict(mIoU=mean(iou))
    if unseen.any():
        results["mIoU(S)"] = mean(iou[~unseen])
        results["mIoU(U)"] = mean(iou[unseen])
        results["hIoU"] = harmonic_iou(results["mIoU(S)"], results["mIoU(U)"])
    results["mACC"] = mean(acc)
    results["pACC"] = float(tp.sum() / conf.sum() * 100) if conf.sum() > 0 else float("nan")
    for name, value in zip(class_names, iou):
        results[f"IoU-{name}"] = float(value)
    return results
