"""Crop boxes, batched crop resizing against a per-crop loop, mask fill, proposal selection."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zsseg_d2.methods.cel.pseudo_labels.proposals import mask_quality, select_proposals
from zsseg_d2.modeling.clip.crops import (
    crop_regions,
    expand_boxes,
    mask_boxes,
    normalize_image,
    resize_boxes,
)


def _mask(height, width, pixels):
    mask = torch.zeros(height, width, dtype=torch.bool)
    for y, x in pixels:
        mask[y, x] = True
    return mask


def test_mask_boxes_by_hand():
    masks = torch.stack(
        [
            _mask(5, 6, [(1, 2), (3, 4)]),  # rows 1..3, cols 2..4 -> (2, 1, 5, 4)
            _mask(5, 6, [(0, 0)]),  # one pixel covers [0, 1) x [0, 1)
            torch.ones(5, 6, dtype=torch.bool),  # the whole image
            torch.zeros(5, 6, dtype=torch.bool),  # empty: whole image by convention
            _mask(5, 6, [(4, 5)]),  # bottom-right pixel
        ]
    )
    expected = torch.tensor(
        [[2, 1, 5, 4], [0, 0, 1, 1], [0, 0, 6, 5], [0, 0, 6, 5], [5, 4, 6, 5]], dtype=torch.float32
    )
    assert torch.equal(mask_boxes(masks), expected)


def test_expand_boxes_by_hand_and_clamped():
    boxes = torch.tensor([[2.0, 2.0, 4.0, 4.0], [2.0, 1.0, 5.0, 4.0]])
    # box 0: 2 x 2, ratio 0.5 -> 0.5 more on each side: (1.5, 1.5, 4.5, 4.5), inside a 6 x 5 image
    # box 1: 3 x 3, ratio 1.0 -> 1.5 on each side: (0.5, -0.5, 6.5, 5.5) clamped to (0.5, 0, 6, 5)
    assert torch.allclose(expand_boxes(boxes[:1], 0.5, 5, 6), torch.tensor([[1.5, 1.5, 4.5, 4.5]]))
    assert torch.allclose(expand_boxes(boxes[1:], 1.0, 5, 6), torch.tensor([[0.5, 0.0, 6.0, 5.0]]))
    assert torch.equal(expand_boxes(boxes, 0.0, 5, 6), boxes)
    with pytest.raises(ValueError, match="EXPAND_RATIO"):
        expand_boxes(boxes, -0.1, 5, 6)


def _reference_crop(image: torch.Tensor, box, size):
    """One crop by explicit bilinear samples (grid_sample): n x n samples per output pixel averaged,
    n = 1 for a box that fits in ``size`` and 2 otherwise, sample centres as in aligned RoIAlign:
    x = x0 + bin * (j + (s + 0.5) / n) - 0.5."""
    height, width = image.shape[-2:]
    x0, y0, x1, y1 = [float(v) for v in box]
    out_h, out_w = size
    n_y = n_x = 1 if x1 - x0 <= out_w and y1 - y0 <= out_h else 2
    ys = torch.tensor(
        [
            y0 + (y1 - y0) / out_h * (i + (s + 0.5) / n_y) - 0.5
            for i in range(out_h)
            for s in range(n_y)
        ]
    )
    xs = torch.tensor(
        [
            x0 + (x1 - x0) / out_w * (j + (s + 0.5) / n_x) - 0.5
            for j in range(out_w)
            for s in range(n_x)
        ]
    )
    grid_y, grid_x = torch.meshgrid(
        (2 * ys + 1) / height - 1, (2 * xs + 1) / width - 1, indexing="ij"
    )
    grid = torch.stack([grid_x, grid_y], dim=-1)[None]
    samples = F.grid_sample(
        image[None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )[0]
    return samples.view(image.shape[0], out_h, n_y, out_w, n_x).mean(dim=(2, 4))


def test_batched_crops_match_per_crop_loop():
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(3, 37, 53, generator=generator)
    boxes = torch.tensor(
        [
            [0.0, 0.0, 53.0, 37.0],
            [3.0, 5.0, 20.0, 11.0],
            [10.5, 2.25, 49.0, 36.5],
            [40.0, 30.0, 42.0, 31.0],
            [7.5, 1.0, 19.5, 9.0],
        ]
    )  # shrink, shrink in x only, fractional edges, enlarge, exactly the output size (12 x 8)
    batched = resize_boxes(image, boxes, (8, 12))
    for crop, box in zip(batched, boxes):
        assert torch.allclose(crop, _reference_crop(image, box, (8, 12)), atol=1e-5)


def test_mask_fill_uses_clip_mean_outside_the_mask():
    generator = torch.Generator().manual_seed(2)
    image = torch.randint(0, 256, (3, 8, 12), dtype=torch.uint8, generator=generator)
    mask = torch.zeros(1, 8, 12, dtype=torch.bool)
    mask[0, :, 4:8] = True  # box (4, 0, 8, 8); ratio 1.0 -> (2, 0, 10, 8), 8 columns wide
    mask[0, 5, 4] = (
        False  # a hole: output pixel (2, 1), centre (5, 5) -> pixel (5, 5), stays inside
    )
    mask[0, 3, 7] = False  # output pixel (1, 2) has centre (3, 7): this hole fills it
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    crops = crop_regions(image, mask, (4, 4), mean, std, expand_ratio=1.0, mask_fill=True)
    # Bins are 2 x 2 pixels and their 2 x 2 samples fall on pixel centres: output (i, j) is the
    # mean of rows 2i, 2i + 1 and columns 2 + 2j, 3 + 2j.
    normalized = normalize_image(image, mean, std)
    expected = normalized[:, :, 2:10].reshape(3, 4, 2, 4, 2).mean(dim=(2, 4))
    unfilled = crop_regions(image, mask, (4, 4), mean, std, expand_ratio=1.0, mask_fill=False)
    assert torch.allclose(unfilled[0], expected, atol=1e-5)
    # Filled where the bin centre (2i + 1, 3 + 2j) is outside the mask: columns j = 0 (pixel 3)
    # and j = 3 (pixel 9), and the hole at (3, 7); CLIP's mean is 0 once normalised.
    expected[:, :, [0, 3]] = 0.0
    expected[:, 1, 2] = 0.0
    assert torch.allclose(crops[0], expected, atol=1e-5)


def test_crop_regions_rejects_masks_of_another_size():
    with pytest.raises(ValueError, match="differ in size"):
        image, masks = (
            torch.zeros(3, 8, 8, dtype=torch.uint8),
            torch.ones(1, 4, 4, dtype=torch.bool),
        )
        crop_regions(image, masks, (4, 4), (0.5,) * 3, (0.2,) * 3)


def test_select_proposals_area_quality_and_topk():
    probs = torch.full((5, 4, 4), 0.1)
    probs[0] = 0.9  # area 16, quality 0.9
    probs[1, 0, 0] = 0.6  # area 1, quality 0.6
    probs[2] = 0.2  # empty
    probs[3, :2] = 0.7  # area 8, quality 0.7
    probs[4, 2:] = 0.7  # area 8, quality 0.7 (ties with 3)
    assert torch.equal(select_proposals(probs, 0.5, 0.0, 0), probs[[0, 1, 3, 4]] > 0.5)
    assert torch.allclose(mask_quality(probs, probs > 0.5), torch.tensor([0.9, 0.6, 0.0, 0.7, 0.7]))
    # 0.1 * 16 = 1.6 pixels: query 1 dropped
    assert torch.equal(select_proposals(probs, 0.5, 0.1, 0), probs[[0, 3, 4]] > 0.5)
    # best two: 0 (0.9), then 3 wins the tie with 4; query 1 (0.6) loses
    assert torch.equal(select_proposals(probs, 0.5, 0.0, 2), probs[[0, 3]] > 0.5)
    assert torch.equal(select_proposals(probs, 0.5, 0.0, 3), probs[[0, 3, 4]] > 0.5)
    assert select_proposals(probs, 0.95, 0.0, 0).shape == (0, 4, 4)  # nothing above 0.95
    # quality threshold: 0.65 keeps 0 (0.9), 3 and 4 (0.7) but not 1 (0.6); 0.75 keeps only 0; top-1 of those: 0
    assert torch.equal(
        select_proposals(probs, 0.5, 0.0, 0, min_quality=0.65), probs[[0, 3, 4]] > 0.5
    )
    assert torch.equal(select_proposals(probs, 0.5, 0.0, 0, min_quality=0.75), probs[[0]] > 0.5)
    assert torch.equal(select_proposals(probs, 0.5, 0.0, 1, min_quality=0.65), probs[[0]] > 0.5)
