"""Meta-architectures, one module per method, registered in ``META_ARCH_REGISTRY`` on import."""
from .cel import CELSegmentor
from .zs3net import ZS3Net

__all__ = ["CELSegmentor", "ZS3Net"]
