"""The Seenmask Zero-shot Network (Doshi 2018): the meta-architecture ``SZN`` (``segmentor.py``)
with its variants FCN-S, FCN-JE, SZN and SZN-PS, its options (``config.py``), its heads
(``head.py``) and its losses (``losses.py``, eq. 3, 4, 6)."""

from .config import add_szn_config
from .head import SZNHead, UpsamplingHead, bilinear_upsampling_weight
from .losses import pixelwise_cosine_loss, pixelwise_mse_loss, seenmask_bce_loss
from .segmentor import SZN, sei_scores

__all__ = [
    "SZN",
    "SZNHead",
    "UpsamplingHead",
    "add_szn_config",
    "bilinear_upsampling_weight",
    "pixelwise_cosine_loss",
    "pixelwise_mse_loss",
    "sei_scores",
    "seenmask_bce_loss",
]
