"""Binary ZLSS (Zhang & Khriyenko, Sec. III-B, Table I): one target class against background.

A pixel is the target class when its relation score r >= 0.5; images are paired with one target
class each, and the score is the IoU of that class accumulated over its images.
"""

from __future__ import annotations

import torch


def binary_prediction(scores: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Relation scores r (any shape) -> bool mask of the target class (r >= ``threshold``)."""
    return scores >= threshold


def binary_intersection_union(
    predicted: torch.Tensor, labels: torch.Tensor, class_id: int, ignore_value: int = 255
) -> tuple[int, int]:
    """Pixels in (prediction ∩ ground truth) and (prediction ∪ ground truth) of ``class_id``, over
    the labelled pixels of one image; sums over a class's images give its binary IoU."""
    counted = labels != ignore_value
    truth = (labels == class_id) & counted
    predicted = predicted & counted
    return int((predicted & truth).sum()), int((predicted | truth).sum())
