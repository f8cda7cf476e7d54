"""Training objectives. CEL: Hungarian matching, mask losses and the class-enhancement losses;
SZN: pixelwise cosine / MSE embedding losses and the seenmask cross-entropy."""
from .cel_criterion import CELCriterion, LossDivisors
from .matcher import HungarianMatcher
from .szn_losses import pixelwise_cosine_loss, pixelwise_mse_loss, seenmask_bce_loss

__all__ = [
    "CELCriterion",
    "HungarianMatcher",
    "LossDivisors",
    "pixelwise_cosine_loss",
    "pixelwise_mse_loss",
    "seenmask_bce_loss",
]
