"""Meta-architectures, one module per method, registered in ``META_ARCH_REGISTRY`` on import."""

from .cel import CELSegmentor
from .relation_net import RelationNet
from .sign import SIGN
from .szn import SZNSegmentor
from .zs3net import ZS3Net

__all__ = ["CELSegmentor", "RelationNet", "SIGN", "SZNSegmentor", "ZS3Net"]
