"""Feature generators of the generative zero-shot methods (pixel features from class embeddings)."""

from .gmmn import GMMNGenerator

__all__ = ["GMMNGenerator"]
