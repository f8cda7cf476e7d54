"""Meta-architectures, one module per method, registered in ``META_ARCH_REGISTRY`` on import."""
from .cel import CELSegmentor
from .relation_net import RelationNet
from .sign import SIGN

__all__ = ["CELSegmentor", "RelationNet", "SIGN"]
