"""Training objectives. CEL: Hungarian matching, mask losses and the class-enhancement losses."""
from .cel_criterion import CELCriterion, LossDivisors
from .matcher import HungarianMatcher

__all__ = ["CELCriterion", "HungarianMatcher", "LossDivisors"]
