"""SIGN's parts (Cheng et al. 2021): positional encodings, the Spatial Information Module, the
feature generator and discriminator, and the self-training pseudo labels. The meta-architecture is
``modeling/meta_arch/sign.py``; the losses ``modeling/losses/sign_losses.py``."""

from .generator import FeatureDiscriminator, FeatureGenerator
from .positional_encoding import PE_MODES, PositionalEncoder, positional_encoding, sinusoid_1d
from .self_training import (
    SELF_TRAINING_MODES,
    PseudoLabels,
    annealed_weights,
    pseudo_label_unseen,
    top_fraction_mask,
)
from .sim import SIM_TYPES, SIMOutput, SpatialInformationModule, reparameterize
from .transfer import random_relabel

__all__ = [
    "FeatureDiscriminator",
    "FeatureGenerator",
    "PE_MODES",
    "PositionalEncoder",
    "positional_encoding",
    "sinusoid_1d",
    "SELF_TRAINING_MODES",
    "PseudoLabels",
    "annealed_weights",
    "pseudo_label_unseen",
    "top_fraction_mask",
    "random_relabel",
    "SIM_TYPES",
    "SIMOutput",
    "SpatialInformationModule",
    "reparameterize",
]
