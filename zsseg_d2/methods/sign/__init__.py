"""SIGN (Cheng et al., ICCV 2021): the meta-architecture ``SIGN`` (``segmentor.py``), its options
(``config.py``), positional encodings, the Spatial Information Module, the feature generator and
discriminator, the transfer step's pseudo ground truth, self-training (ST / AST) and its losses."""

from .config import add_sign_config
from .generator import FeatureDiscriminator, FeatureGenerator
from .positional_encoding import PE_MODES, PositionalEncoder, positional_encoding, sinusoid_1d
from .segmentor import SIGN
from .self_training import (
    SELF_TRAINING_MODES,
    PseudoLabels,
    annealed_weights,
    confidence_histogram,
    fraction_thresholds,
    pseudo_label_unseen,
)
from .sim import SIM_TYPES, SIMOutput, SpatialInformationModule, reparameterize
from .transfer import random_relabel

__all__ = [
    "SIGN",
    "add_sign_config",
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
    "confidence_histogram",
    "fraction_thresholds",
    "random_relabel",
    "SIM_TYPES",
    "SIMOutput",
    "SpatialInformationModule",
    "reparameterize",
]
