"""Eq. 2 (text classifier) and eq. 4 (semantic inference) against hand-derived values."""
from __future__ import annotations

import math

import torch

from zsseg_d2.modeling.semantic_inference import semantic_argmax, semantic_scores
from zsseg_d2.modeling.heads import TextClassifier


def test_classifier_is_cosine_over_temperature():
    class_embeds = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])  # B=1, Q=2, unit norm
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    similarity, logits = TextClassifier(2, temperature=0.5)(class_embeds, text)
    torch.testing.assert_close(similarity, torch.tensor([[[1.0, 0.0], [0.6, 0.8]]]))
    torch.testing.assert_close(logits, torch.tensor([[[2.0, 0.0], [1.2, 1.6]]]))
    # p_1(class 0) = e^2 / (e^2 + e^0)
    assert math.isclose(logits.softmax(-1)[0, 0, 0].item(), math.exp(2) / (math.exp(2) + 1), rel_tol=1e-6)


def test_learned_background_adds_a_last_column_only_to_logits():
    classifier = TextClassifier(2, temperature=0.5, learned_background=True)
    with torch.no_grad():
        classifier.background.copy_(torch.tensor([0.0, -3.0]))  # normalised to (0, -1)
    class_embeds = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])
    similarity, logits = classifier(class_embeds, torch.eye(2))
    assert similarity.shape == (1, 2, 2)
    torch.testing.assert_close(logits[0, :, 2], torch.tensor([0.0, -1.6]))


def test_eq4_semantic_scores_by_hand():
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]])  # [Q=2, C=2]
    masks = torch.tensor([[[1.0, 0.0]], [[0.5, 1.0]]])  # [Q=2, H=1, W=2]
    scores = semantic_scores(probs, masks)
    # S_0 = 0.8*[1, 0] + 0.3*[0.5, 1];  S_1 = 0.2*[1, 0] + 0.7*[0.5, 1]
    torch.testing.assert_close(scores, torch.tensor([[[0.95, 0.3]], [[0.55, 0.7]]]))
    assert semantic_argmax(probs, masks, class_chunk=1).tolist() == [[0, 1]]


def test_chunked_argmax_equals_dense_argmax():
    generator = torch.Generator().manual_seed(3)
    probs = torch.rand(7, 10, generator=generator).softmax(-1)
    masks = torch.rand(7, 5, 6, generator=generator)
    dense = semantic_scores(probs, masks).argmax(0)
    for chunk in (1, 3, 10, 64):
        assert torch.equal(semantic_argmax(probs, masks, chunk), dense)
