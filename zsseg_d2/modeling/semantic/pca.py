"""Class vectors projected to j dimensions by principal component analysis (the SZN thesis,
section 5.3 and eq. 12: word2vec reduced from 300 to j = 20 dimensions).

The thesis fits PCA on the whole word2vec vocabulary (3 million words). Only class vectors are at
hand here, so PCA is fitted on the vectors of the configured data sets' class names (seen and
unseen: a class name's vector is side information every zero-shot method has at training time).
n names span at most n - 1 centred dimensions, so j must be below the number of names (VOC-21
allows the thesis's j = 20); ``MODEL.SEMANTIC.PCA_DIM`` 0 keeps the full vectors (j = 300).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable

import torch

from .names import validate_class_names
from .record import vocabulary_entry


class PCAProjectedSource:
    """Wraps a semantic source: ``(v - mean) @ W_j`` with W_j the first j principal axes of the
    vectors of ``fit_names``, L2-normalised when ``normalize``."""

    def __init__(
        self,
        source: Callable[[Sequence[str]], torch.Tensor],
        fit_names: Sequence[str],
        dim: int,
        normalize: bool = True,
    ):
        names = validate_class_names(list(dict.fromkeys(fit_names)), "the names PCA is fitted on")
        if not 0 < dim < len(names):
            raise ValueError(
                f"MODEL.SEMANTIC.PCA_DIM {dim}: PCA fitted on {len(names)} class names gives at most "
                f"{len(names) - 1} dimensions; choose 1..{len(names) - 1}, or 0 for no PCA"
            )
        self.source = source
        self.normalize = normalize
        self.fit_names = names
        vectors = source(names).double()
        self.mean = vectors.mean(dim=0)
        _, singular_values, axes = torch.linalg.svd(vectors - self.mean, full_matrices=False)
        self.components = axes[:dim]  # [j, D], rows = principal axes by decreasing variance
        variance = singular_values**2
        self.explained_variance = float(variance[:dim].sum() / variance.sum())  # eq. 12

    @property
    def dim(self) -> int:
        return self.components.shape[0]

    def settings_record(self) -> dict[str, dict[str, str]]:
        """The wrapped source's record plus the projection (its dimension and fitted names)."""
        fit = vocabulary_entry(self.fit_names)
        return {
            **self.source.settings_record(),
            "MODEL.SEMANTIC.PCA_DIM": {
                "value": f"{self.dim} (fitted on {fit['value']})",
                "identity": f"{self.dim} {fit['identity']}",
            },
        }

    def __call__(self, class_names: Sequence[str]) -> torch.Tensor:
        projected = ((self.source(class_names).double() - self.mean) @ self.components.T).float()
        return torch.nn.functional.normalize(projected, dim=-1) if self.normalize else projected
