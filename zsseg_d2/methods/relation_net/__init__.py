"""The Relation Network (Zhang & Khriyenko): the meta-architecture ``RelationNet``
(``segmentor.py``), its options (``config.py``), the word-embedding and relation modules, episode
sampling, binary ZLSS and the BCE of eq. 5 (``loss.py``)."""

from .binary import binary_intersection_union, binary_prediction
from .config import add_relation_net_config
from .episodes import EPISODE_POOLS, EpisodeTargets, episode_targets, sample_episode
from .modules import RelationHead, RelationModule, WordEmbeddingModule
from .segmentor import RelationNet

__all__ = [
    "RelationNet",
    "add_relation_net_config",
    "binary_intersection_union",
    "binary_prediction",
    "EPISODE_POOLS",
    "EpisodeTargets",
    "episode_targets",
    "sample_episode",
    "RelationHead",
    "RelationModule",
    "WordEmbeddingModule",
]
