"""CELCriterion (eq. 8) on tiny cases whose matching and losses are worked out by hand.

Predicted masks are constant over the image and targets are all ones / all zeros, so the point
samples (random) do not change any value: each mask loss is that of a single pixel.
"""

from __future__ import annotations

import math

import pytest
import torch
from detectron2.config import get_cfg

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.methods.cel import CELCriterion, LossDivisors

TRAIN_POINTS = 64
MAIN_KEYS = {"loss_ce", "loss_kl", "loss_mask", "loss_dice", "loss_rank"}


def softplus(value: float) -> float:
    return math.log1p(math.exp(value))


def sigmoid(value: float) -> float:
    return 1 / (1 + math.exp(-value))


def cross_entropy(logits: list, label: int) -> float:
    return math.log(sum(math.exp(z) for z in logits)) - logits[label]


def uniform_kl(logits: list) -> float:
    total = sum(math.exp(z) for z in logits)
    return sum(math.exp(z) / total * math.log(math.exp(z) / total * len(logits)) for z in logits)


def make_criterion(**overrides) -> CELCriterion:
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.CEL.LOSS.TRAIN_NUM_POINTS = TRAIN_POINTS
    cfg.MODEL.CEL.MATCHER.NUM_POINTS = 32
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return CELCriterion(cfg)


# Two images, 3 queries, 4 classes. Image 0: target A (class 2, all ones), B (class 0, all zeros);
# image 1: target C (class 1, all ones). Queries are built to match q0-A, q1-B (image 0), q2-C.
CLASS_LOGITS = [
    [[0.0, 0.0, 5.0, 0.0], [5.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]],
    [[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0], [0.0, 5.0, 0.0, 0.0]],
]
MASK_LOGITS = [[3.0, -2.0, 0.0], [-1.0, 0.0, 1.0]]  # constant over each 4 x 4 mask
# r*_k = max over queries: image 0 -> [0.2, -0.1, 0.6, 0.3] (positives {2}); image 1 has no positives.
SIMILARITY = [
    [[0.2, -0.5, 0.6, 0.0], [0.1, -0.1, 0.0, 0.3], [-0.3, -0.2, 0.1, 0.1]],
    [[0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.1, 0.2, 0.3, 0.4]],
]


def make_outputs(background: bool = False) -> dict:
    logits = torch.tensor(CLASS_LOGITS)
    if background:
        logits = torch.cat([logits, torch.zeros(2, 3, 1)], dim=-1)
    return {
        "pred_logits": logits.requires_grad_(),
        "pred_similarity": torch.tensor(SIMILARITY).requires_grad_(),
        "pred_masks": torch.tensor(MASK_LOGITS)
        .view(2, 3, 1, 1)
        .expand(2, 3, 4, 4)
        .clone()
        .requires_grad_(),
    }


def make_targets() -> list:
    no_ignore = torch.zeros(8, 8, dtype=torch.bool)
    masks_a_b = torch.stack(
        [torch.ones(8, 8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool)]
    )
    return [
        {
            "labels": torch.tensor([2, 0]),
            "masks": masks_a_b,
            "ignore_mask": no_ignore,
            "image_labels": torch.tensor([2]),
        },
        {
            "labels": torch.tensor([1]),
            "masks": torch.ones(1, 8, 8, dtype=torch.bool),
            "ignore_mask": no_ignore,
            "image_labels": torch.tensor([], dtype=torch.long),
        },
    ]


def expected_losses() -> dict:
    """eq. 8 with alpha = 2, beta = 5, gamma = 1, lambda = 0.6 for the case above."""
    matched = [(CLASS_LOGITS[0][0], 2), (CLASS_LOGITS[0][1], 0), (CLASS_LOGITS[1][2], 1)]
    unmatched = [CLASS_LOGITS[0][2], CLASS_LOGITS[1][0], CLASS_LOGITS[1][1]]
    mean_ce = (
        sum(cross_entropy(logits, label) for logits, label in matched) / 3
    )  # each ln(1 + 3e^-5)
    mean_kl = sum(uniform_kl(logits) for logits in unmatched) / 3
    # Sigmoid-CE per mask: A (logit 3, target 1), B (logit -2, target 0), C (logit 1, target 1).
    mask_ce = softplus(-3.0) + softplus(-2.0) + softplus(-1.0)
    # Dice over P points: ones target 1 - (2Ps + 1)/(Ps + P + 1); zeros target 1 - 1/(Ps + 1).
    p = TRAIN_POINTS
    dice = (
        1
        - (2 * p * sigmoid(3.0) + 1) / (p * sigmoid(3.0) + p + 1)
        + 1
        - 1 / (p * sigmoid(-2.0) + 1)
        + 1
        - (2 * p * sigmoid(1.0) + 1) / (p * sigmoid(1.0) + p + 1)
    )
    # Image 0, positive 2 (r* = 0.6) against negatives 0.2, -0.1, 0.3; image 1 is skipped.
    rank = softplus(0.2 - 0.6) + softplus(-0.1 - 0.6) + softplus(0.3 - 0.6)
    return {
        "loss_ce": 2 * 0.6 * mean_ce,
        "loss_kl": 2 * 0.4 * mean_kl,
        "loss_mask": 5 * mask_ce / 3,
        "loss_dice": 5 * dice / 3,
        "loss_rank": 1 * rank,
    }


def test_criterion_terms_and_total_match_hand_computation() -> None:
    criterion = make_criterion()
    losses = criterion(make_outputs(), make_targets())
    expected = expected_losses()
    assert set(losses) == MAIN_KEYS
    for name, value in expected.items():
        assert losses[name].item() == pytest.approx(value, rel=1e-5), name
    assert sum(losses.values()).item() == pytest.approx(sum(expected.values()), rel=1e-5)


def test_criterion_rank_scale_scales_the_ranked_similarities() -> None:
    losses = make_criterion(**{"MODEL.CEL.LOSS.RANK_SCALE": 10.0})(make_outputs(), make_targets())
    # Image 0's margins times 10: r* = [2, -1, 6, 3], positive 2.
    rank = softplus(2 - 6.0) + softplus(-1 - 6.0) + softplus(3 - 6.0)
    assert losses["loss_rank"].item() == pytest.approx(rank, rel=1e-5)
    assert losses["loss_ce"].item() == pytest.approx(expected_losses()["loss_ce"], rel=1e-5)


def test_loss_divisors_count_masks_queries_and_labelled_images() -> None:
    divisors = LossDivisors.of_batch(make_targets(), 3, torch.device("cpu"))
    # 3 masks, all matched; 2 images x 3 queries - 3 = 3 unmatched; only image 0 has image labels.
    assert divisors == LossDivisors(masks=3.0, matched=3.0, unmatched=3.0, ranked_images=1.0)
    crowded = [{"labels": torch.arange(5), "image_labels": torch.tensor([], dtype=torch.long)}]
    # 5 masks but only 3 queries: 3 matched, 0 unmatched and 0 labelled images (both kept at 1).
    assert LossDivisors.of_batch(crowded, 3, torch.device("cpu")) == LossDivisors(
        5.0, 3.0, 1.0, 1.0
    )


def test_matching_used_by_criterion() -> None:
    indices = make_criterion().matcher(make_outputs(), make_targets())
    assert [(q.tolist(), t.tolist()) for q, t in indices] == [([0, 1], [0, 1]), ([2], [0])]


def test_aux_outputs_get_suffixed_keys() -> None:
    outputs = make_outputs()
    outputs["aux_outputs"] = [make_outputs(), make_outputs()]
    losses = make_criterion()(outputs, make_targets())
    assert set(losses) == MAIN_KEYS | {f"{key}_{i}" for key in MAIN_KEYS for i in (0, 1)}
    for key, value in expected_losses().items():
        assert losses[f"{key}_1"].item() == pytest.approx(value, rel=1e-5)
    without = make_criterion(**{"MODEL.CEL.LOSS.DEEP_SUPERVISION": False})(outputs, make_targets())
    assert set(without) == MAIN_KEYS


def test_switches_use_kl_and_use_rank() -> None:
    criterion = make_criterion(**{"MODEL.CEL.LOSS.USE_KL": False, "MODEL.CEL.LOSS.USE_RANK": False})
    losses = criterion(make_outputs(), make_targets())
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice"}
    # alpha * mean CE over matched queries only (no lambda).
    assert losses["loss_ce"].item() == pytest.approx(
        2 * expected_losses()["loss_ce"] / 1.2, rel=1e-5
    )


def test_learned_background_cross_entropy() -> None:
    criterion = make_criterion(**{"MODEL.CEL.BACKGROUND": "learned"})
    losses = criterion(make_outputs(background=True), make_targets())
    assert "loss_kl" not in losses
    with_bg = [[row + [0.0] for row in image] for image in CLASS_LOGITS]
    matched = [(with_bg[0][0], 2), (with_bg[0][1], 0), (with_bg[1][2], 1)]
    unmatched = [with_bg[0][2], with_bg[1][0], with_bg[1][1]]
    # Weighted mean: matched weigh 1, the 3 background targets (class 4) weigh 0.1.
    weighted = sum(cross_entropy(z, c) for z, c in matched) + 0.1 * sum(
        cross_entropy(z, 4) for z in unmatched
    )
    assert losses["loss_ce"].item() == pytest.approx(2 * weighted / (3 + 0.3), rel=1e-5)


def test_logit_columns_must_fit_background_mode() -> None:
    criterion = make_criterion(**{"MODEL.CEL.BACKGROUND": "learned"})
    with pytest.raises(ValueError, match="BACKGROUND='learned'"):
        criterion(make_outputs(background=False), make_targets())
    with pytest.raises(ValueError, match="MODEL.CEL.BACKGROUND must be one of"):
        make_criterion(**{"MODEL.CEL.BACKGROUND": "zero"})


def test_ignored_points_do_not_count_in_mask_loss() -> None:
    # Prediction: logit +3 on the left half of a 4 x 4 map, -3 on the right; target all ones.
    # Target columns 3..7 of 8 (x >= 3/8) are ignored: every remaining point has x < 3/8, where
    # the bilinear sample blends only the +3 columns, so the CE is softplus(-3) exactly.
    pred_masks = torch.full((1, 1, 4, 4), 3.0)
    pred_masks[..., 2:] = -3.0
    ignore = torch.zeros(8, 8, dtype=torch.bool)
    ignore[:, 3:] = True
    outputs = {
        "pred_logits": torch.tensor([[[5.0, 0.0]]]),
        "pred_similarity": torch.zeros(1, 1, 2),
        "pred_masks": pred_masks,
    }
    target = {
        "labels": torch.tensor([0]),
        "masks": torch.ones(1, 8, 8, dtype=torch.bool),
        "ignore_mask": ignore,
        "image_labels": torch.tensor([0]),
    }
    criterion = make_criterion()
    losses = criterion(outputs, [target])
    assert losses["loss_mask"].item() == pytest.approx(5 * softplus(-3.0), rel=1e-5)
    target["ignore_mask"] = torch.zeros(8, 8, dtype=torch.bool)
    assert criterion(outputs, [target])["loss_mask"].item() > 5 * softplus(-3.0) + 1.0


def test_gradients_reach_masks_logits_and_similarity() -> None:
    outputs = make_outputs()
    losses = make_criterion()(outputs, make_targets())
    sum(losses.values()).backward()
    mask_grad = outputs["pred_masks"].grad.abs().sum(dim=(2, 3))
    # Only matched queries (image 0: q0, q1; image 1: q2) receive mask gradients.
    assert (mask_grad > 0).tolist() == [[True, True, False], [False, False, True]]
    # Every query's class logits get a gradient except image 1's q1: its logits are uniform, the
    # minimum of the KL term, so its gradient is exactly 0.
    logit_grad = outputs["pred_logits"].grad.abs().sum(dim=-1)
    assert (logit_grad > 0).tolist() == [[True, True, True], [True, False, True]]
    assert outputs["pred_similarity"].grad.abs().sum() > 0


def test_batch_without_targets_is_finite_and_differentiable() -> None:
    outputs = make_outputs()
    empty = {
        "labels": torch.zeros(0, dtype=torch.long),
        "masks": torch.zeros(0, 8, 8, dtype=torch.bool),
        "ignore_mask": torch.zeros(8, 8, dtype=torch.bool),
        "image_labels": torch.zeros(0, dtype=torch.long),
    }
    losses = make_criterion()(outputs, [empty, dict(empty)])
    assert all(torch.isfinite(value) for value in losses.values())
    assert (
        losses["loss_ce"].item() == 0
        and losses["loss_mask"].item() == 0
        and losses["loss_rank"].item() == 0
    )
    sum(losses.values()).backward()
    assert outputs["pred_masks"].grad is not None


def test_targets_of_different_sizes_are_rejected() -> None:
    targets = make_targets()
    targets[1]["ignore_mask"] = torch.zeros(8, 9, dtype=torch.bool)
    with pytest.raises(ValueError, match="padded to one batch size"):
        make_criterion()(make_outputs(), targets)


def test_focal_switch_replaces_sigmoid_ce() -> None:
    losses = make_criterion(**{"MODEL.CEL.LOSS.FOCAL": True})(make_outputs(), make_targets())
    # Focal per mask (constant over points), alpha 0.25, gamma 2:
    # A: logit 3, target 1 -> 0.25 * (1 - s(3))^2 * softplus(-3)
    # B: logit -2, target 0 -> 0.75 * s(-2)^2 * softplus(-2)
    # C: logit 1, target 1 -> 0.25 * (1 - s(1))^2 * softplus(-1)
    focal = (
        0.25 * (1 - sigmoid(3.0)) ** 2 * softplus(-3.0)
        + 0.75 * sigmoid(-2.0) ** 2 * softplus(-2.0)
        + 0.25 * (1 - sigmoid(1.0)) ** 2 * softplus(-1.0)
    )
    assert losses["loss_mask"].item() == pytest.approx(5 * focal / 3, rel=1e-5)


def _sync_ops(function) -> dict[str, int]:
    """Calls of the operators that make the host wait for a GPU (item/int()/bool() of a tensor,
    nonzero and boolean indexing) while ``function`` runs, counted by the profiler on the CPU."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        function()
    names = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select")
    return {e.key: e.count for e in prof.key_averages() if e.key in names}


def test_criterion_waits_for_the_device_only_for_the_label_check() -> None:
    # Three layers (deep supervision): the only sync is the one check that the image-level labels
    # are class ids, once per batch (the matcher's one host copy per layer is not an operator).
    outputs = make_outputs()
    outputs["aux_outputs"] = [make_outputs(), make_outputs()]
    criterion = make_criterion()
    assert _sync_ops(lambda: criterion(outputs, make_targets())) == {"aten::_local_scalar_dense": 1}
    without_rank = make_criterion(**{"MODEL.CEL.LOSS.USE_RANK": False})
    assert _sync_ops(lambda: without_rank(outputs, make_targets())) == {}
