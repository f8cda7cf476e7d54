"""What every method shares: the segmentor base class and its contract (``segmentor``), the
pixel-wise backbones (``backbone/``, registered on import), the semantic spaces class names are
embedded in (``semantic/``: CLIP text, embedding files, PCA), CLIP's image tower on mask crops
(``clip/``: pseudo labels, ensemble) and MMD (``mmd``). Each method's own parts live in
``zsseg_d2/methods/<method>/``.
"""

from . import backbone  # noqa: F401  (registration)
from .segmentor import ClassSplit, ZeroShotSegmentor, class_split

__all__ = ["ClassSplit", "ZeroShotSegmentor", "class_split"]
