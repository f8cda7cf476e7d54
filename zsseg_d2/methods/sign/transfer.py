"""The pseudo ground truth y^ of SIGN's Transfer Learning Step (Sec. 3.2, eq. 9).

The paper feeds "a random label including unseen classes" to M and G and does not say how it is
drawn. zsseg_d2 keeps the layout of the real label map and gives every labelled region (all pixels
of one class in one image) a class drawn uniformly from all classes, seen and unseen, so the
synthetic features of unseen classes come in realistic shapes and sizes.
"""

from __future__ import annotations

import torch


def random_relabel(
    labels: torch.Tensor,
    num_classes: int,
    ignore_value: int = 255,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``labels`` [B, H, W] with each image's classes replaced by random ones (ignored stays)."""
    relabeled = labels.clone()
    for b in range(labels.shape[0]):
        for class_id in labels[b].unique().tolist():
            if class_id == ignore_value:
                continue
            new_class = torch.randint(num_classes, (1,), generator=generator).item()
            relabeled[b][labels[b] == class_id] = new_class
    return relabeled
