"""Sampling of masks at continuous points, shared by the matcher and the mask loss.

Mask logits are sampled bilinearly (:func:`point_sample`); binary maps (ground-truth masks,
ignore masks) are read at the pixel containing each point (:func:`nearest_pixel_index`), so
sampled targets are exactly 0 or 1 and ignored points get weight 0.

Points are ``(x, y)`` pairs in ``[0, 1]`` relative to the whole map: ``(0, 0)`` is the top-left
corner of the top-left pixel and ``(1, 1)`` the bottom-right corner of the bottom-right pixel, so
the centre of pixel ``(row i, column j)`` of an ``H x W`` map is ``((j + 0.5) / W, (i + 0.5) / H)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(input: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``input`` [N, C, H, W] at ``coords`` [N, P, 2] -> [N, C, P].

    Uses ``grid_sample`` with ``align_corners=False`` (the coordinate convention of the module
    docstring) and border padding, so points within half a pixel of the edge take the edge value
    instead of being blended with zeros.
    """
    if input.dim() != 4 or coords.dim() != 3 or coords.shape[-1] != 2:
        raise ValueError(
            f"point_sample expects input [N, C, H, W] and coords [N, P, 2]; "
            f"got {tuple(input.shape)} and {tuple(coords.shape)}"
        )
    grid = (2.0 * coords - 1.0).unsqueeze(2).to(input.dtype)  # [N, P, 1, 2] in [-1, 1]
    sampled = F.grid_sample(
        input, grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled.squeeze(3)


def sample_points_by_uncertainty(
    logits: torch.Tensor,
    num_points: int,
    oversample_ratio: float,
    importance_sample_ratio: float,
) -> torch.Tensor:
    """Pick ``num_points`` points per map of ``logits`` [N, 1, h, w], favouring uncertain ones.

    Importance sampling as in PointRend / Mask2Former: draw ``num_points * oversample_ratio``
    uniform points, keep the ``importance_sample_ratio * num_points`` most uncertain of them
    (uncertainty = -|logit|, highest where the mask probability is 0.5) and fill the rest with
    fresh uniform points. Returns coords [N, num_points, 2]; vectorised over N.
    """
    if oversample_ratio < 1.0:
        raise ValueError(
            f"oversample_ratio must be >= 1 (MODEL.CEL.LOSS.OVERSAMPLE_RATIO), got {oversample_ratio}"
        )
    if not 0.0 <= importance_sample_ratio <= 1.0:
        raise ValueError(
            "importance_sample_ratio must be in [0, 1] (MODEL.CEL.LOSS.IMPORTANCE_SAMPLE_RATIO), "
            f"got {importance_sample_ratio}"
        )
    num_maps = logits.shape[0]
    num_candidates = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    device = logits.device

    candidates = torch.rand(num_maps, num_candidates, 2, device=device)
    uncertainty = -point_sample(logits, candidates)[:, 0].abs()  # [N, num_candidates]
    top = uncertainty.topk(num_uncertain, dim=1, sorted=False).indices
    uncertain_coords = candidates.gather(1, top.unsqueeze(-1).expand(-1, -1, 2))
    random_coords = torch.rand(num_maps, num_points - num_uncertain, 2, device=device)
    return torch.cat([uncertain_coords, random_coords], dim=1)


def nearest_pixel_index(coords: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Row-major index into an ``height x width`` map of the pixel containing each point.

    ``coords`` [..., 2] (x, y) in [0, 1] -> int64 [...]. Used to read binary maps (targets,
    ignore masks) at the points exactly, without converting whole maps to float.
    """
    column = (coords[..., 0] * width).long().clamp_(0, width - 1)
    row = (coords[..., 1] * height).long().clamp_(0, height - 1)
    return row * width + column
