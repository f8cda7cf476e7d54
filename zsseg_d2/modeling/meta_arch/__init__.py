"""Meta-architectures, one module per method, registered in ``META_ARCH_REGISTRY`` on import."""
from .cel import CELSegmentor
from .szn import SZNSegmentor

__all__ = ["CELSegmentor", "SZNSegmentor"]
