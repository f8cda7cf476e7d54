"""Segmentation metrics from one confusion matrix (rows: ground truth, columns: prediction).

The rules are Detectron2 v0.6's ``SemSegEvaluator`` (the version Mask2Former, zsseg.baseline and
the open-vocabulary papers report with) and zsseg.baseline's generalized evaluator for the splits:

- IoU_i = n_ii / (t_i + p_i - n_ii) with t_i the ground-truth and p_i the predicted pixels of
  class i. mIoU sums the IoUs of the classes with ground truth and divides by the number of classes
  with ground truth OR predictions: a class predicted but absent from the ground truth counts 0.
- mACC: mean of n_ii / t_i over the classes with ground truth. pACC: sum n_ii / sum t_i.
- fwIoU: FCN's frequency-weighted IoU, (sum_k t_k)^-1 sum_i t_i IoU_i (Long et al. 2015). The SZN
  thesis's wIoU (its eq. 10) carries an extra 1/n_cl factor; we use FCN's, as Detectron2 does.

Seen (S) / unseen (U) splits restrict each sum to the split's classes, rows and columns alike
(zsseg.baseline's rule): pACC(S) = sum_{i in S} n_ii / sum_{i in S} t_i, i.e. over the pixels whose
ground truth is seen, with predictions over the full label space (a seen pixel predicted as an
unseen class is wrong); fwIoU(S) weights by t_i / sum_{k in S} t_k; mIoU(S) and mACC(S) average over
the split's classes by the rules above. hIoU = 2 mIoU(S) mIoU(U) / (mIoU(S) + mIoU(U)).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

LABEL_SPACES = ("all", "unseen")
SUMMARY_METRICS = ("mIoU", "fwIoU", "mACC", "pACC")


def confusion_matrix(
    gt: np.ndarray, pred: np.ndarray, num_classes: int, ignore_label: int
) -> np.ndarray:
    """num_classes x num_classes counts of (gt, pred) pairs over pixels whose gt is not ignored,
    by one ``np.bincount``. ``pred`` must lie in [0, num_classes)."""
    valid = gt != ignore_label
    index = gt[valid].astype(np.int64) * num_classes + pred[valid]
    counts = np.bincount(index, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def harmonic_iou(seen: float, unseen: float) -> float:
    """hIoU = 2SU / (S + U); 0 (not nan or a division error) when either side is 0 or undefined."""
    if not (seen > 0 and unseen > 0):
        return 0.0
    return 2 * seen * unseen / (seen + unseen)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator * 100) if denominator > 0 else float("nan")


def split_metrics(conf: np.ndarray, classes: np.ndarray) -> OrderedDict[str, float]:
    """mIoU, fwIoU, mACC and pACC in % over the classes selected by the boolean mask ``classes``
    (module docstring); nan when no selected class has ground truth (or, for mIoU, predictions)."""
    conf = conf.astype(np.float64)
    tp, gt_pixels, pred_pixels = np.diag(conf), conf.sum(1), conf.sum(0)
    has_gt = classes & (gt_pixels > 0)
    counted = classes & (gt_pixels + pred_pixels > 0)
    iou = tp[has_gt] / (gt_pixels + pred_pixels - tp)[has_gt]
    return OrderedDict(
        mIoU=_ratio(iou.sum(), counted.sum()),
        fwIoU=_ratio((iou * gt_pixels[has_gt]).sum(), gt_pixels[has_gt].sum()),
        mACC=_ratio((tp[has_gt] / gt_pixels[has_gt]).sum(), has_gt.sum()),
        pACC=_ratio(tp[has_gt].sum(), gt_pixels[has_gt].sum()),
    )


def per_class_iou(conf: np.ndarray) -> np.ndarray:
    """IoU in % of each class; nan for a class absent from the ground truth."""
    conf = conf.astype(np.float64)
    tp, gt_pixels = np.diag(conf), conf.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gt_pixels > 0, tp / (gt_pixels + conf.sum(0) - tp), np.nan) * 100


def segmentation_metrics(
    conf: np.ndarray,
    class_names: Sequence[str],
    unseen_ids: Sequence[int] = (),
    label_space: str = "all",
) -> OrderedDict[str, float]:
    """Metrics in % of one confusion matrix: mIoU, fwIoU, mACC, pACC over all classes; with unseen
    classes the same with suffix "(S)" and "(U)" and hIoU; then IoU-<class>.

    ``label_space`` "unseen" (ZLSS) is for a matrix whose ground truth and predictions are unseen
    classes only: the seen split and hIoU are then not reported.
    """
    if label_space not in LABEL_SPACES:
        raise ValueError(f"label space {label_space!r} is not one of {LABEL_SPACES}")
    unseen = np.zeros(len(class_names), dtype=bool)
    unseen[list(unseen_ids)] = True
    results = split_metrics(conf, np.ones_like(unseen))
    if unseen.any():
        splits = {"U": unseen} if label_space == "unseen" else {"S": ~unseen, "U": unseen}
        for suffix, classes in splits.items():
            for name, value in split_metrics(conf, classes).items():
                results[f"{name}({suffix})"] = value
        if label_space == "all":
            results["hIoU"] = harmonic_iou(results["mIoU(S)"], results["mIoU(U)"])
    for name, value in zip(class_names, per_class_iou(conf)):
        results[f"IoU-{name}"] = float(value)
    return results
