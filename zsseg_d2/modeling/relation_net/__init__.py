"""The Relation Network's parts (Zhang & Khriyenko): word-embedding module, tiling, relation
module, episode sampling. The meta-architecture is ``modeling/meta_arch/relation_net.py``; the
loss ``modeling/losses/relation_loss.py``."""

from .binary import binary_intersection_union, binary_prediction
from .episodes import EPISODE_POOLS, EpisodeTargets, episode_targets, sample_episode
from .modules import RelationHead, RelationModule, WordEmbeddingModule

__all__ = [
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
