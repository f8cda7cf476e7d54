"""SIGN's objectives (Cheng et al. 2021, Sec. 3.2): the KL of the latent (eq. 2), the per-class MMD
(eq. 5-6) with the Gaussian kernel k(f, f') = exp(-||f - f'||^2 / 2), the adversarial loss (eq. 7)
written for one backward pass through a gradient-reversal layer, and the weighted prediction CE
(eq. 3, 9, and the self-training weights of eq. 17).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...modeling.mmd import mmd_squared


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) (eq. 2), averaged over all latent elements:
    mean of -1/2 (1 + log sigma^2 - mu^2 - sigma^2)."""
    return -0.5 * torch.mean(1 + log_var - mean.pow(2) - log_var.exp())


SIGN_BANDWIDTHS = (1.0,)  # k(f, f') = exp(-||f - f'||^2 / 2): one Gaussian of bandwidth s = 1


def per_class_mmd(
    real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor, max_per_class: int = 512
) -> torch.Tensor:
    """Eq. 5: the sum over the classes present in ``labels`` [N] of eq. 6 between the real and
    synthetic features [N, D] of that class (at most ``max_per_class`` random pixels each). Eq. 6's
    kernel sums are divided by their numbers of pairs (the usual MMD^2 estimate, ``mmd_squared``)."""
    total = real.new_zeros(())
    for class_id in labels.unique().tolist():
        index = torch.nonzero(labels == class_id).squeeze(1)
        if index.numel() > max_per_class:
            index = index[torch.randperm(index.numel(), device=index.device)[:max_per_class]]
        total = total + mmd_squared(real[index], fake[index], SIGN_BANDWIDTHS)
    return total


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """Identity forward; the gradient flowing back is negated."""
    return _GradientReversal.apply(x)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-L_adv (eq. 7) = BCE(D(f), 1) + BCE(D(f^), 0), means over pixels."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def adversarial_loss(
    discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> torch.Tensor:
    """The min-max of eq. 8 in one loss: D descends -L_adv (i.e. maximises L_adv); the synthetic
    features pass a gradient-reversal layer, so G descends +L_adv (minimises it). ``real`` is
    detached: the encoder and SIM are not trained by eq. 8."""
    return discriminator_loss(discriminator(real.detach()), discriminator(reverse_gradient(fake)))


def weighted_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    ignore_value: int = 255,
) -> torch.Tensor:
    """Eq. 3 / 9: CE per pixel (``logits`` [B, C, H, W], ``labels`` [B, H, W]) times ``weights``
    (1 by default), averaged over the labelled pixels; 0 when none is labelled."""
    valid = labels != ignore_value
    if not valid.any():
        return logits.sum() * 0.0
    per_pixel = F.cross_entropy(logits, labels.clamp(max=logits.shape[1] - 1), reduction="none")
    w = valid.float() if weights is None else weights * valid
    return (per_pixel * w).sum() / valid.sum()
