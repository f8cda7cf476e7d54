"""Episodic training of the Relation Network (Zhang & Khriyenko, Sec. III-A and IV-D).

Each episode draws ``num_classes`` classes at random; the episode's label space is those of them
that are seen. Pixels of unselected classes (and unseen or unlabeled pixels) carry no loss.
The paper draws from all classes and then drops the unseen ones ("all"); "seen" draws from the
seen classes only, so every episode has ``num_classes`` classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

EPISODE_POOLS = ("all", "seen")


def sample_episode(
    num_total: int,
    seen_ids: Sequence[int],
    num_classes: int = 10,
    pool: str = "all",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sorted ids of the episode's classes: ``num_classes`` drawn without replacement from all
    ``num_total`` classes ("all", unseen then dropped) or from ``seen_ids`` ("seen")."""
    if pool not in EPISODE_POOLS:
        raise ValueError(
            f"MODEL.RELATION_NET.EPISODE_POOL must be one of {EPISODE_POOLS}, got {pool!r}"
        )
    seen = torch.as_tensor(list(seen_ids), dtype=torch.long)
    candidates = torch.arange(num_total) if pool == "all" else seen
    drawn = candidates[torch.randperm(len(candidates), generator=generator)[:num_classes]]
    return drawn[torch.isin(drawn, seen)].sort().values


class EpisodeTargets(NamedTuple):
    targets: torch.Tensor  # [B, K, H, W] float: 1 where the pixel is the episode's k-th class
    valid: torch.Tensor  # [B, H, W] bool: pixels whose label is one of the episode's classes


def episode_targets(labels: torch.Tensor, episode: torch.Tensor) -> EpisodeTargets:
    """Binary targets y_{i,j,k,c} of eq. 5 for the episode's classes, and the pixels that count."""
    targets = (labels[:, None] == episode.to(labels.device)[None, :, None, None]).float()
    return EpisodeTargets(targets, targets.sum(dim=1) > 0)
