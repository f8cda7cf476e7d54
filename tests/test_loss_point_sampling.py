"""Point sampling of masks (zsseg_d2.methods.cel.point_sampling) against hand-derived values."""

from __future__ import annotations

import pytest
import torch

from zsseg_d2.methods.cel.point_sampling import (
    nearest_pixel_index,
    point_sample,
    sample_points_by_uncertainty,
)


def test_point_sample_pixel_centres_midpoints_and_border() -> None:
    # 2 x 2 map [[1, 2], [3, 4]]: pixel centres are x, y in {0.25, 0.75}.
    grid = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    coords = torch.tensor(
        [[[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.5, 0.25], [0.5, 0.5], [0.0, 0.0]]]
    )
    sampled = point_sample(grid, coords)
    # centres -> the pixel values; (0.5, 0.25) halfway between 1 and 2; (0.5, 0.5) the mean 2.5;
    # the corner (0, 0) takes the edge value 1 (border padding, not blended with zeros).
    assert torch.allclose(sampled, torch.tensor([[[1.0, 2.0, 3.0, 1.5, 2.5, 1.0]]]))


def test_point_sample_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="coords"):
        point_sample(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3))


def test_nearest_pixel_index_hand_values() -> None:
    # 2 x 4 map: (x=0.1, y=0.9) -> row 1, column 0 -> 4; (0.99, 0.2) -> row 0, column 3 -> 3;
    # (1, 1) is clamped to the last pixel 7; (0.5, 0.5) -> row 1, column 2 -> 6.
    coords = torch.tensor([[0.1, 0.9], [0.99, 0.2], [1.0, 1.0], [0.5, 0.5]])
    assert nearest_pixel_index(coords, 2, 4).tolist() == [4, 3, 7, 6]


def test_uncertainty_sampling_prefers_uncertain_points() -> None:
    # Left half of the map has logit 0 (most uncertain), right half +-20 (certain).
    logits = torch.full((3, 1, 8, 8), 20.0)
    logits[1] = -20.0
    logits[:, :, :, :4] = 0.0
    coords = sample_points_by_uncertainty(
        logits, num_points=200, oversample_ratio=3.0, importance_sample_ratio=0.75
    )
    assert coords.shape == (3, 200, 2)
    assert coords.min() >= 0 and coords.max() <= 1
    # ~300 of the 600 candidates lie in the left half; the 150 chosen by uncertainty all do
    # (|logit| < 20 only up to the blending band at x < 9/16).
    chosen = point_sample(logits, coords[:, :150])
    assert chosen.abs().max() < 20.0
    assert (coords[:, :150, 0] < 9 / 16).all()


def test_uncertainty_sampling_validates_ratios() -> None:
    logits = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="OVERSAMPLE_RATIO"):
        sample_points_by_uncertainty(logits, 10, 0.5, 0.5)
    with pytest.raises(ValueError, match="IMPORTANCE_SAMPLE_RATIO"):
        sample_points_by_uncertainty(logits, 10, 3.0, 1.5)
