"""Training objectives. CEL: Hungarian matching, mask losses and the class-enhancement losses.
Generative methods: MMD and ZS-MMD (``mmd``)."""
from .cel_criterion import CELCriterion, LossDivisors
from .matcher import HungarianMatcher
from .mmd import gaussian_kernel_mixture, mmd_squared, zs_mmd_loss

__all__ = ["CELCriterion", "HungarianMatcher", "LossDivisors", "gaussian_kernel_mixture", "mmd_squared", "zs_mmd_loss"]
