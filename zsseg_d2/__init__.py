"""zsseg_d2: zero-shot (GZS3) and open-vocabulary semantic segmentation on Detectron2.

Importing the package registers its parts in Detectron2's registries: the data sets and mappers
(``zsseg_d2.data``), the shared backbones (``zsseg_d2.modeling``) and every method's
meta-architecture and config node (``zsseg_d2.methods``).
"""

from . import data, methods, modeling  # noqa: F401  (registration on import)
from .config import add_zsseg_config

__all__ = ["add_zsseg_config"]
