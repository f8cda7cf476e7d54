"""Pixelwise losses of the Seenmask Zero-shot Network (Doshi 2018, section 5).

Each is a mean over the labelled pixels (label != ``ignore``) of the batch: the thesis writes
eq. 4 and 6 as means over the image and eq. 3 as a sum; a mean keeps the scale independent of the
crop size (Adam, the thesis's optimizer, is insensitive to a constant factor anyway).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _labelled(
    embeddings: torch.Tensor, labels: torch.Tensor, ignore: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[P, j] embeddings and [P] labels of the labelled pixels of [N, j, H, W] / [N, H, W]."""
    valid = labels != ignore
    return embeddings.permute(0, 2, 3, 1)[valid], labels[valid]


def pixelwise_cosine_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, class_vectors: torch.Tensor, ignore: int = 255
) -> torch.Tensor:
    """Eq. 6: mean over labelled pixels of 1 - sim(v_ij, s_ij), with s_ij the semantic vector of
    the pixel's class (rows of ``class_vectors`` [C, j]) and sim the cosine of eq. 5."""
    v, y = _labelled(embeddings, labels, ignore)
    if y.numel() == 0:
        return embeddings.sum() * 0.0
    return (1 - F.cosine_similarity(v, class_vectors[y], dim=1)).mean()


def pixelwise_mse_loss(
    embeddings: torch.Tensor, labels: torch.Tensor, class_vectors: torch.Tensor, ignore: int = 255
) -> torch.Tensor:
    """Eq. 4: mean over labelled pixels of ||v_ij - s_ij||^2, the semantic vectors divided by the
    largest norm among them so that ||s|| <= 1 (as the thesis does)."""
    v, y = _labelled(embeddings, labels, ignore)
    if y.numel() == 0:
        return embeddings.sum() * 0.0
    targets = class_vectors / class_vectors.norm(dim=1).max()
    return ((v - targets[y]) ** 2).sum(dim=1).mean()


def seenmask_bce_loss(logits: torch.Tensor, seen: torch.Tensor, ignore: int = 255) -> torch.Tensor:
    """Eq. 3: binary cross-entropy between the predicted seenmask M^ = softmax of the 2-channel
    head [N, 2, H, W] (channel 1 = seen) and the true seenmask ``seen`` [N, H, W] (1 train_seen,
    0 train_unseen, ``ignore`` elsewhere); mean over labelled pixels."""
    if (seen != ignore).sum() == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, seen, ignore_index=ignore)  # 2-way CE = BCE on softmax channel 1
