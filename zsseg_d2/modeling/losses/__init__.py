"""Training objectives. CEL: Hungarian matching, mask losses and the class-enhancement losses;
SZN: pixelwise cosine / MSE embedding losses and the seenmask cross-entropy; generative methods:
MMD and ZS-MMD (``mmd``)."""

from .cel_criterion import CELCriterion, LossDivisors
from .matcher import HungarianMatcher
from .mmd import gaussian_kernel_mixture, mmd_squared, zs_mmd_loss
from .szn_losses import pixelwise_cosine_loss, pixelwise_mse_loss, seenmask_bce_loss

__all__ = [
    "CELCriterion",
    "HungarianMatcher",
    "LossDivisors",
    "gaussian_kernel_mixture",
    "mmd_squared",
    "pixelwise_cosine_loss",
    "pixelwise_mse_loss",
    "seenmask_bce_loss",
    "zs_mmd_loss",
]
