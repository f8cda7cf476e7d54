"""The SIGN meta-architecture: each step's losses reach the right modules; inference returns dense
scores; the joint optimizer gives G and D Adam at a constant lr beside scheduled SGD."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detectron2.modeling import build_model

from zsseg_d2.engine import load_config
from zsseg_d2.engine.joint_optimizer import JointOptimizer
from zsseg_d2.engine.solver import build_lr_scheduler, build_optimizer

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
    model = _model("MODEL.STAGE", "self_training", "MODEL.SIGN.SELF_TRAINING", mode)
    losses = model(_inputs())
    assert set(losses) == {"loss_ce", "loss_ce_synthetic", "loss_ce_pseudo"}
    assert torch.isfinite(losses["loss_ce_pseudo"])


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
        assert (train.MODEL.SIGN.KL_WEIGHT, train.MODEL.SIGN.MMD_WEIGHT, train.SOLVER.BASE_LR) == (
            100.0,
            50.0,
            2.5e-4,
        )
    pe = [
        load_config(
            str(root / "ablations" / f"voc_15-5_pe_{m}.yaml")
        ).MODEL.SIGN.POSITIONAL_ENCODING
        for m in ("none", "absolute", "absolute_interp")
    ]
    assert pe == ["none", "absolute", "absolute_interp"]
    from detectron2.data import MetadataCatalog

    assert sorted(MetadataCatalog.get("pascal_context_33_sign_train").unseen_classes) == [
        "cat",
        "cow",
        "motorbike",
        "sofa",
    ]
