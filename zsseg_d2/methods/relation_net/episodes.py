"""Episodic training of the Relation Network (Zhang & Khriyenko, Sec. III-A, IV-C and IV-D).

Multi-class: each episode draws ``num_classes`` classes at random; the episode's label space is
those of them that are seen. Pixels of unselected classes (and unseen or unlabeled pixels) carry
no loss. The paper draws from all classes and then drops the unseen ones ("all"); "seen" draws
from the seen classes only, so every episode has ``num_classes`` classes.

Binary ZLSS: "each image is only paired with its target class (i.e. k query images result in k
pairs)": its target is a seen class present in it (CUB: the bird's species), 1 on its pixels and
0 on every other labelled pixel (the background).
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


class BinaryTargets(NamedTuple):
    classes: torch.Tensor  # [B] each image's target class (-1: no seen class present)
    targets: torch.Tensor  # [B, 1, H, W] float: 1 on the target class's pixels
    valid: torch.Tensor  # [B, H, W] bool: the labelled pixels of images that have a target


def binary_targets(
    labels: torch.Tensor,
    target_ids: Sequence[int],
    ignore_value: int = 255,
    generator: torch.Generator | None = None,
) -> BinaryTargets:
    """One target class per image, drawn among the ``target_ids`` present in its labels."""
    allowed = torch.as_tensor(list(target_ids), dtype=torch.long, device=labels.device)
    classes = []
    for label in labels:
        present = label.unique()
        present = present[torch.isin(present, allowed)]
        pick = torch.randint(len(present), (1,), generator=generator).item() if len(present) else -1
        classes.append(int(present[pick]) if len(present) else -1)
    classes = torch.tensor(classes, dtype=torch.long, device=labels.device)
    targets = (labels == classes[:, None, None]).float()[:, None]
    valid = (labels != ignore_value) & (classes >= 0)[:, None, None]
    return BinaryTargets(classes, targets, valid)
