"""The Relation Network (Zhang & Khriyenko): the meta-architecture ``RelationNet``
(``segmentor.py``), its options (``config.py``), the word-embedding and relation modules, episode
sampling (multi-class episodes, binary ZLSS pairs) and the BCE of eq. 5 (``loss.py``)."""

from .config import add_relation_net_config
from .episodes import (
    EPISODE_POOLS,
    BinaryTargets,
    EpisodeTargets,
    binary_targets,
    episode_targets,
    sample_episode,
)
from .modules import (
    RELATION_MODULES,
    ConvRelationModule,
    RelationHead,
    UNetRelationModule,
    WordEmbeddingModule,
    build_relation_head,
)
from .segmentor import RelationNet

__all__ = [
    "RelationNet",
    "add_relation_net_config",
    "EPISODE_POOLS",
    "BinaryTargets",
    "EpisodeTargets",
    "binary_targets",
    "episode_targets",
    "sample_episode",
    "RELATION_MODULES",
    "ConvRelationModule",
    "RelationHead",
    "UNetRelationModule",
    "WordEmbeddingModule",
    "build_relation_head",
]
