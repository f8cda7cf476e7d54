"""Eq. 9-10 on hand-made embeddings: the scaled softmax, the per-image max, the threshold."""

from __future__ import annotations

import math

import torch

from zsseg_d2.modeling.clip.scoring import (
    crop_class_probs,
    image_class_scores,
    labels_above,
    rounded_scores,
)


def test_eq9_softmax_of_scaled_cosines_by_hand():
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    crops = torch.tensor([[0.6, 0.8], [3.0, 4.0]])  # the same direction: cos = (0.6, 0.8, -0.6)
    probs = crop_class_probs(crops, text, 10.0)
    # logits (6, 8, -6): e^6 = 403.4288, e^8 = 2980.9580, e^-6 = 0.0024788, sum = 3384.3893
    expected = torch.tensor([403.4288 / 3384.3893, 2980.9580 / 3384.3893, 0.0024788 / 3384.3893])
    assert torch.allclose(probs, expected.expand(2, 3), atol=1e-6)


def test_eq9_without_the_scale_cannot_reach_099():
    # Best case for class 0: cos 1 with it and -1 with the other: softmax(1, -1)_0 = 1 / (1 + e^-2) = 0.8808.
    text = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    crop = torch.tensor([[1.0, 0.0]])
    assert math.isclose(
        float(crop_class_probs(crop, text, 1.0)[0, 0]), 1 / (1 + math.exp(-2)), rel_tol=1e-6
    )
    # With scale ln 99 (CLIP's is 100): softmax(ln 99, -ln 99)_0 = 1 / (1 + 99^-2) = 0.9999 > 0.99.
    assert float(crop_class_probs(crop, text, math.log(99.0))[0, 0]) > 0.99


def test_eq10_max_over_each_images_crops():
    probs = torch.tensor([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.1, 0.9]])
    owners = torch.tensor([0, 0, 2, 2])  # image 1 has no crop
    scores = image_class_scores(probs, owners, 3)
    assert torch.equal(scores, torch.tensor([[0.7, 0.8], [0.0, 0.0], [0.4, 0.9]]))


def test_threshold_equality_counts():
    # Two classes at cos (1, 0) with scale ln 99: softmax = (99, 1) / 100 -> exactly 0.99 once rounded.
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    probs = crop_class_probs(torch.tensor([[1.0, 0.0]]), text, math.log(99.0))
    scores = rounded_scores(image_class_scores(probs, torch.tensor([0]), 1)[0])
    assert scores == [0.99, 0.01]
    assert labels_above(scores, ["cow", "tree"], 0.99) == ["cow"]
    assert labels_above(scores, ["cow", "tree"], 0.990001) == []
    assert labels_above(scores, ["cow", "tree"], 0.01) == ["cow", "tree"]
