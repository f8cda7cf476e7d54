"""Mask crops for the CLIP image encoder, batched (section 3.4 of Dao et al. 2023; Xu et al.'s crops).

A region is the bounding box of its binary mask on the image, optionally grown for context and
optionally with the pixels outside the mask set to CLIP's pixel mean. All boxes of an image are
resized to CLIP's input size at once with ``torchvision.ops.roi_align``, so no crop is resized in a
Python loop. A box no larger than the output is plainly bilinear-resized (one sample per output
pixel); a larger one averages 2 x 2 bilinear samples per output pixel (an exact box filter for a 2x
reduction; adaptive sampling, ``ceil(box / output)`` samples per side, costs up to 15x more for
whole-image crops and was the pass's largest cost after the networks).

Boxes are in continuous pixel coordinates: pixel (y, x) covers
[x, x + 1) x [y, y + 1), so the box of a single pixel is (x, y, x + 1, y + 1).

The crop is resized to CLIP's square input without keeping its aspect ratio, as Xu et al. do.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.ops import roi_align

SHRINK_SAMPLES_PER_SIDE = (
    2  # bilinear samples per output-pixel side for boxes larger than the output
)


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes ``[K, 4]`` (x0, y0, x1, y1), float, of binary masks ``[K, H, W]``.

    An empty mask gets the whole image's box (callers drop or special-case empty masks).
    """
    height, width = masks.shape[-2:]
    as_bytes = masks.view(torch.uint8)  # max over uint8 is vectorised, any() over bool is not
    rows, cols = as_bytes.amax(dim=2), as_bytes.amax(dim=1)
    empty = rows.amax(dim=1) == 0
    # argmax returns the first maximal index: the first True row/column from either side.
    y0, y1 = rows.argmax(dim=1), height - rows.flip(1).argmax(dim=1)
    x0, x1 = cols.argmax(dim=1), width - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1).to(torch.float32)
    full = boxes.new_tensor([0.0, 0.0, float(width), float(height)])
    return torch.where(empty[:, None], full, boxes)


def expand_boxes(boxes: torch.Tensor, ratio: float, height: int, width: int) -> torch.Tensor:
    """Grow each box by ``ratio`` times its width/height (half on each side), clamped to the image."""
    if ratio < 0:
        raise ValueError(f"PSEUDO_LABEL.EXPAND_RATIO must be >= 0, got {ratio}")
    x0, y0, x1, y1 = boxes.unbind(dim=1)
    dx, dy = (x1 - x0) * ratio / 2, (y1 - y0) * ratio / 2
    return torch.stack(
        [
            (x0 - dx).clamp(min=0),
            (y0 - dy).clamp(min=0),
            (x1 + dx).clamp(max=width),
            (y1 + dy).clamp(max=height),
        ],
        dim=1,
    )


def normalize_image(
    image: torch.Tensor, mean: Sequence[float], std: Sequence[float]
) -> torch.Tensor:
    """uint8 ``[3, H, W]`` RGB -> float ``(x / 255 - mean) / std``, with mean/std in [0, 1] units."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=image.device).view(-1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=image.device).view(-1, 1, 1)
    return torch.addcmul(-mean_t / std_t, image, 1.0 / (255.0 * std_t))  # one pass over the image


def resize_boxes(image: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Every box of ``image [C, H, W]`` resized to ``size``: ``[K, C, h, w]``, in at most two
    ``roi_align`` calls (boxes that fit in ``size``, and larger ones)."""
    boxes = boxes.to(image.dtype)
    fits = ((boxes[:, 2] - boxes[:, 0]) <= size[1]) & ((boxes[:, 3] - boxes[:, 1]) <= size[0])
    crops = image.new_empty((len(boxes), image.shape[0], *size))
    for samples, group in ((1, fits), (SHRINK_SAMPLES_PER_SIDE, ~fits)):
        if group.any():
            crops[group] = roi_align(
                image[None],
                [boxes[group]],
                output_size=size,
                spatial_scale=1.0,
                sampling_ratio=samples,
                aligned=True,
            )
    return crops


def sample_mask_boxes(
    masks: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Mask k at the centres of the output pixels of box k (nearest pixel): ``[K, h, w]`` bool.

    Reads only K x h x w mask pixels, never converting the full-size masks.
    """
    height, width = masks.shape[-2:]
    steps_y = (torch.arange(size[0], device=boxes.device, dtype=torch.float32) + 0.5) / size[0]
    steps_x = (torch.arange(size[1], device=boxes.device, dtype=torch.float32) + 0.5) / size[1]
    ys = (boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps_y).long().clamp_(0, height - 1)
    xs = (boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps_x).long().clamp_(0, width - 1)
    index = torch.arange(len(boxes), device=boxes.device)[:, None, None]
    return masks[index, ys[:, :, None], xs[:, None, :]]


def crop_regions(
    image: torch.Tensor,
    masks: torch.Tensor,
    size: tuple[int, int],
    mean: Sequence[float],
    std: Sequence[float],
    expand_ratio: float = 0.0,
    mask_fill: bool = False,
    fill_masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """CLIP-normalised crops ``[K, 3, h, w]`` of the regions ``masks [K, H, W]`` (bool) of ``image``
    (uint8 ``[3, H, W]``, RGB).

    ``mask_fill``: output pixels whose centre lies outside the mask become CLIP's pixel mean (0
    after normalisation). ``fill_masks`` (default ``masks``) are the masks used for filling, e.g.
    all-True for regions that should keep their context.
    """
    if image.shape[-2:] != masks.shape[-2:]:
        raise ValueError(
            f"image {tuple(image.shape[-2:])} and masks {tuple(masks.shape[-2:])} differ in size; "
            f"crop masks on the image they were predicted for"
        )
    boxes = expand_boxes(mask_boxes(masks), expand_ratio, *image.shape[-2:])
    crops = resize_boxes(normalize_image(image, mean, std), boxes, size)
    if mask_fill:
        crops = (
            crops
            * sample_mask_boxes(masks if fill_masks is None else fill_masks, boxes, size)[:, None]
        )
    return crops
