"""Meta-architectures, one module per method, registered in ``META_ARCH_REGISTRY`` on import."""
from .cel import CELSegmentor
from .szn import SZNSegmentor
from .zs3net import ZS3Net

__all__ = ["CELSegmentor", "SZNSegmentor", "ZS3Net"]
