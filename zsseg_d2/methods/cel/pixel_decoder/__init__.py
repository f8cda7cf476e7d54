"""Pixel decoders (registered in Detectron2's ``SEM_SEG_HEADS_REGISTRY`` on import)."""

from .ms_deform_attn import MSDeformAttn, ms_deform_attn_core_pytorch
from .msdeform_pixel_decoder import MSDeformAttnPixelDecoder

__all__ = ["MSDeformAttn", "MSDeformAttnPixelDecoder", "ms_deform_attn_core_pytorch"]
