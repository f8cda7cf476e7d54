"""Model parts, registered in Detectron2's registries on import.

One framework, several methods: ``meta_arch/`` holds one module per method; ``backbone/`` the
pixel-wise methods' backbones (VGG-16 FCN-32s, U-Net); ``heads/``, ``pixel_decoder/``,
``transformer_decoder/`` and ``losses/`` their parts; ``semantic/`` the class embeddings all methods
score against (CLIP text, precomputed files, PCA); ``clip/`` CLIP's image tower on mask crops
(pseudo labels, ensemble).
"""

from . import backbone, heads, meta_arch, pixel_decoder, transformer_decoder  # noqa: F401  (registration)
from .meta_arch import CELSegmentor, SZNSegmentor

__all__ = ["CELSegmentor", "SZNSegmentor"]
