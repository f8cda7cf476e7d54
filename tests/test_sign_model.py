"""The SIGN meta-architecture: each step's losses reach the right modules, checked at the call
sites (what D sees and each player's gradient, the transfer step's pseudo ground truth, the ST / AST
pseudo labels of the frozen labeler); inference returns dense scores; the joint optimizer gives G
and D Adam at a constant lr beside scheduled SGD; the paper configs chain their steps."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from detectron2.modeling import build_model

from zsseg_d2.engine import load_config
from zsseg_d2.engine.joint_optimizer import JointOptimizer
from zsseg_d2.engine.solver import build_lr_scheduler, build_optimizer
from zsseg_d2.methods.sign import segmentor as sign_segmentor
from zsseg_d2.methods.sign.segmentor import pixels_last

TINY = str(Path(__file__).resolve().parents[1] / "configs" / "sign" / "tiny" / "camvid.yaml")
UNSEEN = {5, 8, 10}  # CamVid's Tree, Car, Bicyclist


def _inputs(n: int = 2, size: int = 64) -> list:
    labels = torch.randint(0, 11, (n, size, size))
    labels[torch.isin(labels, torch.tensor(sorted(UNSEEN)))] = 255  # the mapper hides unseen pixels
    return [
        {"image": torch.randint(0, 255, (3, size, size), dtype=torch.uint8), "sem_seg": label}
        for label in labels
    ]


def _model(*opts: str):
    return build_model(load_config(TINY, list(opts))).train()


def _has_grad(module: torch.nn.Module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_training_step_losses_and_where_they_flow():
    model = _model()
    losses = model(_inputs())
    assert set(losses) == {"loss_ce", "loss_kl", "loss_mmd", "loss_adv"}
    assert all(torch.isfinite(v) for v in losses.values())
    (losses["loss_mmd"] + losses["loss_adv"]).backward()  # eq. 8 trains G and D only
    assert _has_grad(model.generator) and _has_grad(model.discriminator)
    assert not _has_grad(model.sim) and not _has_grad(model.backbone)
    model.zero_grad()
    model(_inputs())["loss_ce"].backward()  # eq. 3 trains E, SIM and C, on seen classes only
    assert _has_grad(model.backbone) and _has_grad(model.sim)
    assert not _has_grad(model.generator)
    unseen_rows = model.classifier.weight.grad[sorted(UNSEEN)]
    assert unseen_rows.abs().sum() == 0 and model.classifier.weight.grad.abs().sum() > 0


def test_transfer_step_trains_the_classifier_only_on_real_and_synthetic_features():
    model = _model("MODEL.STAGE", "transfer")
    trainable = {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier"}
    assert not model.backbone.training and model.sim.training  # frozen statistics, sampled z
    losses = model(_inputs())
    assert set(losses) == {"loss_ce", "loss_ce_synthetic"}
    losses["loss_ce_synthetic"].backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert all(
        p.grad is None for m in (model.generator, model.sim, model.backbone) for p in m.parameters()
    )


@pytest.mark.parametrize("mode", ["st", "ast"])
def test_self_training_step_adds_the_pseudo_label_term(mode):
    model = _model("MODEL.STAGE", "self_training", "MODEL.SIGN.SELF_TRAINING", mode,
                   "MODEL.SIGN.ST_THRESHOLDS", [0.0, 0.0, 0.0])  # fmt: skip
    losses = model(_inputs())
    assert set(losses) == {"loss_ce", "loss_ce_synthetic", "loss_ce_pseudo"}
    assert torch.isfinite(losses["loss_ce_pseudo"])
    without = _model("MODEL.STAGE", "self_training", "MODEL.SIGN.SELF_TRAINING", "st")
    with pytest.raises(ValueError, match="ST thresholds are not computed"):
        without(_inputs())


class _Spy:
    """Wraps a function of ``sign.segmentor`` and keeps the arguments of every call."""

    def __init__(self, monkeypatch, name):
        self.function, self.calls = getattr(sign_segmentor, name), []
        monkeypatch.setattr(sign_segmentor, name, self)

    def __call__(self, *args):
        self.calls.append(args)
        return self.function(*args)


def _spy_generator(model):
    calls = []
    forward = model.generator.forward

    def spy(embeddings, latent):
        calls.append((embeddings, latent))
        return forward(embeddings, latent)

    model.generator.forward = spy
    return calls


def _real_features(model, inputs):
    features, labels = model._features_and_labels(inputs)
    valid = labels != 255
    with torch.no_grad():
        return pixels_last(model.sim(features).features)[valid], labels[valid]


def test_discriminator_sees_real_features_against_the_generators_and_each_player_its_sign(
    monkeypatch,
):
    """Eq. 7-8 at the call site: D gets the SIM features F_x of the labelled pixels (real) and
    G(M(y) ⊕ z) of the same pixels (synthetic); D descends -L_adv, G descends +L_adv."""
    torch.manual_seed(0)
    model = _model()
    adversarial, generated = _Spy(monkeypatch, "adversarial_loss"), _spy_generator(model)
    inputs = _inputs()
    losses = model(inputs)
    ((discriminator, real, fake),) = adversarial.calls
    ((embeddings, latent),) = generated
    expected_real, labels = _real_features(model, inputs)
    assert discriminator is model.discriminator
    torch.testing.assert_close(real, expected_real)
    torch.testing.assert_close(embeddings, model.train_class_vectors[labels])  # e = M(y) per pixel
    losses["loss_adv"].backward()
    # the reference objective, -L_adv of eq. 7 written out, on the same samples
    fake_again = model.generator.__class__.forward(model.generator, embeddings, latent)
    torch.testing.assert_close(fake_again, fake)
    d_real, d_fake = (
        torch.sigmoid(model.discriminator(real)),
        torch.sigmoid(model.discriminator(fake_again)),
    )
    minus_l_adv = -(torch.log(d_real).mean() + torch.log(1 - d_fake).mean())
    d_params, g_params = list(model.discriminator.parameters()), list(model.generator.parameters())
    reference = torch.autograd.grad(minus_l_adv, d_params + g_params)
    for p, ref in zip(d_params, reference[: len(d_params)]):
        torch.testing.assert_close(p.grad, ref, rtol=1e-4, atol=1e-7)  # D: descend -L_adv
    for p, ref in zip(g_params, reference[len(d_params) :]):
        torch.testing.assert_close(p.grad, -ref, rtol=1e-4, atol=1e-7)  # G: descend +L_adv
    assert losses["loss_adv"].item() == pytest.approx(minus_l_adv.item(), rel=1e-5)


def test_transfer_pseudo_ground_truth_holds_unseen_classes_and_feeds_g_and_c(monkeypatch):
    """Eq. 9-10: "a random label including unseen classes is passed to M and G, and the
    synthesized features is used to train C": the synthetic CE's labels are the relabelled map,
    drawn over all classes (unseen ones too), and G's embeddings are those labels' vectors."""
    torch.manual_seed(1)
    model = _model("MODEL.STAGE", "transfer")
    relabel, ce = _Spy(monkeypatch, "random_relabel"), _Spy(monkeypatch, "weighted_cross_entropy")
    generated = _spy_generator(model)
    drawn = set()
    for _ in range(6):
        model(_inputs())
        logits, synthetic_labels, _, _ = ce.calls[-1]  # eq. 9: C on the synthetic features
        embeddings, _ = generated[-1]
        labels = synthetic_labels.flatten()
        torch.testing.assert_close(embeddings, model.train_class_vectors[labels])
        assert logits.shape[1] == 11  # over all classes, seen and unseen
        drawn |= set(labels.tolist())
    assert drawn & UNSEEN, drawn  # 6 x 2 images x ~8 regions, each unseen with probability 3/11
    assert len(relabel.calls) == 6 and relabel.calls[0][1] == 11  # drawn among all 11 classes


@pytest.mark.parametrize("mode", ["ast", "st"])
def test_pseudo_labels_come_from_the_frozen_starting_classifier(monkeypatch, mode):
    """Sec. 3.4 at the call site: the unlabeled pixels the starting model predicts as unseen get
    its class; AST weighs them by eq. 17, exp((p_i - max_j p_j) / T) per image (T = 2), ST keeps
    those at or above the class's threshold. Training C does not move the pseudo labels."""
    torch.manual_seed(2)
    model = _model("MODEL.STAGE", "self_training", "MODEL.SIGN.SELF_TRAINING", mode,
                   "MODEL.SIGN.ST_THRESHOLDS", [0.3, 0.3, 0.3])  # fmt: skip
    with torch.no_grad():  # a classifier that predicts unseen classes often and confidently
        model.classifier.bias[sorted(UNSEEN)] += 3.0
    start_weight, start_bias = model.classifier.weight.clone(), model.classifier.bias.clone()
    ce = _Spy(monkeypatch, "weighted_cross_entropy")
    inputs = _inputs()
    model(inputs)
    _, pseudo_labels, weights, _ = ce.calls[-1]
    features, labels = model._features_and_labels(inputs)
    with torch.no_grad():
        f = pixels_last(model.sim(features).features)
        probs = (f @ start_weight.t() + start_bias).softmax(dim=-1)
    confidence, predicted = probs.max(dim=-1)
    candidate = (labels == 255) & torch.isin(predicted, torch.tensor(sorted(UNSEEN)))
    assert candidate.sum() > 10
    if mode == "ast":
        expected = torch.zeros_like(confidence)
        for b in range(len(inputs)):
            c = confidence[b][candidate[b]]
            expected[b][candidate[b]] = torch.exp((c - c.max()) / 2.0)
    else:
        expected = (candidate & (confidence >= 0.3)).float()
    torch.testing.assert_close(weights, expected, rtol=1e-5, atol=1e-6)
    assert torch.equal(pseudo_labels[expected > 0], predicted[expected > 0])
    assert (pseudo_labels[expected == 0] == 255).all()
    with torch.no_grad():  # C trains; the labeler stays the starting classifier
        model.classifier.weight.mul_(-1.0)
    model(inputs)
    torch.testing.assert_close(ce.calls[-1][2], expected, rtol=1e-5, atol=1e-6)


def test_st_thresholds_come_from_a_pass_over_the_training_images():
    """ZS3Net's ST keeps "the most confident 75% pseudo labels": the threshold of each unseen
    class is set by all its pseudo labels over the data (here two batches), not per batch."""
    torch.manual_seed(3)
    model = _model("MODEL.STAGE", "self_training", "MODEL.SIGN.SELF_TRAINING", "st")
    with torch.no_grad():  # unseen classes predicted often, each of them somewhere
        model.classifier.weight.normal_(std=0.05)
        model.classifier.bias[sorted(UNSEEN)] += 2.0
    batches = [_inputs(), _inputs()]
    model.before_training(lambda: iter(batches))
    confidences = {c: [] for c in sorted(UNSEEN)}
    with torch.no_grad():
        for inputs in batches:
            features, labels = model._features_and_labels(inputs)
            logits = model._classify(model.sim(features).features)
            confidence, predicted = logits.softmax(dim=1).max(dim=1)
            for c in confidences:
                confidences[c] += confidence[(labels == 255) & (predicted == c)].tolist()
    for i, c in enumerate(sorted(UNSEEN)):
        values = sorted(confidences[c], reverse=True)
        threshold = model.st_thresholds[i].item()
        if not values:  # never predicted: no pseudo label of that class
            assert threshold == math.inf
            continue
        kept = values[math.ceil(0.75 * len(values)) - 1]  # the smallest of the top 75%
        assert kept - 1e-4 < threshold <= kept, (c, threshold, kept)
    assert sum(len(v) > 3 for v in confidences.values()) >= 2
    assert not model.labeler_weight.isnan().any()


def test_step_and_self_training_must_agree():
    with pytest.raises(ValueError, match="SELF_TRAINING"):
        _model("MODEL.STAGE", "self_training")
    with pytest.raises(ValueError, match="SELF_TRAINING"):
        _model("MODEL.SIGN.SELF_TRAINING", "ast")


def test_inference_returns_dense_softmax_scores_at_the_output_size():
    model = _model().eval()
    x = _inputs(1, 64)[0]
    x["height"], x["width"] = 90, 120
    with torch.no_grad():
        scores = model([x])[0]["sem_seg"]
    assert scores.shape == (11, 90, 120)
    torch.testing.assert_close(scores.sum(dim=0), torch.ones(90, 120))
    model.set_vocabulary(["car", "sky"])
    with torch.no_grad():
        assert model([x])[0]["sem_seg"].shape == (2, 90, 120)
    with pytest.raises(ValueError, match="cannot score \\['zebra'\\]"):
        model.set_vocabulary(["car", "zebra"])


def test_generator_and_discriminator_get_constant_lr_adam_beside_scheduled_sgd():
    cfg = load_config(TINY, ["SOLVER.MAX_ITER", "10"])
    model = build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    assert isinstance(optimizer, JointOptimizer)
    assert isinstance(optimizer.scheduled, torch.optim.SGD) and isinstance(
        optimizer.constant, torch.optim.Adam
    )
    adam_params = {id(p) for g in optimizer.constant.param_groups for p in g["params"]}
    assert adam_params == {
        id(p) for m in (model.generator, model.discriminator) for p in m.parameters()
    }
    sgd_params = {id(p) for g in optimizer.scheduled.param_groups for p in g["params"]}
    assert not adam_params & sgd_params and len(sgd_params) + len(adam_params) == len(
        list(model.parameters())
    )
    scheduler = build_lr_scheduler(cfg, optimizer)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.constant.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert optimizer.scheduled.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 5 / 10) ** 0.9)
    state = optimizer.state_dict()
    optimizer.load_state_dict(state)
    assert set(state) == {"scheduled", "constant"}


def test_paper_configs_chain_the_steps_and_switch_one_thing_each():
    root = Path(TINY).parents[1]
    for dataset in ("voc_15-5", "pascal_context_33-4", "coco_stuff_156-15"):
        train, transfer, st, ast = (
            load_config(str(root / f"{dataset}{s}.yaml")) for s in ("", "_transfer", "_st", "_ast")
        )
        assert (train.MODEL.STAGE, transfer.MODEL.STAGE, st.MODEL.STAGE) == (
            "train",
            "transfer",
            "self_training",
        )
        assert (st.MODEL.SIGN.SELF_TRAINING, ast.MODEL.SIGN.SELF_TRAINING) == ("st", "ast")
        assert transfer.MODEL.WEIGHTS == f"{train.OUTPUT_DIR}/model_final.pth"
        assert st.MODEL.WEIGHTS == ast.MODEL.WEIGHTS == f"{transfer.OUTPUT_DIR}/model_final.pth"
        assert train.SOLVER.SECOND_OPTIMIZER.MODULES == ["generator", "discriminator"]
        # D^S (Sec. 3.1) for the training and transfer steps; self-training sees D^U's pixels too
        assert (train.DATASETS.UNSEEN_IMAGES, transfer.DATASETS.UNSEEN_IMAGES) == ("drop", "drop")
        assert st.DATASETS.UNSEEN_IMAGES == ast.DATASETS.UNSEEN_IMAGES == "keep"
        assert (train.MODEL.SIGN.KL_WEIGHT, train.MODEL.SIGN.MMD_WEIGHT, train.SOLVER.BASE_LR) == (
            100.0,
            50.0,
            2.5e-4,
        )
    rows = {  # ablation: (positional encoding, SIM) of both steps of its chain
        "pe_none": ("none", "multihead_attention"),
        "pe_absolute": ("absolute", "multihead_attention"),
        "pe_absolute_interp": ("absolute_interp", "multihead_attention"),
        "sim_conv": ("relative", "conv"),
        "sim_attention": ("relative", "attention"),
        "sim_self_attention": ("relative", "self_attention"),
        "sim_none": ("none", "none"),
    }
    for name, setting in rows.items():
        step1, step2 = (
            load_config(str(root / "ablations" / f"voc_15-5_{name}{s}.yaml"))
            for s in ("", "_transfer")
        )
        assert (step1.MODEL.STAGE, step2.MODEL.STAGE) == ("train", "transfer")
        assert step2.MODEL.WEIGHTS == f"{step1.OUTPUT_DIR}/model_final.pth"
        for cfg in (step1, step2):
            assert (cfg.MODEL.SIGN.POSITIONAL_ENCODING, cfg.MODEL.SIGN.SIM_TYPE) == setting
    from detectron2.data import MetadataCatalog

    assert sorted(MetadataCatalog.get("pascal_context_33_sign_train").unseen_classes) == [
        "cat",
        "cow",
        "motorbike",
        "sofa",
    ]
