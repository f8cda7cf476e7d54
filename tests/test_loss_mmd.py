"""MMD (eq. 1) and ZS-MMD (eq. 2) of the recursive-training paper, against hand-derived values."""

from __future__ import annotations

import math

import pytest
import torch

from zsseg_d2.modeling.mmd import gaussian_kernel_mixture, mmd_squared, zs_mmd_loss

E = math.e


def _points(*values: float) -> torch.Tensor:
    return torch.tensor(values).view(-1, 1)


def test_kernel_is_the_sum_of_gaussians_over_bandwidths():
    k = gaussian_kernel_mixture(_points(0.0), _points(2.0), [1.0, 4.0])
    # ||0 - 2||^2 = 4: exp(-4 / 2) + exp(-4 / 8).
    assert k.item() == pytest.approx(E**-2 + E**-0.5)


def test_mmd_one_point_each_side():
    # k(0, 1) with s = 1/2 is exp(-1); k(x, x) = 1: 1 - 2 / e + 1.
    assert mmd_squared(_points(0.0), _points(1.0), [0.5]).item() == pytest.approx(2 - 2 / E)


def test_mmd_two_against_one_by_hand():
    # x = {0, 2}, y = {1}, s = 1: k(0,2) = e^-2, k(0,1) = k(2,1) = e^-1/2.
    expected = (2 + 2 * E**-2) / 4 - 2 * E**-0.5 + 1
    assert mmd_squared(_points(0.0, 2.0), _points(1.0), [1.0]).item() == pytest.approx(expected)
    # A mixture of bandwidths adds the per-bandwidth values (the kernel is a sum).
    both = mmd_squared(_points(0.0, 2.0), _points(1.0), [1.0, 4.0]).item()
    single4 = mmd_squared(_points(0.0, 2.0), _points(1.0), [4.0]).item()
    assert both == pytest.approx(expected + single4)


def test_mmd_is_zero_for_identical_sets_and_symmetric():
    x, y = torch.randn(5, 3), torch.randn(7, 3)
    assert mmd_squared(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert mmd_squared(x, y).item() == pytest.approx(mmd_squared(y, x).item(), rel=1e-5)
    assert mmd_squared(x, y).item() > 0


def test_zs_mmd_by_hand():
    # a = {0, 2} with c = (0.5, 1), b = {1}, s = 1:
    # (0.25 + 1 + 2 * 0.5 e^-2) / 1.5^2 - 2 / (1 * 1.5) * (0.5 + 1) e^-1/2 + 1.
    expected = (1.25 + E**-2) / 2.25 - 2 * E**-0.5 + 1
    value = zs_mmd_loss(_points(0.0, 2.0), torch.tensor([0.5, 1.0]), _points(1.0), [1.0])
    assert value.item() == pytest.approx(expected)


def test_zs_mmd_matches_eq2_written_as_double_sums():
    a, c, b = torch.randn(4, 3), torch.rand(4) + 0.1, torch.randn(6, 3)
    bandwidths = [2.0, 5.0]

    def k(u, v):
        return sum(math.exp(-float(((u - v) ** 2).sum()) / (2 * s)) for s in bandwidths)

    total_c, count_b = float(c.sum()), len(b)
    term_aa = sum(c[i] * c[j] * k(a[i], a[j]) for i in range(4) for j in range(4)) / total_c**2
    term_ab = (
        2
        * sum(c[i] * k(a[i], b[j]) for i in range(4) for j in range(count_b))
        / (count_b * total_c)
    )
    term_bb = sum(k(b[i], b[j]) for i in range(count_b) for j in range(count_b)) / count_b**2
    assert zs_mmd_loss(a, c, b, bandwidths).item() == pytest.approx(
        float(term_aa - term_ab + term_bb), rel=1e-5
    )


def test_zs_mmd_with_unit_weights_over_the_full_set_equals_mmd():
    generated = torch.randn(8, 4)
    full = generated.clone()
    assert zs_mmd_loss(full, torch.ones(8), generated).item() == pytest.approx(
        mmd_squared(full, generated).item(), rel=1e-6
    )
    real = torch.randn(5, 4)
    assert zs_mmd_loss(real, torch.ones(5), generated).item() == pytest.approx(
        mmd_squared(real, generated).item(), rel=1e-6
    )


def test_a_zero_confidence_sample_contributes_nothing():
    a, c, b = torch.randn(3, 4), torch.tensor([0.9, 0.8, 0.75]), torch.randn(6, 4)
    with_zero = zs_mmd_loss(
        torch.cat([a, torch.randn(1, 4) * 10]), torch.cat([c, torch.zeros(1)]), b
    )
    assert with_zero.item() == pytest.approx(zs_mmd_loss(a, c, b).item(), rel=1e-6)


def test_zs_mmd_gradient_reaches_only_the_generated_samples():
    a = torch.randn(3, 4, requires_grad=True)
    c = torch.tensor([0.9, 0.8, 0.95], requires_grad=True)
    b = torch.randn(6, 4, requires_grad=True)
    zs_mmd_loss(a, c, b).backward()
    assert a.grad is None and c.grad is None
    assert b.grad is not None and b.grad.abs().sum() > 0


def test_no_confident_sample_gives_a_differentiable_zero():
    b = torch.randn(6, 4, requires_grad=True)
    loss = zs_mmd_loss(torch.empty(0, 4), torch.empty(0), b)
    loss.backward()
    assert loss.item() == 0.0 and b.grad.abs().sum() == 0


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="same width"):
        mmd_squared(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="bandwidths must be positive"):
        mmd_squared(torch.randn(2, 3), torch.randn(2, 3), [0.0])
    with pytest.raises(ValueError, match="one confidence per confident sample"):
        zs_mmd_loss(torch.randn(2, 3), torch.ones(3), torch.randn(2, 3))
