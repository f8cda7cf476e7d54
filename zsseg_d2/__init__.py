"""zsseg_d2: zero-shot (GZS3) and open-vocabulary semantic segmentation on Detectron2.

Importing the package registers its parts: the data sets (``zsseg_d2.data``), and the meta
architecture, heads and decoders (``zsseg_d2.modeling``) in Detectron2's registries.
"""

from . import data, modeling  # noqa: F401  (registration on import)
from .config import add_zsseg_config

__all__ = ["add_zsseg_config"]
