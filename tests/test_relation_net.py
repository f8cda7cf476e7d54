"""The Relation Network (Zhang & Khriyenko): relation module shapes and range, the episode sampler,
eq. 5 on the episode's classes only, label spaces at inference, binary ZLSS on real CamVid labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from PIL import Image

from zsseg_d2.engine import load_config
from zsseg_d2.methods.relation_net import (
    RelationHead,
    RelationModule,
    binary_intersection_union,
    binary_prediction,
    episode_targets,
    sample_episode,
)
from zsseg_d2.methods.relation_net.loss import relation_bce

TINY = str(
    Path(__file__).resolve().parents[1] / "configs" / "relation_net" / "tiny" / "camvid.yaml"
)


def test_fused_pairs_equal_a_1x1_convolution_of_the_tiled_concatenation():
    """Every (image, class) pair: [f_2(x); f_1(v_c) tiled] through one 1x1 convolution."""
    module = RelationModule(visual_channels=3, semantic_channels=2, channels=4)
    visual, semantic = torch.randn(2, 3, 5, 6), torch.randn(4, 2)
    weight = torch.cat([module.visual_proj.weight[:, :, 0, 0], module.semantic_proj.weight], dim=1)
    for b in range(2):
        for c in range(4):
            concat = torch.cat(
                [visual[b], semantic[c][:, None, None].expand(2, 5, 6)]
            )  # tiled class features
            expected = (
                torch.einsum("oi,ihw->ohw", weight, concat) + module.visual_proj.bias[:, None, None]
            )
            torch.testing.assert_close(module.fused_pairs(visual, semantic)[b * 4 + c], expected)


def test_relation_head_shapes_and_score_range():
    head = RelationHead(visual_channels=6, embed_dim=5, word_hidden=4, relation_channels=8).eval()
    logits = head(torch.randn(2, 6, 7, 9), torch.randn(3, 5))
    assert logits.shape == (2, 3, 7, 9)
    scores = logits.sigmoid()
    assert ((scores > 0) & (scores < 1)).all()
    # each (image, class) score depends on that class's vector only
    two = head(torch.randn(1, 6, 7, 9).repeat(2, 1, 1, 1), torch.randn(2, 5))
    one = head(torch.randn(1, 6, 7, 9), torch.randn(1, 5))
    assert two.shape == (2, 2, 7, 9) and one.shape == (1, 1, 7, 9)


def test_relation_score_of_a_class_does_not_depend_on_the_other_classes():
    head = RelationHead(6, 5, 4, 8).eval()
    visual, vectors = torch.randn(1, 6, 4, 4), torch.randn(3, 5)
    torch.testing.assert_close(head(visual, vectors)[:, 1], head(visual, vectors[1:2])[:, 0])


def test_episode_sampler_draws_seen_classes_only():
    unseen = {15, 16, 17, 18, 19}  # VOC's last five
    seen = [i for i in range(20) if i not in unseen]
    sizes = set()
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        episode = sample_episode(20, seen, 10, "seen", generator=g)
        assert (
            len(episode) == 10
            and not set(episode.tolist()) & unseen
            and len(set(episode.tolist())) == 10
        )
        episode = sample_episode(20, seen, 10, "all", generator=g)
        assert not set(episode.tolist()) & unseen and len(episode) <= 10
        sizes.add(len(episode))
    assert min(sizes) < 10  # "all": 10 drawn from 20, the unseen among them dropped
    assert (
        len(sample_episode(11, [0, 1, 2], 10, "seen")) == 3
    )  # fewer seen classes than 10: all of them
    with pytest.raises(ValueError, match="EPISODE_POOL"):
        sample_episode(20, seen, 10, "unseen")


def test_ignored_classes_carry_no_loss_and_eq5_by_hand():
    labels = torch.tensor([[[0, 1, 2, 255]]])  # classes 0 and 2 in the episode; 1 unselected
    episode = torch.tensor([0, 2])
    targets = episode_targets(labels, episode)
    assert targets.valid.tolist() == [[[True, False, True, False]]]
    logits = torch.tensor([[[[1.0, 5.0, -1.0, 3.0]], [[0.0, -2.0, 2.0, 7.0]]]])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731  softplus: BCE(logit, 0); BCE(logit, 1) = softplus(-logit)
    expected = (
        sp(-1.0) + sp(0.0) + sp(-1.0) + sp(-2.0)
    ) / 4  # pixel 0 is class 0, pixel 2 is class 2
    assert relation_bce(logits, targets.targets, targets.valid).item() == pytest.approx(
        expected, rel=1e-6
    )
    logits.requires_grad_(True)
    relation_bce(logits, targets.targets, targets.valid).backward()
    assert logits.grad[..., 1].abs().sum() == 0 and logits.grad[..., 3].abs().sum() == 0
    assert logits.grad[..., 0].abs().sum() > 0


def _model(*opts: str):
    return build_model(load_config(TINY, list(opts)))


def test_unknown_episode_pool_is_named():
    with pytest.raises(ValueError, match="EPISODE_POOL"):
        _model("MODEL.RELATION_NET.EPISODE_POOL", "unseen")


def test_training_returns_the_episode_loss_and_learns():
    model = _model().train()
    labels = torch.randint(0, 11, (1, 32, 32))
    labels[torch.isin(labels, torch.tensor([5, 8, 10]))] = 255
    inputs = [
        {"image": torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8), "sem_seg": lab}
        for lab in labels
    ]
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(3):
        loss = model(inputs)["loss_relation"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_inference_label_spaces_and_binary_mode():
    model = _model("MODEL.RELATION_NET.BINARY", "True").eval()
    x = {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8), "height": 50, "width": 70}
    with torch.no_grad():
        out = model([x])[0]
        assert out["sem_seg"].shape == (11, 50, 70)
        assert ((out["sem_seg"] > 0) & (out["sem_seg"] < 1)).all()
        torch.testing.assert_close(out["binary_sem_seg"], out["sem_seg"] >= 0.5)
        model.set_vocabulary(["tree", "car", "bicyclist"])  # ZLSS: the unseen classes only
        zlss = model([x])[0]["sem_seg"]
    torch.testing.assert_close(zlss, out["sem_seg"][[5, 8, 10]])  # the same scores, fewer classes


def test_binary_iou_on_real_camvid_labels(shared_data):
    label_file = sorted((shared_data / "camvid" / "val" / "labels").glob("*.png"))[0]
    labels = torch.from_numpy(np.array(Image.open(label_file), dtype=np.int64))
    labels[labels == 11] = 255  # void
    road = 3
    truth = labels == road
    predicted = truth.clone()
    rows = torch.nonzero(truth.any(dim=1)).squeeze(1)
    predicted[rows[: len(rows) // 2]] = False  # drop the top half of the road rows
    scores = predicted.float() * 0.9 + 0.05
    inter, union = binary_intersection_union(binary_prediction(scores), labels, road)
    assert inter == int(predicted.sum()) and union == int(truth.sum())
    assert 0 < inter < union


def test_zlss_and_gzlss_label_spaces_on_hand_made_relation_scores(shared_data):
    """Each pixel's true class scores 0.6, but unseen pixels score 0.9 for 'sky' (seen): GZLSS
    (all classes) misses every unseen pixel; ZLSS (unseen classes only) gets them all right."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zsseg_d2.data.sem_seg_io import load_sem_seg
    from zsseg_d2.evaluation import GZS3Evaluator

    meta, unseen = MetadataCatalog.get("camvid_val"), [5, 8, 10]
    inputs, outputs = [], []
    for d in DatasetCatalog.get("camvid_val")[:3]:
        gt = torch.from_numpy(load_sem_seg(d["sem_seg_file_name"], meta).astype(np.int64))
        scores = torch.full((11, *gt.shape), 0.1)
        scores.scatter_(0, gt.clamp(max=10)[None], 0.6)
        scores[0][torch.isin(gt, torch.tensor(unseen))] = 0.9
        inputs.append({"file_name": d["file_name"]})
        outputs.append({"sem_seg": scores})
    results = {}
    for space in ("all", "unseen"):
        evaluator = GZS3Evaluator("camvid_val", distributed=False, label_space=space)
        evaluator.reset()
        evaluator.process(inputs, outputs)
        results[space] = evaluator.evaluate()["sem_seg"]
    assert results["all"]["mIoU(U)"] == 0 and results["all"]["hIoU"] == 0
    assert results["unseen"]["mIoU"] == pytest.approx(100)
