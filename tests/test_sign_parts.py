"""SIGN's modules and losses against hand-derived values (Cheng et al. 2021, eq. 2, 5-7, 11-17)."""

from __future__ import annotations

import math

import pytest
import torch

from zsseg_d2.methods.sign import (
    FeatureDiscriminator,
    FeatureGenerator,
    PositionalEncoder,
    SpatialInformationModule,
    annealed_weights,
    confidence_histogram,
    fraction_thresholds,
    positional_encoding,
    pseudo_label_unseen,
)
from zsseg_d2.methods.sign.losses import (
    SIGN_BANDWIDTHS,
    adversarial_loss,
    kl_to_standard_normal,
    per_class_mmd,
    weighted_cross_entropy,
)
from zsseg_d2.methods.sign.transfer import random_relabel
from zsseg_d2.modeling.mmd import gaussian_kernel_mixture, mmd_squared


def test_rpe_values_match_eq_11_to_16():
    pe = positional_encoding(height=4, width=8, mode="relative")
    assert pe.shape == (600, 4, 8)
    # pixel (v=1, u=3): pos_u* = 512 * 3 / 8 = 192, pos_v* = 512 * 1 / 4 = 128
    for d in (0, 1, 7, 149):
        freq = 10000 ** (2 * d / 300)
        assert pe[2 * d, 1, 3].item() == pytest.approx(math.sin(192 / freq), abs=1e-6)
        assert pe[2 * d + 1, 1, 3].item() == pytest.approx(math.cos(192 / freq), abs=1e-6)
        assert pe[300 + 2 * d, 1, 3].item() == pytest.approx(math.sin(128 / freq), abs=1e-6)
        assert pe[300 + 2 * d + 1, 1, 3].item() == pytest.approx(math.cos(128 / freq), abs=1e-6)


def test_rpe_is_resolution_independent_but_ape_is_not():
    small, large = positional_encoding(5, 6, "relative"), positional_encoding(10, 12, "relative")
    torch.testing.assert_close(large[:, ::2, ::2], small)  # the same relative place, the same code
    ape_small, ape_large = (
        positional_encoding(5, 6, "absolute"),
        positional_encoding(10, 12, "absolute"),
    )
    torch.testing.assert_close(ape_large[:, :5, :6], ape_small)  # APE depends on the index only
    assert not torch.allclose(ape_large[:, ::2, ::2], ape_small)
    assert positional_encoding(3, 3, "absolute")[0, 0, 2].item() == pytest.approx(
        math.sin(2.0), abs=1e-6
    )


def test_ape_with_interpolation_resizes_the_training_encoding_at_test_time():
    encoder = PositionalEncoder("absolute_interp", train_size=(4, 4)).eval()
    features = torch.zeros(1, 2, 8, 8)
    expected = torch.nn.functional.interpolate(
        positional_encoding(4, 4, "absolute")[None],
        size=(8, 8),
        mode="bilinear",
        align_corners=False,
    )[0]
    torch.testing.assert_close(encoder(features)[0, 2:], expected)
    assert PositionalEncoder("none")(features).shape == (1, 2, 8, 8)
    with pytest.raises(ValueError, match="POSITIONAL_ENCODING"):
        PositionalEncoder("learned")


def test_kl_of_the_reparameterisation():
    mean, log_var = torch.tensor([0.5, -1.0]), torch.tensor([0.0, math.log(4.0)])
    # per element: -1/2 (1 + log s2 - mu2 - s2): (0.125) and -1/2 (1 + ln4 - 1 - 4) = 2 - ln2
    expected = (0.125 + (2 - math.log(2.0))) / 2
    assert kl_to_standard_normal(mean, log_var).item() == pytest.approx(expected, rel=1e-6)
    assert kl_to_standard_normal(torch.zeros(3), torch.zeros(3)).item() == 0.0


def test_mmd_with_the_papers_kernel_by_hand():
    real, fake = torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.0, 2.0]])
    k = lambda a, b: math.exp(-0.5 * sum((x - y) ** 2 for x, y in zip(a, b)))  # noqa: E731
    r, f = real.tolist(), fake.tolist()
    expected = (
        sum(k(a, b) for a in r for b in r) / 4
        + sum(k(a, b) for a in f for b in f) / 4
        - 2 * sum(k(a, b) for a in r for b in f) / 4
    )
    assert gaussian_kernel_mixture(real, fake, SIGN_BANDWIDTHS)[1, 0].item() == pytest.approx(
        math.exp(-2.5), rel=1e-6
    )
    assert mmd_squared(real, fake, SIGN_BANDWIDTHS).item() == pytest.approx(expected, rel=1e-5)
    assert per_class_mmd(real, real, torch.tensor([1, 1])).item() == pytest.approx(0.0, abs=1e-6)
    labels = torch.tensor([0, 0, 3, 3])
    both = per_class_mmd(torch.cat([real, real]), torch.cat([fake, real]), labels)
    assert both.item() == pytest.approx(expected, rel=1e-5)  # class 3 matches exactly: adds 0


def test_adversarial_gradient_signs():
    """D gets the gradient of -L_adv (it maximises eq. 7), G the gradient of +L_adv (it minimises)."""
    torch.manual_seed(0)
    generator, discriminator = FeatureGenerator(4, 2, 8, 6), FeatureDiscriminator(6, 8)
    e, z, real = torch.randn(3, 4), torch.randn(3, 2), torch.randn(3, 6)

    def l_adv():  # eq. 7, written out
        fake = generator(e, z)
        d_real, d_fake = torch.sigmoid(discriminator(real)), torch.sigmoid(discriminator(fake))
        return torch.log(d_real).mean() + torch.log(1 - d_fake).mean()

    params = list(generator.parameters()) + list(discriminator.parameters())
    reference = torch.autograd.grad(l_adv(), params)
    obtained = torch.autograd.grad(adversarial_loss(discriminator, real, generator(e, z)), params)
    n_g = len(list(generator.parameters()))
    for got, ref in zip(obtained[:n_g], reference[:n_g]):
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-6)  # G: descend L_adv
    for got, ref in zip(obtained[n_g:], reference[n_g:]):
        torch.testing.assert_close(got, -ref, rtol=1e-4, atol=1e-6)  # D: ascend L_adv
    assert adversarial_loss(discriminator, real, generator(e, z)).item() == pytest.approx(
        -l_adv().item(), rel=1e-5
    )


def test_ast_weights_max_one_ordering_and_infinite_temperature():
    p = torch.tensor([0.9, 0.3, 0.6])
    w = annealed_weights(p, temperature=2.0)
    assert w.max().item() == pytest.approx(1.0)
    assert w[1] < w[2] < w[0]
    assert w[1].item() == pytest.approx(math.exp((0.3 - 0.9) / 2.0), rel=1e-6)
    torch.testing.assert_close(annealed_weights(p, temperature=1e9), torch.ones(3))
    assert annealed_weights(p, temperature=0.01)[1].item() < 1e-20  # sharp: low confidences vanish


def test_st_thresholds_keep_the_top_fraction_of_each_unseen_class_over_batches():
    # classes 0 seen, 1 and 2 unseen; batch 1: 4 unlabeled pixels, one labelled (0)
    probs = torch.tensor(
        [[0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6], [0.7, 0.2, 0.1], [0.1, 0.9, 0.0]]
    )
    probs = probs.t().reshape(1, 3, 1, 5)
    labels = torch.tensor([[[255, 255, 255, 255, 0]]])
    unseen = torch.tensor([1, 2])
    first = confidence_histogram(probs, labels, unseen, bins=10)
    # class 1: 0.8 (bin 8) and 0.6 (bin 6); pixel 4 is labelled; class 2: 0.6; pixel 3 is seen
    assert first[0].nonzero().flatten().tolist() == [6, 8] and first[1].tolist()[6] == 1
    second = torch.tensor([[0.05, 0.95, 0.0], [0.1, 0.45, 0.45]]).t().reshape(1, 3, 1, 2)
    total = first + confidence_histogram(second, torch.full((1, 1, 2), 255), unseen, bins=10)
    # over both batches class 1 has 0.95, 0.8, 0.6, 0.45: the top 75% (3 of 4) are >= 0.6
    thresholds = fraction_thresholds(total, 0.75)
    assert thresholds[0].item() == pytest.approx(0.6) and thresholds[1].item() == pytest.approx(0.6)
    assert fraction_thresholds(first, 0.5)[0].item() == pytest.approx(0.8)  # the top 1 of 2
    assert fraction_thresholds(torch.zeros(1, 10, dtype=torch.long), 0.75).item() == math.inf
    st = pseudo_label_unseen(probs, labels, unseen, "st", thresholds=torch.tensor([0.7, 0.5]))
    assert st.labels.tolist() == [
        [[1, 255, 2, 255, 255]]
    ]  # 0.6 < 0.7 for class 1; 3 seen; 4 labelled
    assert st.weights.tolist() == [[[1.0, 0.0, 1.0, 0.0, 0.0]]]
    ast = pseudo_label_unseen(probs, labels, unseen, "ast", temperature=2.0)
    assert ast.labels.tolist() == [[[1, 1, 2, 255, 255]]]
    torch.testing.assert_close(
        ast.weights[0, 0, :3], annealed_weights(torch.tensor([0.8, 0.6, 0.6]), 2.0)
    )


def test_weighted_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]]).reshape(
        1, 2, 1, 2
    )  # pixel 0: [2, 0], pixel 1: [0, 0]
    labels = torch.tensor([[[0, 255]]])
    assert weighted_cross_entropy(logits, labels).item() == pytest.approx(
        math.log(1 + math.exp(-2)), rel=1e-6
    )
    labels = torch.tensor([[[1, 0]]])
    weights = torch.tensor([[[0.5, 1.0]]])
    expected = (0.5 * math.log(1 + math.exp(2)) + math.log(2)) / 2
    assert weighted_cross_entropy(logits, labels, weights).item() == pytest.approx(
        expected, rel=1e-6
    )


@pytest.mark.parametrize("sim_type", ["multihead_attention", "self_attention", "attention", "conv"])
def test_sim_shapes_and_deterministic_latent_at_inference(sim_type):
    sim = SpatialInformationModule(
        8,
        PositionalEncoder("relative", dim=4),
        feature_dim=16,
        latent_dim=3,
        sim_type=sim_type,
        heads=2,
        feedforward=32,
        hidden=8,
    )
    out = sim(torch.randn(2, 8, 5, 7))
    assert out.features.shape == (2, 16, 5, 7) and out.latent.shape == (2, 3, 5, 7)
    assert not torch.equal(out.latent, out.mean)  # sampled while training
    sim.eval()
    x = torch.randn(1, 8, 4, 4)
    torch.testing.assert_close(sim(x).latent, sim(x).mean)


def test_sim_variants_differ_where_the_paper_says():
    def sim(sim_type, pe="relative", **kwargs):
        return SpatialInformationModule(
            8, PositionalEncoder(pe, dim=4), 16, 3, sim_type, 2, 32, 1, 8
        )

    def count(module):
        return sum(p.numel() for p in module.parameters())

    # (D) minus (C): the multi-head block's output projection, d x d + d (both have Q, K, V maps)
    assert count(sim("multihead_attention")) - count(sim("self_attention")) == 16 * 16 + 16
    # (B): three scales of dilation 1, 2, 5 and three attention maps
    attention = sim("attention").blocks[0]
    assert [c.dilation for c in attention.scales] == [(1, 1), (2, 2), (5, 5)]
    assert attention.attention.out_channels == 3
    # w/o SIM: no positional encoding, no reparameterisation, z ~ N(0, I), KL of zero
    none = sim("none", pe="none")
    out = none(torch.randn(2, 8, 5, 7))
    assert out.latent.shape == (2, 3, 5, 7) and not hasattr(none, "mean")
    assert (out.mean == 0).all() and (out.log_var == 0).all()
    with pytest.raises(ValueError, match="POSITIONAL_ENCODING 'none'"):
        sim("none")


def test_random_relabel_keeps_regions_and_ignore():
    labels = torch.tensor([[[0, 0, 3], [255, 3, 3]]])
    for seed in range(5):
        out = random_relabel(labels, num_classes=11, generator=torch.Generator().manual_seed(seed))
        assert out[0, 1, 0] == 255
        assert out[0, 0, 0] == out[0, 0, 1] and out[0, 0, 2] == out[0, 1, 1] == out[0, 1, 2]
        assert 0 <= out[0, 0, 0] < 11 and 0 <= out[0, 0, 2] < 11
    drawn = {
        random_relabel(labels, 11, generator=torch.Generator().manual_seed(s))[0, 0, 0].item()
        for s in range(40)
    }
    assert len(drawn) > 5  # classes are drawn, not copied
