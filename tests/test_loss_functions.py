"""Loss terms of the losses of CEL, SZN and SIGN against hand-derived values and loop references."""

from __future__ import annotations

import math

import pytest
import torch

from zsseg_d2.methods.cel.losses import (
    background_aware_class_loss,
    background_class_ce,
    dice_loss,
    matched_class_ce,
    multilabel_ranking_loss,
    sigmoid_ce_loss,
    sigmoid_focal_loss,
    uniform_kl,
)

LN3 = math.log(3.0)
# Logits [0, ln 2, ln 5] give p = [1/8, 2/8, 5/8].
LOGITS_1_2_5 = [0.0, math.log(2.0), math.log(5.0)]
# KL(p || U_3) = sum_i p_i ln(3 p_i) for p = [1/8, 2/8, 5/8].
KL_1_2_5 = (1 / 8) * math.log(3 / 8) + (2 / 8) * math.log(6 / 8) + (5 / 8) * math.log(15 / 8)


# ---------------------------------------------------------------- mask losses (L_mask of eq. 8)
def test_sigmoid_ce_hand_values_with_weights() -> None:
    # Mask 1: logits [0, ln3], targets [1, 1], only point 1 valid -> BCE(0, 1) = ln 2.
    # Mask 2: logits [ln3, -ln3], targets [1, 0], both valid: sigmoid = [3/4, 1/4], so both
    #   points cost -ln(3/4) = ln(4/3); mean ln(4/3).
    # Mask 3: every point ignored -> 0.  Sum: ln 2 + ln(4/3) = ln(8/3).
    logits = torch.tensor([[0.0, LN3], [LN3, -LN3], [5.0, -5.0]])
    targets = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    weights = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    assert sigmoid_ce_loss(logits, targets, weights).item() == pytest.approx(
        math.log(8 / 3), rel=1e-6
    )
    # Without weights mask 1 is (ln 2 + ln(4/3)) / 2 and mask 3 is softplus(5) (both points wrong).
    expected = (math.log(2) + math.log(4 / 3)) / 2 + math.log(4 / 3) + math.log1p(math.exp(5.0))
    assert sigmoid_ce_loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_sigmoid_focal_hand_values() -> None:
    # logit ln3, target 1: p = 3/4, p_t = 3/4, (1 - p_t)^2 = 1/16, a_t = 0.25 -> ln(4/3) / 64.
    # logit -ln3, target 0: p = 1/4, p_t = 3/4, (1 - p_t)^2 = 1/16, a_t = 0.75 -> 3 ln(4/3) / 64.
    logits = torch.tensor([[LN3, -LN3], [LN3, -LN3]])
    targets = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    weights = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    # mask 1: mean of both = ln(4/3)/32; mask 2: only the first point = ln(4/3)/64.
    expected = math.log(4 / 3) / 32 + math.log(4 / 3) / 64
    assert sigmoid_focal_loss(
        logits, targets, weights, alpha=0.25, gamma=2.0
    ).item() == pytest.approx(expected, rel=1e-6)
    # alpha < 0: no alpha factor -> each point ln(4/3)/16, mask means ln(4/3)/16 each.
    no_alpha = sigmoid_focal_loss(logits, targets, weights, alpha=-1.0, gamma=2.0).item()
    assert no_alpha == pytest.approx(2 * math.log(4 / 3) / 16, rel=1e-6)


def test_dice_hand_values_with_weights() -> None:
    # logits [0, ln3] -> s = [1/2, 3/4], targets [1, 1].
    # Weights [1, 0]: sum(wst) = 1/2, sum(ws) = 1/2, sum(wt) = 1 -> 1 - 2 / 2.5 = 0.2.
    # No weights: sum(st) = 5/4, sum(s) = 5/4, sum(t) = 2 -> 1 - 3.5 / 4.25 = 3/17.
    logits = torch.tensor([[0.0, LN3]])
    targets = torch.tensor([[1.0, 1.0]])
    assert dice_loss(logits, targets, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(
        0.2, rel=1e-6
    )
    assert dice_loss(logits, targets).item() == pytest.approx(3 / 17, rel=1e-6)
    # Two masks are summed: the second (all points ignored) gives 1 - 1/1 = 0.
    two = dice_loss(
        logits.repeat(2, 1), targets.repeat(2, 1), torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    )
    assert two.item() == pytest.approx(0.2, rel=1e-6)


# ---------------------------------------------------------------- class loss (eq. 5)
def test_matched_ce_and_uniform_kl_hand_values() -> None:
    logits = torch.tensor([LOGITS_1_2_5])
    assert matched_class_ce(logits, torch.tensor([2])).item() == pytest.approx(
        math.log(8 / 5), rel=1e-6
    )
    assert uniform_kl(logits).item() == pytest.approx(KL_1_2_5, rel=1e-5)
    assert uniform_kl(torch.zeros(2, 7)).abs().max() < 1e-6  # uniform p: KL = 0


def test_uniform_kl_is_log_c_minus_entropy() -> None:
    logits = torch.randn(6, 11) * 3
    for row, kl in zip(logits, uniform_kl(logits)):
        probs = torch.softmax(row.double(), dim=0).tolist()
        entropy = -sum(p * math.log(p) for p in probs)
        assert kl.item() == pytest.approx(math.log(11) - entropy, abs=1e-5)


def test_background_aware_class_loss_tiny_case() -> None:
    # One image, 3 queries, 3 classes, lambda = 0.6.
    # q0 matched to class 2, logits [0, ln2, ln5]: p = [1/8, 2/8, 5/8] -> CE = ln(8/5).
    # q1 matched to class 0, logits [ln3, 0, 0]: p = [3/5, 1/5, 1/5] -> CE = ln(5/3).
    # q2 unmatched, logits [0, ln2, ln5] -> KL = KL_1_2_5.
    # Eq. 5: 0.6 * (ln(8/5) + ln(5/3)) / 2 = 0.3 ln(8/3), and 0.4 * KL_1_2_5.
    logits = torch.tensor([[LOGITS_1_2_5, [LN3, 0.0, 0.0], LOGITS_1_2_5]])
    matched = torch.tensor([[True, True, False]])
    labels = torch.tensor([[2, 0, 99]])  # the unmatched label is never read
    ce, kl = background_aware_class_loss(logits, matched, labels, lam=0.6)
    assert ce.item() == pytest.approx(0.3 * math.log(8 / 3), rel=1e-6)
    assert kl.item() == pytest.approx(0.4 * KL_1_2_5, rel=1e-5)


def test_background_aware_class_loss_means_over_whole_batch() -> None:
    # Image 0 has 2 matched queries (CE ln(8/5), ln(5/3)), image 1 one (CE ln 3, uniform logits):
    # the CE term is the mean over the 3 matched queries, not a mean of per-image means.
    logits = torch.tensor([[LOGITS_1_2_5, [LN3, 0.0, 0.0]], [[0.0, 0.0, 0.0], LOGITS_1_2_5]])
    matched = torch.tensor([[True, True], [True, False]])
    labels = torch.tensor([[2, 0], [1, 0]])
    ce, kl = background_aware_class_loss(logits, matched, labels, lam=1.0)
    assert ce.item() == pytest.approx((math.log(8 / 5) + math.log(5 / 3) + LN3) / 3, rel=1e-6)
    assert kl.item() == 0.0


def test_background_aware_class_loss_explicit_divisors() -> None:
    # The tiny case above with the divisors given (as the criterion does for several processes):
    # the sums ln(8/5) + ln(5/3) and KL_1_2_5 are divided by 4 and 2 instead of 2 and 1.
    logits = torch.tensor([[LOGITS_1_2_5, [LN3, 0.0, 0.0], LOGITS_1_2_5]])
    matched = torch.tensor([[True, True, False]])
    labels = torch.tensor([[2, 0, 0]])
    ce, kl = background_aware_class_loss(
        logits, matched, labels, 0.6, num_matched=4.0, num_unmatched=2.0
    )
    assert ce.item() == pytest.approx(0.6 * math.log(8 / 3) / 4, rel=1e-6)
    assert kl.item() == pytest.approx(0.4 * KL_1_2_5 / 2, rel=1e-5)


def test_background_aware_class_loss_empty_sets_are_finite() -> None:
    logits = torch.randn(2, 4, 5, requires_grad=True)
    labels = torch.zeros(2, 4, dtype=torch.long)
    none_matched = torch.zeros(2, 4, dtype=torch.bool)
    ce, kl = background_aware_class_loss(logits, none_matched, labels, lam=0.6)
    assert ce.item() == 0.0 and torch.isfinite(kl) and kl.item() > 0
    (ce + kl).backward()
    assert torch.isfinite(logits.grad).all()
    ce, kl = background_aware_class_loss(logits, ~none_matched, labels, lam=0.6)
    assert kl.item() == 0.0 and torch.isfinite(ce) and ce.item() > 0


def test_background_class_ce_hand_value() -> None:
    # q0 matched to class 0, logits [0, ln2, ln5] -> CE = ln 8, weight 1.
    # q1 unmatched -> background (class 2), uniform logits -> CE = ln 3, weight 0.1.
    # Weighted mean: (ln 8 + 0.1 ln 3) / 1.1.
    logits = torch.tensor([[LOGITS_1_2_5, [0.0, 0.0, 0.0]]])
    loss = background_class_ce(logits, torch.tensor([[True, False]]), torch.tensor([[0, 0]]), 0.1)
    assert loss.item() == pytest.approx((math.log(8) + 0.1 * LN3) / 1.1, rel=1e-6)


# ---------------------------------------------------------------- ranking loss (eq. 6-7)
def softplus(value: float) -> float:
    return math.log1p(math.exp(value))


def ranking_loss_loop(similarity: torch.Tensor, image_labels: list) -> float:
    """Eq. 6-7 with explicit Python loops, averaged over images with positives."""
    per_image = []
    num_images, num_queries, num_classes = similarity.shape
    for image in range(num_images):
        best = [
            max(similarity[image, q, k].item() for q in range(num_queries))
            for k in range(num_classes)
        ]
        positives = set(image_labels[image].tolist())
        if not positives:
            continue
        total = 0.0
        for j in positives:
            for k in range(num_classes):
                if k not in positives:
                    total += softplus(best[k] - best[j])
        per_image.append(total / len(positives))
    return sum(per_image) / len(per_image) if per_image else 0.0


def test_ranking_loss_hand_value_one_image_three_classes() -> None:
    # r* = max over the 2 queries = [0.5, 0.3, 0.4].
    similarity = torch.tensor([[[0.5, 0.1, -0.2], [0.2, 0.3, 0.4]]])
    # P = {0}: softplus(0.3 - 0.5) + softplus(0.4 - 0.5).
    one = multilabel_ranking_loss(similarity, [torch.tensor([0])])
    assert one.item() == pytest.approx(softplus(-0.2) + softplus(-0.1), rel=1e-6)
    # P = {0, 2}, N = {1}: (softplus(0.3 - 0.5) + softplus(0.3 - 0.4)) / 2.
    two = multilabel_ranking_loss(similarity, [torch.tensor([2, 0])])
    assert two.item() == pytest.approx((softplus(-0.2) + softplus(-0.1)) / 2, rel=1e-6)


def test_ranking_loss_scale_multiplies_the_similarities() -> None:
    # r* = 10 * [0.5, 0.3, 0.4]; P = {0}: softplus(3 - 5) + softplus(4 - 5).
    similarity = torch.tensor([[[0.5, 0.1, -0.2], [0.2, 0.3, 0.4]]])
    scaled = multilabel_ranking_loss(similarity, [torch.tensor([0])], scale=10.0)
    assert scaled.item() == pytest.approx(softplus(-2.0) + softplus(-1.0), rel=1e-6)
    with pytest.raises(ValueError, match="RANK_SCALE must be > 0"):
        multilabel_ranking_loss(similarity, [torch.tensor([0])], scale=0.0)


def test_ranking_loss_matches_double_loop() -> None:
    similarity = torch.rand(4, 5, 7) * 2 - 1
    image_labels = [
        torch.tensor([1, 4]),
        torch.tensor([], dtype=torch.long),
        torch.tensor([6, 6, 0, 2]),
        torch.tensor([3]),
    ]
    loss = multilabel_ranking_loss(similarity, image_labels)
    assert loss.item() == pytest.approx(ranking_loss_loop(similarity, image_labels), rel=1e-5)


def test_ranking_loss_explicit_divisor() -> None:
    # 3 of the 4 images have positives: the loop's mean times 3 is the sum, divided here by 5.
    similarity = torch.rand(4, 5, 7) * 2 - 1
    image_labels = [
        torch.tensor([1, 4]),
        torch.tensor([], dtype=torch.long),
        torch.tensor([6, 0]),
        torch.tensor([3]),
    ]
    loss = multilabel_ranking_loss(similarity, image_labels, num_ranked_images=5.0)
    assert loss.item() == pytest.approx(
        ranking_loss_loop(similarity, image_labels) * 3 / 5, rel=1e-5
    )


def test_ranking_loss_ignores_images_without_positives() -> None:
    similarity = torch.rand(2, 3, 4) * 2 - 1
    both = multilabel_ranking_loss(
        similarity, [torch.tensor([1]), torch.tensor([], dtype=torch.long)]
    )
    first = multilabel_ranking_loss(similarity[:1], [torch.tensor([1])])
    assert both.item() == pytest.approx(first.item(), rel=1e-6)


def test_ranking_loss_empty_batch_is_zero_with_grad() -> None:
    similarity = torch.rand(2, 3, 4, requires_grad=True)
    loss = multilabel_ranking_loss(similarity, [torch.tensor([], dtype=torch.long)] * 2)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(similarity.grad, torch.zeros_like(similarity))


def test_ranking_loss_rejects_out_of_vocabulary_labels() -> None:
    with pytest.raises(ValueError, match="class ids in \\[0, 4\\)"):
        multilabel_ranking_loss(torch.zeros(1, 2, 4), [torch.tensor([4])])
