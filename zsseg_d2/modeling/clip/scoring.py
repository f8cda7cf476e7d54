"""Unseen-class scores of images from CLIP crop embeddings (eq. 9-10 of Dao et al. 2023).

Eq. 9: each crop i gets s_hat_i = softmax_j(logit_scale * cos(e_hat_i, t_hat_j)) over the unseen
classes j. The scale (CLIP's own, 100 for trained CLIP) is required: cosines lie in [-1, 1], so
without it the largest softmax probability over U classes is at most e / (e + (U - 1) / e) =
e^2 / (e^2 + U - 1), e.g. 0.79 for U = 3 and 0.35 for U = 15 - a threshold of 0.99 would never
be reached. Eq. 10: an image's score for class j is the max of s_hat_i(j) over its crops; the
classes scoring at least the threshold are its pseudo labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

SCORE_DECIMALS = 6  # scores are stored and thresholded rounded, so records and labels agree


def crop_class_probs(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: float
) -> torch.Tensor:
    """Eq. 9: ``[N, C]`` softmax over classes of ``logit_scale * cos(image_embeds, text_embeds)``."""
    cosine = (
        F.normalize(image_embeds.float(), dim=-1) @ F.normalize(text_embeds.float(), dim=-1).t()
    )
    return (logit_scale * cosine).softmax(dim=-1)


def image_class_scores(
    crop_probs: torch.Tensor, owners: torch.Tensor, num_images: int
) -> torch.Tensor:
    """Eq. 10's max: ``[num_images, C]``, per image the max over its crops (``owners [N]`` gives
    each crop's image); 0 for an image without crops."""
    scores = crop_probs.new_zeros((num_images, crop_probs.shape[1]))
    index = owners.to(crop_probs.device)[:, None].expand_as(crop_probs)
    return scores.scatter_reduce(0, index, crop_probs, reduce="amax", include_self=True)


def rounded_scores(scores: torch.Tensor) -> list[float]:
    """One image's class scores as Python floats rounded to ``SCORE_DECIMALS`` (deterministic JSON)."""
    return [round(float(s), SCORE_DECIMALS) for s in scores.tolist()]


def labels_above(
    scores: Sequence[float], class_names: Sequence[str], threshold: float
) -> list[str]:
    """Eq. 10: the classes whose score is at least ``threshold`` (equality counts), in class order."""
    return [name for name, score in zip(class_names, scores) if score >= threshold]
