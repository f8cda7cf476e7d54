"""ZS3Net (Bucher et al. 2019) and its recursive training with ZS-MMD (Wang, Farazi, Barnes): the
meta-architecture ``ZS3Net`` (``segmentor.py``), its options (``config.py``) and the GMMN generator
(``generator.py``); MMD and ZS-MMD are shared (``zsseg_d2/modeling/mmd.py``)."""

from .config import add_zs3net_config
from .generator import GMMNGenerator
from .segmentor import ZS3Net, select_confident

__all__ = ["GMMNGenerator", "ZS3Net", "add_zs3net_config", "select_confident"]
