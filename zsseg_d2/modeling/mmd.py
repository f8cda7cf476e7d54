"""Maximum mean discrepancy (MMD) losses of generative moment matching networks.

Wang, Farazi, Barnes, "Recursive Training for Zero-Shot Semantic Segmentation", section III-C:
eq. 1 is the squared MMD between generated samples and training samples (the GMMN loss of
ZS3Net), eq. 2 the zero-shot MMD (ZS-MMD) that weighs each high-confidence pseudo-feature by its
classification confidence. The kernel is a Gaussian mixture
``k(x, y) = sum_s exp(-||x - y||^2 / (2 s))`` over the bandwidths ``s``: ZS3Net's public code
uses s in (2, 5, 10, 20, 40, 80); ``s = 1`` alone is SIGN's ``exp(-1/2 ||f - f'||^2)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

ZS3NET_BANDWIDTHS = (2.0, 5.0, 10.0, 20.0, 40.0, 80.0)


def gaussian_kernel_mixture(
    x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float]
) -> torch.Tensor:
    """``[N, M]`` matrix of ``sum_s exp(-||x_i - y_j||^2 / (2 s))`` for ``x`` [N, D], ``y`` [M, D]."""
    if not bandwidths or min(bandwidths) <= 0:
        raise ValueError(f"MMD kernel bandwidths must be positive numbers, got {list(bandwidths)}")
    squared_distances = torch.cdist(x.float(), y.float()).pow(2)
    return sum(torch.exp(-squared_distances / (2.0 * s)) for s in bandwidths)


def _mean_weights(count: int, like: torch.Tensor) -> torch.Tensor:
    return like.new_full((count,), 1.0 / count, dtype=torch.float32)


def mmd_squared(
    x: torch.Tensor,
    y: torch.Tensor,
    bandwidths: Sequence[float] = ZS3NET_BANDWIDTHS,
    x_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Squared MMD between samples ``x`` [N, D] and ``y`` [M, D] (eq. 1).

    ``w^T K(x, x) w - 2 w^T K(x, y) v + v^T K(y, y) v`` with ``v = 1/M`` and ``w = 1/N``, or
    ``w = x_weights / sum(x_weights)`` when weights are given (the form of eq. 2)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"MMD needs two [N, D] sample matrices of the same width, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"MMD needs at least one sample on each side, got {len(x)} and {len(y)}")
    w = (
        _mean_weights(len(x), x)
        if x_weights is None
        else x_weights.float() / x_weights.float().sum()
    )
    v = _mean_weights(len(y), y)
    return (
        w @ gaussian_kernel_mixture(x, x, bandwidths) @ w
        - 2.0 * w @ gaussian_kernel_mixture(x, y, bandwidths) @ v
        + v @ gaussian_kernel_mixture(y, y, bandwidths) @ v
    )


def zs_mmd_loss(
    confident: torch.Tensor,
    confidence: torch.Tensor,
    generated: torch.Tensor,
    bandwidths: Sequence[float] = ZS3NET_BANDWIDTHS,
) -> torch.Tensor:
    """ZS-MMD (eq. 2) between high-confidence pseudo-features ``a`` = ``confident`` [Q, D],
    weighted by their confidences ``c`` [Q], and generated samples ``b`` = ``generated`` [P, D].

    The confident samples and their confidences are pseudo-labels: they are detached, so the
    gradient reaches the generator through ``generated`` only (never the classifier that gave
    ``c``). With no confident sample (Q = 0) or zero total confidence the loss is a zero that
    keeps the graph."""
    if confidence.shape != confident.shape[:1]:
        raise ValueError(
            f"one confidence per confident sample: {tuple(confidence.shape)} vs {tuple(confident.shape)}"
        )
    if (confidence < 0).any():
        raise ValueError("ZS-MMD confidences must be non-negative (softmax probabilities)")
    if len(confident) == 0 or confidence.sum() <= 0:
        return generated.sum() * 0.0
    return mmd_squared(confident.detach(), generated, bandwidths, x_weights=confidence.detach())
