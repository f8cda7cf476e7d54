"""Model parts, registered in Detectron2's registries on import."""
from . import cel_head, pixel_decoder, transformer_decoder  # noqa: F401  (registration)
from .meta_arch import CELSegmentor

__all__ = ["CELSegmentor"]
