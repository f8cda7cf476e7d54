"""Meta-architectures, one module per method, registered in ``META_ARCH_REGISTRY`` on import."""
from .cel import CELSegmentor

__all__ = ["CELSegmentor"]
