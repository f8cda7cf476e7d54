"""ZS3Net stages: losses per stage with hand-derived values (weighted CE, ZS-MMD over unseen classes,
which pixels get generated features), what trains, confident-sample selection, the ZS-MMD start,
the equal-weight ablation, inference, errors, the paper configs' chain."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_backbone
from helpers import TableSource, split_of

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.engine.joint_optimizer import JointOptimizer
from zsseg_d2.engine.solver import build_optimizer
from zsseg_d2.methods.zs3net import GMMNGenerator
from zsseg_d2.methods.zs3net.segmentor import (
    ZS3Net,
    select_confident,
)

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["road", "sky", "tree", "car"]  # tree and car unseen
UNSEEN = torch.tensor([False, False, True, True])
EMBED_DIM = 6


def _backbone():
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_deeplab_v3plus_backbone"
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    res, deeplab = cfg.MODEL.RESNETS, cfg.MODEL.DEEPLAB
    res.STEM_OUT_CHANNELS, res.RES2_OUT_CHANNELS, res.WIDTH_PER_GROUP, res.NORM = 8, 16, 4, "BN"
    (
        deeplab.BLOCKS_PER_STAGE,
        deeplab.ASPP_CHANNELS,
        deeplab.LOW_LEVEL_CHANNELS,
        deeplab.OUT_CHANNELS,
    ) = [1, 1, 1, 1], 8, 4, 8
    return build_backbone(cfg)


def _model(stage: str, **kwargs) -> ZS3Net:
    backbone = _backbone()
    return ZS3Net(
        backbone=backbone,
        generator=GMMNGenerator(EMBED_DIM, 8, hidden_dim=8),
        semantic_source=TableSource(CLASSES, torch.eye(4, EMBED_DIM)),
        split=split_of(CLASSES, ["tree", "car"]),
        test_vocabulary=CLASSES,
        stage=stage,
        pixel_mean=[0.0, 0.0, 0.0],
        pixel_std=[1.0, 1.0, 1.0],
        generator_batch=16,
        **kwargs,
    )


def _batch(with_unseen: bool):
    label = torch.zeros(32, 32, dtype=torch.long)
    label[16:] = 1
    if with_unseen:
        label[:, :8] = 2
    label[0, 0] = 255
    return [
        {"image": torch.rand(3, 32, 32) * 255, "sem_seg": label, "height": 32, "width": 32}
        for _ in range(2)
    ]


def _grads(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_select_confident_needs_the_right_class_and_confidence_above_tau():
    probs = torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.75, 0.25], [0.3, 0.7]])
    assert select_confident(probs, 1, 0.75).tolist() == [True, True, False, False]
    # Right class but not above tau (strict), wrong arg-max despite high probability for class 0.
    assert select_confident(probs, 0, 0.75).tolist() == [False, False, False, False]
    assert select_confident(probs, 0, 0.5).tolist() == [False, False, True, False]


def test_segmentation_stage_trains_backbone_and_seen_columns_only():
    model = _model("segmentation").train()
    losses = model(_batch(with_unseen=False))
    assert set(losses) == {"loss_sem_seg"}
    losses["loss_sem_seg"].backward()
    assert _grads(model.backbone)
    grad = model.classifier.weight.grad.flatten(1)
    assert (
        grad[~UNSEEN].abs().sum() > 0 and grad[UNSEEN].abs().sum() == 0
    )  # unseen columns untouched
    assert not any(p.requires_grad for p in model.generator.parameters())


def test_generator_stage_freezes_the_backbone_and_routes_each_loss_to_its_module():
    model = _model("generator").train()
    assert not model.backbone.training  # batch-norm statistics frozen too
    losses = model(_batch(with_unseen=False))
    assert set(losses) == {"loss_sem_seg", "loss_gmmn"} and losses["loss_gmmn"] > 0
    losses["loss_gmmn"].backward()
    assert _grads(model.generator) and model.classifier.weight.grad is None
    model.zero_grad()
    losses = model(_batch(with_unseen=False))
    losses["loss_sem_seg"].backward()
    assert _grads(model.classifier) and not _grads(model.generator)
    assert all(p.grad is None for p in model.backbone.parameters())


def test_images_with_unseen_pixels_train_the_classifier_on_generated_features_only():
    model = _model("generator").train()
    losses = model(_batch(with_unseen=True))
    # ZS3Net's code: no generator update from an image holding unseen pixels.
    assert losses["loss_gmmn"].item() == 0.0
    losses["loss_sem_seg"].backward()
    assert _grads(model.classifier) and model.classifier.weight.grad.flatten(1)[2].abs().sum() > 0
    # "all": the seen classes of that image train the generator as well.
    assert (
        _model("generator", generator_images="all")
        .train()(_batch(with_unseen=True))["loss_gmmn"]
        .item()
        > 0
    )


def test_unseen_classes_weigh_100_in_the_classifier_cross_entropy():
    """With a constant classifier (weights 0, biases b) every pixel has p = softmax(b): the loss is
    sum_i w(y_i) (-log p(y_i)) / sum_i w(y_i), w = 100 for unseen classes and 1 for seen ones."""
    model = _model("generator", unseen_class_weight=100.0).train()
    bias = torch.tensor([0.5, -1.0, 2.0, 0.0])
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(bias)
    batch = _batch(with_unseen=True)  # per image: 24x16 road, 24x16 sky, 8x32 tree (unseen), 1 void
    label = batch[0]["sem_seg"]
    counts = [int((label == c).sum()) for c in range(4)]
    assert counts == [16 * 24, 16 * 24, 32 * 8 - 1, 0]  # road, sky, tree (one void pixel), car
    nll = -torch.log_softmax(bias, dim=0)
    weights = [1.0, 1.0, 100.0, 100.0]
    expected = sum(w * n * x for w, n, x in zip(weights, counts, nll.tolist())) / sum(
        w * n for w, n in zip(weights, counts)
    )
    loss = model(batch)["loss_sem_seg"].item()
    assert loss == pytest.approx(expected, rel=1e-5)


class _EmbeddingProjection(torch.nn.Module):
    """A deterministic stand-in for the GMMN: feature = 10 * embedding[:8] + 1 (no noise)."""

    embed_dim = EMBED_DIM

    def forward(self, embeddings, noise=None):
        padded = torch.nn.functional.pad(embeddings, (0, 8 - embeddings.shape[1]))
        return 10.0 * padded + 1.0


def test_every_labelled_pixel_of_an_image_with_unseen_pixels_gets_its_class_feature():
    """ZS3Net's step: an image holding unseen pixels is classified on generated features only, at
    every labelled pixel from the pixel's own class (seen pixels too); ignored pixels are 0; an
    image without unseen pixels keeps its real features."""
    model = _model("generator").train()
    model.generator = _EmbeddingProjection()
    seen_only, with_unseen = _batch(with_unseen=False)[0], _batch(with_unseen=True)[0]
    captured = {}

    def capture(features, size):
        captured["features"] = features
        return torch.zeros(features.shape[0], 4, *size)

    model._logits = capture
    model([seen_only, with_unseen])
    images = model.preprocess([seen_only, with_unseen])
    real = model.backbone(images.tensor)["dense"]
    used = captured["features"]
    assert torch.equal(used[0], real[0])  # no unseen pixel: real features
    small = torch.nn.functional.interpolate(
        with_unseen["sem_seg"][None, None].float(), size=used.shape[-2:], mode="nearest"
    )[0, 0].long()
    class_feature = 10.0 * torch.eye(4, 8) + 1.0  # embeddings are the rows of eye(4, 6)
    for y in range(used.shape[-2]):
        for x in range(used.shape[-1]):
            c = int(small[y, x])
            expected = torch.zeros(8) if c == 255 else class_feature[c]
            assert torch.equal(used[1, :, y, x], expected), (y, x, c)
    assert (small == 0).any() and (small == 2).any()


def _zs_mmd_by_eq2(a, c, b, bandwidths):
    """Eq. 2 as the paper writes it, with explicit double sums."""

    def k(x, y):
        return sum(math.exp(-float(((x - y) ** 2).sum()) / (2 * s)) for s in bandwidths)

    q, p, total = len(a), len(b), float(c.sum())
    aa = sum(c[i] * c[j] * k(a[i], a[j]) for i in range(q) for j in range(q)) / total**2
    ab = sum(c[i] * k(a[i], b[j]) for i in range(q) for j in range(p)) * 2 / (p * total)
    bb = sum(k(b[i], b[j]) for i in range(p) for j in range(p)) / p**2
    return float(aa - ab + bb)


@pytest.mark.parametrize("equal_weight", [False, True])
def test_zs_mmd_is_the_mean_over_unseen_classes_of_eq2(equal_weight):
    """The ZS-MMD term: the mean over the unseen classes (tree, car) of eq. 2, with a = the
    generated features predicted as their class with c_i > tau and b = the generated batch; in
    the equal-weight ablation a is an independent second batch, all weights 1 (nonzero loss)."""
    tau = 0.4
    model = _model("recursive", confidence_threshold=tau,
                   equal_weight=equal_weight).train()  # fmt: skip
    model.generator.eval()  # no dropout: the noise alone is random
    _class2_classifier(model, 3.0)
    bandwidths = model.bandwidths
    torch.manual_seed(5)
    loss = model._recursive_loss()
    torch.manual_seed(5)  # the same draws, by hand
    terms, selected = [], []
    with torch.no_grad():
        for c in (2, 3):
            emb = model.train_class_vectors[c].expand(16, -1)
            b = model.generator(emb)
            if equal_weight:
                a, conf = model.generator(emb), torch.ones(16)
            else:
                probs = torch.softmax(
                    b @ model.classifier.weight.flatten(1).t() + model.classifier.bias, 1
                )
                keep = (probs.argmax(1) == c) & (probs[:, c] > tau)
                a, conf = b[keep], probs[keep, c]
            selected.append(len(a))
            terms.append(_zs_mmd_by_eq2(a, conf, b, bandwidths) if len(a) else 0.0)
    if not equal_weight:
        assert selected[0] > 0 and selected[1] == 0  # only class 2 is ever predicted
    assert loss.item() == pytest.approx(sum(terms) / 2, rel=1e-4, abs=1e-7)
    assert loss.item() > 1e-6
    loss.backward()
    assert _grads(model.generator) and model.classifier.weight.grad is None


def test_zs_mmd_joins_after_the_start_iteration_and_the_count_is_saved():
    model = _model("recursive", zs_mmd_start_iter=2, confidence_threshold=0.5).train()
    _class2_classifier(model, 3.0)
    values = [model(_batch(with_unseen=False))["loss_zs_mmd"].item() for _ in range(3)]
    assert values[0] == values[1] == 0.0 and values[2] > 0  # ZS3Net's training, then ZS-MMD
    assert int(model.stage_iteration) == 3 and "stage_iteration" in model.state_dict()
    resumed = _model("recursive", zs_mmd_start_iter=2, confidence_threshold=0.5)
    resumed.load_state_dict(model.state_dict())
    assert int(resumed.stage_iteration) == 3  # a resumed run does not restart the count


def _class2_classifier(model: ZS3Net, scale: float) -> None:
    """Class 2 (unseen) scores ``scale * sum(feature)``, the others 0: confidences vary per feature."""
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.weight[2] = scale
        model.classifier.bias.zero_()


def test_recursive_stage_adds_zs_mmd_scaled_by_gamma_and_training_only_the_generator():
    model = _model("recursive", zs_mmd_weight=1.0, confidence_threshold=0.5).train()
    _class2_classifier(model, 3.0)
    torch.manual_seed(3)
    unscaled = model(_batch(with_unseen=False))["loss_zs_mmd"].item()
    model.zs_mmd_weight = 0.25
    torch.manual_seed(3)  # the same random draws: only gamma differs
    losses = model(_batch(with_unseen=False))
    assert set(losses) == {"loss_sem_seg", "loss_gmmn", "loss_zs_mmd"}
    assert unscaled > 0 and losses["loss_zs_mmd"].item() == pytest.approx(0.25 * unscaled, rel=1e-5)
    losses["loss_zs_mmd"].backward()
    assert _grads(model.generator) and model.classifier.weight.grad is None


def test_equal_weight_selects_every_feature_of_an_independent_batch():
    # Table III "Equal Weight": all generated features, weights 1. Taken from the batch b itself,
    # eq. 2 would be MMD(b, b) = 0 with no gradient; a is drawn independently, so it trains G.
    model = _model("recursive", confidence_threshold=0.99, equal_weight=True).train()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 20.0, 40.0]))  # tau never passed by 2
    loss = model._recursive_loss()
    loss.backward()
    assert loss.item() > 1e-6 and _grads(model.generator)


def test_inference_returns_dense_probabilities_at_the_output_size():
    model = _model("generator").eval()
    batch = [{"image": torch.rand(3, 32, 48) * 255, "height": 64, "width": 96}]
    with torch.no_grad():
        (result,) = model(batch)
    assert result["sem_seg"].shape == (4, 64, 96)
    assert torch.allclose(result["sem_seg"].sum(0), torch.ones(64, 96), atol=1e-5)


def test_evaluating_other_classes_is_refused():
    model = _model("generator")
    model.set_vocabulary(CLASSES)
    with pytest.raises(
        ValueError, match=r"one output per training class .* cannot score \['zebra'\]"
    ):
        model.set_vocabulary(["road", "zebra"])


def test_generator_gets_adam_and_the_classifier_sgd():
    model = _model("generator")
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.SOLVER.OPTIMIZER, cfg.SOLVER.BASE_LR = "SGD", 0.01
    second = cfg.SOLVER.SECOND_OPTIMIZER
    second.MODULES, second.OPTIMIZER, second.BASE_LR = ["generator"], "ADAM", 2e-4
    optimizer = build_optimizer(cfg, model)
    assert isinstance(optimizer, JointOptimizer)
    sgd, adam = optimizer.scheduled, optimizer.constant
    assert isinstance(sgd, torch.optim.SGD) and isinstance(adam, torch.optim.Adam)
    # The backbone is frozen after the segmentation stage: SGD holds the classifier only.
    assert {id(p) for g in sgd.param_groups for p in g["params"]} == {
        id(p) for p in model.classifier.parameters()
    }
    assert {id(p) for g in adam.param_groups for p in g["params"]} == {
        id(p) for p in model.generator.parameters()
    }
    losses = model.train()(_batch(with_unseen=False))
    sum(losses.values()).backward()
    before = [p.clone() for p in model.generator.parameters()] + [model.classifier.weight.clone()]
    optimizer.step()
    after = list(model.generator.parameters()) + [model.classifier.weight]
    assert all(not torch.equal(a, b) for a, b in zip(before, after))
    # In the segmentation stage the generator is frozen: one plain SGD optimizer.
    assert isinstance(build_optimizer(cfg, _model("segmentation")), torch.optim.SGD)


def test_full_label_mapper_keeps_unseen_pixels_where_the_standard_one_ignores_them(shared_data):
    from detectron2.data import DatasetCatalog

    from zsseg_d2.data.build import build_dataset_mapper
    from zsseg_d2.engine import load_config

    cfg = load_config(str(REPO / "configs" / "zs3net" / "tiny" / "camvid_1_segmentation.yaml"))
    record = DatasetCatalog.get("camvid_train")[0]
    seen_only = build_dataset_mapper(cfg, is_train=False)(record)["sem_seg"]
    cfg.INPUT.DATASET_MAPPER_NAME = "zs_full_label"
    full = build_dataset_mapper(cfg, is_train=False)(record)["sem_seg"]
    differs = seen_only != full
    # Only pixels the standard mapper ignores change, and they become unseen ids (Tree 5, Car 8, Bicyclist 10).
    assert differs.any() and (seen_only[differs] == 255).all()
    assert set(full[differs].unique().tolist()) <= {5, 8, 10}


@pytest.mark.slow
def test_every_stage_trains_through_train_net_and_evaluates_on_camvid(
    tmp_path, shared_data, run_tool
):
    import json

    tiny = REPO / "configs" / "zs3net" / "tiny"
    previous = ""
    for stage in ("1_segmentation", "2_zs3net", "3_zs_mmd"):
        out = tmp_path / stage
        weights = ["MODEL.WEIGHTS", previous] if previous else []
        run_tool("tools/train_net.py", "--config-file", tiny / f"camvid_{stage}.yaml", "OUTPUT_DIR", out,
                 "SOLVER.MAX_ITER", "8", "DATASETS.TEST", "()", *weights)  # fmt: skip
        logged = set().union(
            *(json.loads(line) for line in (out / "metrics.json").read_text().splitlines())
        )
        # Detectron2 logs the single loss of stage 1 as total_loss only.
        expected = {
            "1_segmentation": set(),
            "2_zs3net": {"loss_sem_seg", "loss_gmmn"},
            "3_zs_mmd": {"loss_sem_seg", "loss_gmmn", "loss_zs_mmd"},
        }[stage]
        assert (
            "total_loss" in logged and {k for k in logged if k.startswith("loss_")} == expected
        ), logged
        previous = str(out / "model_final.pth")
    text = run_tool("tools/train_net.py", "--config-file", tiny / "camvid_3_zs_mmd.yaml", "--eval-only",
                    "OUTPUT_DIR", tmp_path / "eval", "MODEL.WEIGHTS", previous).log  # fmt: skip
    assert "mIoU(S) | mIoU(U) | hIoU" in text and "camvid_val" in text
    missing = run_tool("tools/train_net.py", "--config-file", tiny / "camvid_2_zs3net.yaml", "OUTPUT_DIR",
                       tmp_path / "x", "MODEL.WEIGHTS", tmp_path / "none.pth", check=False)  # fmt: skip
    assert (
        missing.returncode != 0
        and "run `python tools/train_net.py --config-file configs/zs3net/tiny/camvid_1_segmentation.yaml` first"
        in missing.stderr
    )


PAPER_TAU_GAMMA = {  # sec. IV-A
    "voc": {
        2: (0.85, 1 / 40),
        4: (0.7, 1 / 80),
        6: (0.7, 1 / 80),
        8: (0.7, 1 / 80),
        10: (0.85, 1 / 40),
    },
    "pascal_context": {
        2: (0.85, 1 / 160),
        4: (0.7, 1 / 160),
        6: (0.85, 1 / 80),
        8: (0.85, 1 / 80),
        10: (0.7, 1 / 160),
    },
}
UNSEEN_ORDER = [
    "cow",
    "motorbike",
    "aeroplane",
    "sofa",
    "cat",
    "tv monitor",
    "train",
    "bottle",
    "chair",
    "potted plant",
]


@pytest.mark.parametrize("dataset", ["voc", "pascal_context"])
@pytest.mark.parametrize("k", [2, 4, 6, 8, 10])
def test_paper_configs_chain_the_stages_with_the_papers_split_tau_and_gamma(dataset, k):
    from detectron2.data import MetadataCatalog

    from zsseg_d2.engine import load_config

    folder = REPO / "configs" / "zs3net" / dataset
    stages = [
        load_config(str(folder / f"k{k}_{name}.yaml"))
        for name in ("1_segmentation", "2_zs3net", "3_zs_mmd")
    ]
    assert [c.MODEL.STAGE for c in stages] == ["segmentation", "generator", "recursive"]
    # both the ZS3Net row (stage 2) and the ZS-MMD row (stage 3) start from stage 1's weights and
    # train the classifier equally long; stage 3 adds ZS-MMD after ZS_MMD_START_ITER iterations
    for current in stages[1:]:
        assert current.MODEL.WEIGHTS == f"{stages[0].OUTPUT_DIR}/model_final.pth"
    assert stages[1].SOLVER.MAX_ITER == stages[2].SOLVER.MAX_ITER
    assert 0 < stages[2].MODEL.ZS3NET.ZS_MMD_START_ITER < stages[2].SOLVER.MAX_ITER
    assert (
        stages[0].DATASETS.UNSEEN_IMAGES == "drop"
        and stages[1].INPUT.DATASET_MAPPER_NAME == "zs_full_label"
    )
    tau, gamma = PAPER_TAU_GAMMA[dataset][k]
    assert (
        stages[2].MODEL.ZS3NET.CONFIDENCE_THRESHOLD,
        stages[2].MODEL.ZS3NET.ZS_MMD_WEIGHT,
    ) == pytest.approx((tau, gamma))
    metadata = MetadataCatalog.get(stages[0].DATASETS.TRAIN[0])
    assert metadata.unseen_classes == UNSEEN_ORDER[:k]
    assert (
        len(metadata.stuff_classes) == (21 if dataset == "voc" else 60)
        and metadata.stuff_classes[0] == "background"
    )
    if dataset == "voc":
        equal = load_config(str(folder / f"k{k}_3_zs_mmd_equal_weight.yaml"))
        assert equal.MODEL.ZS3NET.EQUAL_WEIGHT and not stages[2].MODEL.ZS3NET.EQUAL_WEIGHT
        assert equal.MODEL.ZS3NET.CONFIDENCE_THRESHOLD == tau


def test_voc_classes_all_have_word2vec_vectors(shared_data):
    from zsseg_d2.engine import load_config
    from zsseg_d2.modeling.semantic import build_semantic_source

    cfg = load_config(
        str(REPO / "configs" / "zs3net" / "voc" / "k10_2_zs3net.yaml"),
        ["MODEL.SEMANTIC.FILES", [str(shared_data / "word_vectors" / "voc_21.word2vec.npy")]],
    )
    from detectron2.data import MetadataCatalog

    vectors = build_semantic_source(cfg)(MetadataCatalog.get(cfg.DATASETS.TRAIN[0]).stuff_classes)
    assert vectors.shape == (21, 300) and torch.allclose(
        vectors.norm(dim=1), torch.ones(21), atol=1e-5
    )


def test_prepare_pascal_context_60_makes_background_class_0(tmp_path, monkeypatch):
    import importlib.util

    import numpy as np
    import scipy.io
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from PIL import Image

    from zsseg_d2.data import load_sem_seg
    from zsseg_d2.data.class_lists import load_class_list

    pc = tmp_path / "pascal_context"
    (pc / "trainval").mkdir(parents=True)
    names59 = load_class_list("pascal_context_59").names
    names = sorted(list(names59) + ["accordion", "zebra"])  # two classes outside the 59
    (pc / "labels.txt").write_text("".join(f"{i + 1}: {n}\n" for i, n in enumerate(names)))
    raw = {n: i + 1 for i, n in enumerate(names)}
    label_map = np.array(
        [[0, raw["accordion"], raw["aeroplane"]], [raw["wood"], raw["zebra"], raw["cow"]]]
    )
    lists = tmp_path / "VOCdevkit/VOC2010/ImageSets/Main"
    lists.mkdir(parents=True)
    for split, image_id in (("train", "2008_000001"), ("val", "2008_000002")):
        scipy.io.savemat(pc / f"trainval/{image_id}.mat", {"LabelMap": label_map.astype(np.uint16)})
        (lists / f"{split}.txt").write_text(f"{image_id}\n")
    spec = importlib.util.spec_from_file_location(
        "prepare_pc60", REPO / "datasets" / "prepare_pascal_context_60.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--root", str(tmp_path)])
    label = np.asarray(Image.open(pc / "labels_60/train/2008_000001.png")).tolist()
    # unlabeled and classes outside the 59 -> background 0; the 59 -> 1 + their pascal_context_59 index
    assert label == [[0, 0, 1], [1 + names59.index("wood"), 0, 1 + names59.index("cow")]]
    assert (pc / "labels_60/val/2008_000002.png").is_file()
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    image_dir = tmp_path / "VOCdevkit/VOC2010/JPEGImages"
    image_dir.mkdir(parents=True)
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(image_dir / "2008_000001.jpg")
    (record,) = DatasetCatalog.get("pascal_context_60_zs3_k2_train")
    metadata = MetadataCatalog.get("pascal_context_60_zs3_k2_train")
    loaded = load_sem_seg(record["sem_seg_file_name"], metadata)
    assert [metadata.stuff_classes[i] for i in loaded.flatten()] == [
        "background", "background", "aeroplane", "wood", "background", "cow"]  # fmt: skip


def test_comparison_benchmark_has_both_rows_sharing_the_first_two_stages(monkeypatch):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(
        "bench_methods", REPO / "benchmarks" / "bench_methods.py"
    )
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_methods", bench)  # dataclasses look their module up
    spec.loader.exec_module(bench)
    methods = {m.name: m for m in bench.METHODS}
    zs3net, zs_mmd = methods["ZS3Net"].stages, methods["ZS3Net+ZS-MMD"].stages
    assert zs_mmd[:2] == zs3net  # trained once, shared by both rows
    assert [s.weights_from for s in zs_mmd] == [None, zs_mmd[0].name, zs_mmd[1].name]
    assert all((REPO / s.config).is_file() for s in zs_mmd)
