"""Every shipped config loads, and each paper-table config pins the paper's recipe: learning rate,
schedule, unseen-label mode, ensemble, loss switches and the earlier stage whose weights it starts
from (which must exist, else a clear error instead of a silent ImageNet start)."""

from __future__ import annotations

from pathlib import Path

import pytest
from detectron2.modeling import META_ARCH_REGISTRY

import zsseg_d2  # noqa: F401  (registers the meta-architectures)
from zsseg_d2.engine import load_config
from zsseg_d2.engine.stage_weights import check_stage_weights

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))


def _cfg(name: str):
    return load_config(str(ROOT / "configs" / "cel" / name))


@pytest.mark.parametrize(
    "path", CONFIGS, ids=[str(p.relative_to(ROOT / "configs")) for p in CONFIGS]
)
def test_config_loads(path):
    cfg = load_config(str(path))
    assert cfg.MODEL.META_ARCHITECTURE in META_ARCH_REGISTRY  # CEL, SZN, ...
    if (
        cfg.MODEL.WEIGHTS_FROM
    ):  # a later stage starts where its earlier stage writes model_final.pth
        earlier = load_config(str(ROOT / cfg.MODEL.WEIGHTS_FROM))
        assert cfg.MODEL.WEIGHTS == f"{earlier.OUTPUT_DIR}/model_final.pth"


# config -> (lr, scheduler, iterations, steps, unseen labels, ensemble lambda or None, earlier stage)
COCO, VOC = (
    "configs/cel/coco_stuff/supervised_seen_R50.yaml",
    "configs/cel/voc/supervised_seen_R50.yaml",
)
CEL_COCO = (5e-5, "WarmupMultiStepLR", 50000, (44000, 48000))
PAPER_ROWS = {
    "coco_stuff/cel_R50_156-15.yaml": (
        *CEL_COCO,
        "pseudo",
        0.8,
        COCO,
    ),  # Tables 1, 4 (on), 5 pseudo
    "coco_stuff/ablations/table4_ensemble_off.yaml": (
        *CEL_COCO,
        "pseudo",
        None,
        "configs/cel/coco_stuff/cel_R50_156-15.yaml",
    ),
    "coco_stuff/ablations/table5_labels_none.yaml": (*CEL_COCO, "none", 0.8, COCO),
    "coco_stuff/ablations/table5_labels_gt.yaml": (*CEL_COCO, "gt", 0.8, COCO),
    "coco_stuff/ablations/table6_ce.yaml": (*CEL_COCO, "gt", 0.8, COCO),
    "coco_stuff/ablations/table6_ce_kl.yaml": (*CEL_COCO, "gt", 0.8, COCO),
    "coco_stuff/ablations/table6_ce_kl_r.yaml": (*CEL_COCO, "gt", 0.8, COCO),
    "coco_stuff/ablations/table6_ce_kl_r_p.yaml": (*CEL_COCO, "gt", 0.8, COCO),
    "voc/cel_R50_15-5.yaml": (
        5e-5,
        "WarmupMultiStepLR",
        5000,
        (4400, 4800),
        "pseudo",
        0.7,
        VOC,
    ),  # Tables 2, 4
    "voc/table4_ensemble_off.yaml": (
        5e-5,
        "WarmupMultiStepLR",
        5000,
        (4400, 4800),
        "pseudo",
        None,
        "configs/cel/voc/cel_R50_15-5.yaml",
    ),
    "open_vocab/cel_R50_coco_stuff.yaml": (*CEL_COCO, "none", 0.8, COCO),  # Table 3
    "open_vocab/cel_R50_coco_nouns.yaml": (*CEL_COCO, "none", 0.8, COCO),
    "coco_stuff/supervised_seen_R50.yaml": (
        1e-4,
        "WarmupPolyLR",
        60000,
        None,
        "none",
        None,
        "",
    ),  # stage 0
    "voc/supervised_seen_R50.yaml": (1e-4, "WarmupPolyLR", 20000, None, "none", None, ""),
}


@pytest.mark.parametrize("name", PAPER_ROWS)
def test_paper_row_recipe(name):
    lr, scheduler, iters, steps, unseen_mode, lam, earlier = PAPER_ROWS[name]
    cfg = _cfg(name)
    solver = cfg.SOLVER
    assert (solver.BASE_LR, solver.LR_SCHEDULER_NAME, solver.MAX_ITER) == (lr, scheduler, iters)
    assert (
        solver.OPTIMIZER,
        solver.WEIGHT_DECAY,
        solver.BACKBONE_MULTIPLIER,
        solver.IMS_PER_BATCH,
    ) == ("ADAMW", 1e-4, 0.1, 8)
    assert steps is None or (tuple(solver.STEPS), solver.GAMMA) == (steps, 0.1)
    assert solver.AMP.ENABLED and cfg.MODEL.TRANSFORMER_DECODER.NUM_QUERIES == 100
    assert cfg.INPUT.IMAGE_LABELS.UNSEEN_MODE == unseen_mode
    assert cfg.MODEL.CLIP.ENSEMBLE == (lam is not None) and (
        lam is None or cfg.MODEL.CLIP.ENSEMBLE_LAMBDA == lam
    )
    assert cfg.MODEL.WEIGHTS_FROM == earlier
    if not earlier:
        assert cfg.MODEL.WEIGHTS.startswith("detectron2://ImageNetPretrained")


def test_stage_zero_is_supervised_mask2former_on_seen_classes():
    for name in ("coco_stuff/supervised_seen_R50.yaml", "voc/supervised_seen_R50.yaml"):
        cfg = _cfg(name)
        loss = cfg.MODEL.CEL.LOSS
        assert (cfg.MODEL.CEL.BACKGROUND, loss.USE_KL, loss.USE_RANK) == ("learned", False, False)


def test_table6_rows_switch_one_thing_each_and_row4_is_table5_gt():
    rows = [
        _cfg(f"coco_stuff/ablations/{name}.yaml")
        for name in ("table6_ce", "table6_ce_kl", "table6_ce_kl_r", "table6_ce_kl_r_p")
    ]
    switches = [
        (
            c.MODEL.CEL.BACKGROUND,
            c.MODEL.CEL.LOSS.USE_KL,
            c.MODEL.CEL.LOSS.USE_RANK,
            c.MODEL.CLIP.PROMPT_TEMPLATES,
        )
        for c in rows
    ]
    assert switches == [
        ("learned", False, False, "single"),  # CE with the 'background' embedding
        ("none", True, False, "single"),
        ("none", True, True, "single"),
        ("none", True, True, "imagenet"),
    ]
    assert rows[3] == _cfg("coco_stuff/ablations/table5_labels_gt.yaml")  # one model, trained once
    assert _cfg("open_vocab/cel_R50_coco_stuff.yaml") == _cfg(
        "coco_stuff/ablations/table5_labels_none.yaml"
    )
    assert _cfg("open_vocab/cel_R50_coco_nouns.yaml").INPUT.IMAGE_LABELS.NOUN_FILE


def test_transfer_evaluation_knows_the_training_split():
    cfg = _cfg("open_vocab/eval_transfer.yaml")
    assert cfg.DATASETS.TRAIN == ("coco_stuff_171_train",) and cfg.MODEL.CLIP.ENSEMBLE
    assert len(cfg.DATASETS.TEST) == 5


def test_missing_stage_weights_name_the_stage_to_run(tmp_path):
    cfg = _cfg("coco_stuff/cel_R50_156-15.yaml")
    with pytest.raises(
        FileNotFoundError,
        match="run `python tools/train_net.py --config-file configs/cel/coco_stuff/supervised_seen_R50.yaml`",
    ):
        check_stage_weights(cfg)
    cfg.MODEL.WEIGHTS = str(tmp_path / "model_final.pth")
    (tmp_path / "model_final.pth").write_bytes(b"")
    check_stage_weights(cfg)  # present: no error
    cfg.MODEL.WEIGHTS, cfg.MODEL.WEIGHTS_FROM = "nowhere.pth", ""
    with pytest.raises(FileNotFoundError, match="'nowhere.pth' does not exist; pass MODEL.WEIGHTS"):
        check_stage_weights(cfg)
    check_stage_weights(_cfg("coco_stuff/supervised_seen_R50.yaml"))  # a URL: left to Detectron2
