"""HungarianMatcher against hand-computed costs and a brute force over all assignments."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from detectron2.config import get_cfg

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.methods.cel import HungarianMatcher

LN3 = math.log(3.0)


def make_matcher(num_points: int) -> HungarianMatcher:
    return HungarianMatcher(cost_class=2.0, cost_mask=5.0, cost_dice=5.0, num_points=num_points)


def test_from_config_reads_matcher_keys() -> None:
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.CEL.MATCHER.COST_DICE = 3.0
    cfg.MODEL.CEL.MATCHER.NUM_POINTS = 77
    matcher = HungarianMatcher(cfg)
    assert (matcher.cost_class, matcher.cost_mask, matcher.cost_dice, matcher.num_points) == (
        2.0,
        5.0,
        3.0,
        77,
    )


def two_by_two_case():
    # 2 queries, 2 classes, masks of 1 x 2 pixels; points at the two pixel centres.
    # Class logits: q0 [0, 0] -> p = [1/2, 1/2]; q1 [ln3, 0] -> p = [3/4, 1/4].
    # Mask logits: q0 [0, 0] -> s = [1/2, 1/2]; q1 [ln3, -ln3] -> s = [3/4, 1/4].
    # Targets: t0 class 0, mask [1, 0]; t1 class 1, mask [1, 1].
    pred_logits = torch.tensor([[0.0, 0.0], [LN3, 0.0]])
    pred_masks = torch.tensor([[[0.0, 0.0]], [[LN3, -LN3]]])
    labels = torch.tensor([0, 1])
    target_masks = torch.tensor([[[True, False]], [[True, True]]])
    coords = torch.tensor([[0.25, 0.5], [0.75, 0.5]])
    return pred_logits, pred_masks, labels, target_masks, coords


def test_cost_matrix_two_by_two_hand_values() -> None:
    pred_logits, pred_masks, labels, target_masks, coords = two_by_two_case()
    cost = make_matcher(2).cost_matrix(
        pred_logits, pred_masks, labels, target_masks, torch.zeros(1, 2, dtype=torch.bool), coords
    )
    # class cost -p:  q0: [-1/2, -1/2]; q1: [-3/4, -1/4]
    # sigmoid-CE:     q0: ln2 for both (BCE(0, t) = ln 2);
    #                 q1,t0: both points -ln(3/4) -> ln(4/3); q1,t1: (ln(4/3) + ln 4) / 2
    # dice:           q0,t0: 1 - (2*0.5+1)/(1+1+1) = 1/3;   q0,t1: 1 - (2*1+1)/(1+2+1) = 1/4
    #                 q1,t0: 1 - (2*0.75+1)/(1+1+1) = 1/6;  q1,t1: 1 - (2*1+1)/(1+2+1) = 1/4
    expected = torch.tensor(
        [
            [2 * -0.5 + 5 * math.log(2) + 5 / 3, 2 * -0.5 + 5 * math.log(2) + 5 / 4],
            [2 * -0.75 + 5 * math.log(4 / 3) + 5 / 6, 2 * -0.25 + 2.5 * math.log(16 / 3) + 5 / 4],
        ]
    )
    assert torch.allclose(cost, expected, atol=1e-5)


def test_cost_matrix_excludes_ignored_points() -> None:
    pred_logits, pred_masks, labels, target_masks, coords = two_by_two_case()
    ignore = torch.tensor([[False, True]])  # the second pixel is ignored: one point left
    cost = make_matcher(2).cost_matrix(
        pred_logits, pred_masks, labels, target_masks, ignore, coords
    )
    # q1,t1 on point 1 only: CE = ln(4/3); dice = 1 - (2*0.75+1)/(0.75+1+1) = 1/11.
    assert cost[1, 1].item() == pytest.approx(2 * -0.25 + 5 * math.log(4 / 3) + 5 / 11, abs=1e-5)
    # q0,t0 on point 1 only: CE = ln 2; dice = 1 - (2*0.5+1)/(0.5+1+1) = 1/5.
    assert cost[0, 0].item() == pytest.approx(2 * -0.5 + 5 * math.log(2) + 5 / 5, abs=1e-5)


def loop_cost_matrix(pred_logits, pred_masks, labels, target_masks, ignore, coords) -> torch.Tensor:
    """Matching cost with explicit loops: bilinear prediction sampling by hand, targets at the
    pixel containing each point, ignored points skipped."""
    num_queries, h, w = pred_masks.shape
    height, width = target_masks.shape[-2:]

    def bilinear(mask, x, y):
        fx = min(max(x * w - 0.5, 0.0), w - 1.0)  # border padding
        fy = min(max(y * h - 0.5, 0.0), h - 1.0)
        x0, y0 = int(math.floor(fx)), int(math.floor(fy))
        x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
        ax, ay = fx - x0, fy - y0
        top = (1 - ax) * mask[y0, x0] + ax * mask[y0, x1]
        bottom = (1 - ax) * mask[y1, x0] + ax * mask[y1, x1]
        return float((1 - ay) * top + ay * bottom)

    points = []
    for x, y in coords.tolist():
        row, col = min(int(y * height), height - 1), min(int(x * width), width - 1)
        if not ignore[row, col]:
            points.append((x, y, row, col))
    cost = torch.zeros(num_queries, len(labels), dtype=torch.float64)
    for q in range(num_queries):
        probs = torch.softmax(pred_logits[q].double(), dim=0)
        logits = [bilinear(pred_masks[q], x, y) for x, y, _, _ in points]
        for i, label in enumerate(labels.tolist()):
            targets = [float(target_masks[i, row, col]) for _, _, row, col in points]
            ce = sum(
                math.log1p(math.exp(-z)) if t else math.log1p(math.exp(z))
                for z, t in zip(logits, targets)
            )
            sig = [1 / (1 + math.exp(-z)) for z in logits]
            dice = 1 - (2 * sum(s * t for s, t in zip(sig, targets)) + 1) / (
                sum(sig) + sum(targets) + 1
            )
            cost[q, i] = -2 * probs[label] + 5 * ce / max(len(points), 1) + 5 * dice
    return cost


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matching_is_optimal_against_brute_force(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    num_queries, num_targets, num_classes, num_points = 5, 3, 4, 40
    pred_logits = torch.randn(num_queries, num_classes, generator=generator) * 2
    pred_masks = torch.randn(num_queries, 6, 6, generator=generator) * 2
    labels = torch.randint(0, num_classes, (num_targets,), generator=generator)
    target_masks = torch.rand(num_targets, 12, 12, generator=generator) > 0.5
    ignore = torch.rand(12, 12, generator=generator) > 0.7
    outputs = {"pred_logits": pred_logits[None], "pred_masks": pred_masks[None]}
    targets = [{"labels": labels, "masks": target_masks, "ignore_mask": ignore}]

    matcher = make_matcher(num_points)
    torch.manual_seed(seed)
    ((query_idx, target_idx),) = matcher(outputs, targets)
    torch.manual_seed(seed)
    coords = torch.rand(num_points, 2)  # the points the matcher drew for this single image

    reference = loop_cost_matrix(pred_logits, pred_masks, labels, target_masks, ignore, coords)
    cost = matcher.cost_matrix(pred_logits, pred_masks, labels, target_masks, ignore, coords)
    assert torch.allclose(cost.double(), reference, atol=1e-4)

    best = min(
        sum(reference[q, i].item() for i, q in enumerate(queries))
        for queries in itertools.permutations(range(num_queries), num_targets)
    )
    assert query_idx.dtype == torch.long and len(query_idx) == num_targets
    assert sorted(target_idx.tolist()) == list(range(num_targets))
    assert reference[query_idx, target_idx].sum().item() == pytest.approx(best, abs=1e-6)


def test_matcher_handles_images_without_targets() -> None:
    outputs = {"pred_logits": torch.randn(2, 4, 3), "pred_masks": torch.randn(2, 4, 5, 5)}
    targets = [
        {
            "labels": torch.zeros(0, dtype=torch.long),
            "masks": torch.zeros(0, 10, 10, dtype=torch.bool),
            "ignore_mask": torch.zeros(10, 10, dtype=torch.bool),
        },
        {
            "labels": torch.tensor([2]),
            "masks": torch.ones(1, 10, 10, dtype=torch.bool),
            "ignore_mask": torch.zeros(10, 10, dtype=torch.bool),
        },
    ]
    (q0, t0), (q1, t1) = make_matcher(16)(outputs, targets)
    assert len(q0) == 0 and len(t0) == 0
    assert len(q1) == 1 and t1.tolist() == [0]


def test_matcher_rejects_non_finite_predictions() -> None:
    pred_masks = torch.randn(1, 3, 4, 4)
    pred_masks[0, 1] = float("nan")
    targets = [
        {
            "labels": torch.tensor([0]),
            "masks": torch.ones(1, 8, 8, dtype=torch.bool),
            "ignore_mask": torch.zeros(8, 8, dtype=torch.bool),
        }
    ]
    with pytest.raises(FloatingPointError, match="not finite"):
        make_matcher(8)({"pred_logits": torch.randn(1, 3, 2), "pred_masks": pred_masks}, targets)


def test_batched_matching_is_optimal_per_image_with_padding_and_an_empty_image() -> None:
    # Three images with 3, 0 and 2 targets: one batched cost pass pads the targets to 3; every
    # image must get its own optimum (brute force on its own points), unaffected by the padding.
    generator = torch.Generator().manual_seed(5)
    num_queries, num_classes, num_points, counts = 4, 5, 30, (3, 0, 2)
    pred_logits = torch.randn(3, num_queries, num_classes, generator=generator) * 2
    pred_masks = torch.randn(3, num_queries, 6, 6, generator=generator) * 2
    targets = [
        {
            "labels": torch.randint(0, num_classes, (n,), generator=generator),
            "masks": torch.rand(n, 12, 12, generator=generator) > 0.5,
            "ignore_mask": torch.rand(12, 12, generator=generator) > 0.7,
        }
        for n in counts
    ]
    outputs = {"pred_logits": pred_logits, "pred_masks": pred_masks}
    torch.manual_seed(0)
    indices = make_matcher(num_points)(outputs, targets)
    next_draw = torch.rand(1)
    torch.manual_seed(0)
    coords = [torch.rand(num_points, 2) if n else None for n in counts]  # drawn image by image
    assert torch.equal(torch.rand(1), next_draw)  # and nothing more: the random stream goes on
    assert len(indices[1][0]) == 0 and len(indices[1][1]) == 0
    for image in (0, 2):
        target = targets[image]
        reference = loop_cost_matrix(
            pred_logits[image], pred_masks[image], target["labels"], target["masks"],
            target["ignore_mask"], coords[image],
        )  # fmt: skip
        best = min(
            sum(reference[q, i].item() for i, q in enumerate(queries))
            for queries in itertools.permutations(range(num_queries), counts[image])
        )
        query_idx, target_idx = indices[image]
        assert sorted(target_idx.tolist()) == list(range(counts[image]))
        assert reference[query_idx, target_idx].sum().item() == pytest.approx(best, abs=1e-6)


def test_matcher_copies_costs_to_the_host_once_per_call() -> None:
    from torch.overrides import TorchFunctionMode

    class CountHostCopies(TorchFunctionMode):
        copies = 0  # calls of Tensor.cpu (a device-to-host copy and sync on a GPU)

        def __torch_function__(self, func, types, args=(), kwargs=None):
            CountHostCopies.copies += func is torch.Tensor.cpu
            return func(*args, **(kwargs or {}))

    outputs = {"pred_logits": torch.randn(3, 4, 3), "pred_masks": torch.randn(3, 4, 5, 5)}
    target = {
        "labels": torch.tensor([2, 0]),
        "masks": torch.rand(2, 10, 10) > 0.5,
        "ignore_mask": torch.zeros(10, 10, dtype=torch.bool),
    }
    with CountHostCopies():
        indices = make_matcher(16)(outputs, [target, dict(target), dict(target)])
    assert [len(q) for q, _ in indices] == [2, 2, 2]
    assert CountHostCopies.copies == 1
