"""open_clip models (loading, the tiny test config) and CLIP's image tower on mask crops: the crop
classifier shared by the pseudo-label pass and the inference-time ensemble."""

from .crop_classifier import ClipCropClassifier
from .ensemble import ClipEnsemble, geometric_ensemble, unseen_class_mask
from .loader import CLIPWeightsError, create_clip_model, weights_identity

__all__ = [
    "CLIPWeightsError",
    "ClipCropClassifier",
    "ClipEnsemble",
    "create_clip_model",
    "geometric_ensemble",
    "unseen_class_mask",
    "weights_identity",
]
