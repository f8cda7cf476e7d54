"""Seenmask Zero-shot Network: hand-derived losses (eq. 3, 4, 6), bilinear heads, SEI, the two
training steps, the variants' label spaces on a tiny model with real CamVid images, the epoch
schedule and the thesis's VOC data (section 6.1.1)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F
from detectron2.data import DatasetCatalog
from PIL import Image

from zsseg_d2.data import InferenceImageMapper, load_sem_seg
from zsseg_d2.engine import load_config
from zsseg_d2.engine.solver import iterations_for_epochs
from zsseg_d2.engine.trainer import Trainer
from zsseg_d2.methods.szn import (
    UpsamplingHead,
    bilinear_upsampling_weight,
    pixelwise_cosine_loss,
    pixelwise_mse_loss,
    seenmask_bce_loss,
)
from zsseg_d2.methods.szn.segmentor import sei_scores

TINY = "configs/szn/tiny/camvid_step1.yaml"
CAMVID = ["sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
          "pedestrian", "bicyclist"]  # fmt: skip
TRAIN_SEEN = ["sky", "building", "pole", "road", "pavement", "sign symbol"]  # seen - train_unseen
# two labelled pixels and one ignored: v = (1, 0) of class 0, v = (0, 2) of class 1
EMBEDDINGS = torch.tensor([[1.0, 0.0, 9.0], [0.0, 2.0, 9.0]]).view(1, 2, 1, 3)
LABELS = torch.tensor([[[0, 1, 255]]])


def test_cosine_loss_eq6_by_hand():
    vectors = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # pixel 1: 1 - cos((1,0), (1,1)) = 1 - 1/sqrt(2); pixel 2: 1 - cos((0,2), (0,1)) = 0
    expected = (1 - 1 / math.sqrt(2)) / 2
    assert pixelwise_cosine_loss(EMBEDDINGS, LABELS, vectors).item() == pytest.approx(
        expected, abs=1e-6
    )


def test_mse_loss_eq4_by_hand():
    vectors = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # max norm 5: targets (0.6, 0.8), (0, 0.2)
    # pixel 1: 0.4^2 + 0.8^2 = 0.8; pixel 2: 1.8^2 = 3.24
    assert pixelwise_mse_loss(EMBEDDINGS, LABELS, vectors).item() == pytest.approx(
        (0.8 + 3.24) / 2, abs=1e-6
    )


def test_seenmask_bce_eq3_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0], [5.0, -5.0]]).T.reshape(1, 2, 1, 3)
    seen = torch.tensor([[[1, 0, 255]]])  # p_seen = 3/4 labelled seen; p_seen = 1/2 labelled unseen
    expected = (-math.log(0.75) - math.log(0.5)) / 2
    assert seenmask_bce_loss(logits, seen).item() == pytest.approx(expected, abs=1e-6)


def test_losses_without_labelled_pixels_are_zero_with_gradient():
    embeddings = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = pixelwise_cosine_loss(embeddings, torch.full((1, 2, 2), 255), torch.eye(2))
    loss.backward()
    assert loss.item() == 0.0 and embeddings.grad is not None


def test_bilinear_kernel_and_upsampling():
    ramp = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(bilinear_upsampling_weight(2), ramp[:, None] * ramp[None, :])
    head = UpsamplingHead(3, 3, factor=32)
    x = torch.randn(1, 3, 4, 5)
    up = head.upsample(x)
    assert up.shape == (1, 3, 128, 160)
    # away from the border the transposed conv is bilinear interpolation (half-pixel centres)
    reference = F.interpolate(x, scale_factor=32, mode="bilinear", align_corners=False)
    torch.testing.assert_close(
        up[..., 16:-16, 16:-16], reference[..., 16:-16, 16:-16], atol=1e-5, rtol=0
    )
    assert not head.upsample.weight.requires_grad  # fixed, as in the FCN the thesis adapts


def test_sei_picks_nearest_class_of_the_seenmask_group():
    seen_group = torch.tensor([True, False, False])  # class 0 seen; 1, 2 unseen (U or train_unseen)
    cosine = torch.tensor([[0.9, 0.5, 0.7], [0.9, 0.5, 0.7], [0.2, 0.6, 0.1]]).T.reshape(3, 1, 3)
    seenmask = torch.tensor([[True, False, True]])
    scores = sei_scores(cosine, seen_group, seenmask)
    assert scores.argmax(dim=0).tolist() == [[0, 2, 0]]  # pixel 3: seen although class 1 is nearer
    assert (scores[1:].argmax(dim=0) + 1).tolist() == [
        [2, 2, 1]
    ]  # within U: the nearest unseen (ZLSS)


@pytest.fixture(scope="module")
def camvid_batch(shared_data):
    cfg = load_config(TINY)
    return next(iter(Trainer.build_train_loader(cfg)))


def _model(opts=()):
    return Trainer.build_model(load_config(TINY, list(opts)))


def test_step1_trains_embedding_on_train_seen_pixels_only(camvid_batch):
    model = _model().train()
    loss = model(camvid_batch)
    assert set(loss) == {"loss_embedding"}
    loss["loss_embedding"].backward()
    assert model.backbone.fc7.weight.grad.abs().sum() > 0
    assert model.head.heads["seenmask"].score.weight.grad is None
    # the targets: train_unseen (fence, pedestrian) and U pixels are ignored, train_seen kept
    names = model.train_vocabulary
    labels = torch.stack([x["sem_seg"] for x in camvid_batch])
    targets = model.embedding_lut[labels]
    for name in ("fence", "pedestrian", "tree", "car"):
        assert not (targets == names.index(name)).any()
    assert (targets == names.index("road")).sum() == (labels == names.index("road")).sum() > 0


def test_step2_trains_only_the_seenmask_head(camvid_batch, tmp_path):
    weights = tmp_path / "step1.pth"
    step1 = _model()
    torch.save({"model": step1.state_dict()}, weights)
    model = _model(["MODEL.STAGE", "seenmask", "MODEL.WEIGHTS", str(weights)]).train()
    assert not model.backbone.training  # frozen FCN: dropout off
    loss = model(camvid_batch)
    assert set(loss) == {"loss_seenmask"}
    loss["loss_seenmask"].backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.heads.seenmask.score.weight", "head.heads.seenmask.score.bias"}
    labels = torch.stack([x["sem_seg"] for x in camvid_batch])
    seen = model.seenmask_lut[labels]
    names = model.train_vocabulary
    assert (seen[labels == names.index("fence")] == 0).all() and (
        seen[labels == names.index("road")] == 1
    ).all()
    assert (seen[labels == 255] == 255).all()


def test_config_errors(shared_data, tmp_path):
    with pytest.raises(ValueError, match=r"TRAIN_UNSEEN \['tree'\] must be seen classes"):
        _model(["MODEL.SZN.TRAIN_UNSEEN", ["tree"]])
    with pytest.raises(
        ValueError, match="set DATASETS.DROP_CLASSES to \\['fence', 'pedestrian'\\]"
    ):
        _model(["DATASETS.UNSEEN_IMAGES", "drop"])
    with pytest.raises(ValueError, match="step 2 .* exists only for 'szn'"):
        _model(["MODEL.SZN.VARIANT", "fcn_je", "MODEL.STAGE", "seenmask"])
    with pytest.raises(ValueError, match="VARIANT must be one of"):
        _model(["MODEL.SZN.VARIANT", "zsl"])


@pytest.fixture(scope="module")
def val_input(shared_data):
    cfg = load_config(TINY)
    d = DatasetCatalog.get("camvid_val")[0]
    return InferenceImageMapper(cfg)(d)


@pytest.mark.parametrize("variant", ["fcn_s", "fcn_je", "szn", "szn_ps"])
def test_variants_return_dense_scores_at_label_size(variant, val_input):
    model = _model(["MODEL.SZN.VARIANT", variant]).eval()
    with torch.no_grad():
        (out,) = model([val_input])
    assert out["sem_seg"].shape == (11, val_input["height"], val_input["width"])
    label = out["sem_seg"].argmax(dim=0)
    unseen_ids = [model.test_vocabulary.index(n) for n in ("tree", "car", "bicyclist")]
    if variant == "fcn_s":  # a softmax over the seen classes never predicts U
        assert not torch.isin(label, torch.tensor(unseen_ids)).any()


def test_szn_ps_follows_the_true_seenmask(val_input):
    model = _model(["MODEL.SZN.VARIANT", "szn_ps"]).eval()
    with torch.no_grad():
        label = model([val_input])[0]["sem_seg"].argmax(dim=0)
    from detectron2.data import MetadataCatalog

    gt = torch.as_tensor(
        load_sem_seg(val_input["sem_seg_file_name"], MetadataCatalog.get("camvid_val")).astype(
            "int64"
        )
    )
    group = model.test_seen_group  # seen group: train_seen; unseen group: U + fence, pedestrian
    labelled = gt != 255
    assert torch.equal(group[label][labelled], group[gt[labelled]])
    assert (~group[gt[labelled]]).any()  # the image has unseen-group pixels


def test_szn_scores_feed_the_zlss_evaluator(val_input):
    """ZLSS (TEST.LABEL_SPACE "unseen") takes the argmax over U's channels of "sem_seg": for SZN
    that is the nearest unseen class by cosine, whatever the seenmask says."""
    from zsseg_d2.evaluation import GZS3Evaluator

    model = _model().eval()
    with torch.no_grad():
        (out,) = model([val_input])
    evaluator = GZS3Evaluator("camvid_val", distributed=False, label_space="unseen")
    evaluator.process([val_input], [out])
    unseen = [model.test_vocabulary.index(n) for n in ("tree", "car", "bicyclist")]
    scores = out["sem_seg"][unseen]
    cosine = scores - scores.max(dim=0).values + scores.max()  # any per-pixel shift keeps the order
    predicted = torch.tensor(unseen)[cosine.argmax(dim=0)]
    gt = torch.as_tensor(
        load_sem_seg(val_input["sem_seg_file_name"], evaluator.metadata).astype("int64")
    )
    on_unseen = torch.isin(gt, torch.tensor(unseen))
    hits = int((predicted[on_unseen] == gt[on_unseen]).sum())
    assert int(evaluator.confusion.trace()) == hits
    assert int(evaluator.confusion.sum()) == int(on_unseen.sum()) > 0


@pytest.mark.slow
def test_train_net_runs_both_steps_and_evaluates_all_metrics(tmp_path, shared_data, run_tool):
    import json

    def train_net(config, *opts):
        return run_tool("tools/train_net.py", "--config-file", config, *opts)

    step1, step2 = tmp_path / "step1", tmp_path / "step2"
    train_net(TINY, "SOLVER.MAX_ITER", "40", "DATASETS.TEST", "()", "OUTPUT_DIR", str(step1))
    lines = (step1 / "metrics.json").read_text().splitlines()
    losses = [
        json.loads(line)["total_loss"] for line in lines if "total_loss" in line
    ]  # = loss_embedding
    assert losses[-1] < losses[0], losses
    train_net("configs/szn/tiny/camvid_step2.yaml", "SOLVER.MAX_ITER", "10", "DATASETS.TEST", "('camvid_val',)",
              "MODEL.WEIGHTS", str(step1 / "model_final.pth"), "OUTPUT_DIR", str(step2))  # fmt: skip
    metrics = json.loads((step2 / "inference/camvid_val/gzs3_metrics.json").read_text())
    for key in (
        "pACC",
        "mACC",
        "mIoU",
        "fwIoU",
        "mIoU(S)",
        "mIoU(U)",
        "fwIoU(U)",
        "pACC(S)",
        "hIoU",
    ):
        assert key in metrics, key
    # step 2 left the FCN and the embedding head as step 1 trained them
    first = torch.load(step1 / "model_final.pth", weights_only=False)["model"]
    second = torch.load(step2 / "model_final.pth", weights_only=False)["model"]
    assert torch.equal(first["backbone.fc7.weight"], second["backbone.fc7.weight"])
    assert not torch.equal(
        first["head.heads.seenmask.score.weight"], second["head.heads.seenmask.score.weight"]
    )


def _constant_head(head, bias: torch.Tensor) -> None:
    """A head whose 1x1 convolution outputs ``bias`` at every pixel (before the upsampling)."""
    with torch.no_grad():
        head.score.weight.zero_()
        head.score.bias.copy_(bias)


def test_sei_unseen_group_is_u_and_train_unseen_by_name(val_input):
    model = _model().eval()
    assert model.test_vocabulary == CAMVID
    seen_group = [name for name, s in zip(CAMVID, model.test_seen_group.tolist()) if s]
    # section 5.1.1: "the unseen label set U should be appended with train_unseen"
    assert seen_group == TRAIN_SEEN


@pytest.mark.parametrize("seen_channel_wins", [True, False])
def test_seenmask_channel_1_means_seen_at_inference(seen_channel_wins, val_input):
    """Section 4.2: "a 1 indicates that a pixel belongs to a seen class": with the seenmask head
    preferring channel 1 everywhere SEI picks the nearest train_seen class, with channel 0 the
    nearest class of U and train_unseen."""
    model = _model().eval()
    vectors = model.test_class_vectors
    road = vectors[CAMVID.index("road")]
    _constant_head(model.head.heads["embedding"], road)
    _constant_head(
        model.head.heads["seenmask"], torch.tensor([0.0, 5.0] if seen_channel_wins else [5.0, 0.0])
    )
    with torch.no_grad():
        label = model([val_input])[0]["sem_seg"].argmax(dim=0)
    cosine = F.cosine_similarity(vectors, road[None], dim=1)
    group = [n for n in CAMVID if (n in TRAIN_SEEN) == seen_channel_wins]
    expected = max(group, key=lambda n: cosine[CAMVID.index(n)].item())
    assert expected == "road" if seen_channel_wins else expected != "road"
    assert (label == CAMVID.index(expected)).all()


def test_fcn_s_outputs_are_the_seen_classes_in_vocabulary_order(camvid_batch, val_input):
    """FCN-S is a softmax over S (train_seen and train_unseen, 8 classes) in the data set's order:
    output k is the k-th seen class; U gets no score."""
    model = _model(["MODEL.SZN.VARIANT", "fcn_s"]).eval()
    seen = [n for n in CAMVID if n not in ("tree", "car", "bicyclist")]
    assert model.head.heads["class_logits"].score.out_channels == len(seen) == 8
    # training targets: data-set id -> position among the seen classes; U and void ignored
    lut = model.softmax_lut[:11].tolist()
    assert lut == [0, 1, 2, 3, 4, 255, 5, 6, 255, 7, 255]
    for k in (0, 5, 7):  # sky, fence, pedestrian
        _constant_head(model.head.heads["class_logits"], 10.0 * F.one_hot(torch.tensor(k), 8))
        with torch.no_grad():
            scores = model([val_input])[0]["sem_seg"]
        assert (scores.argmax(dim=0) == CAMVID.index(seen[k])).all()
        for name in ("tree", "car", "bicyclist"):
            assert (scores[CAMVID.index(name)] == 0).all()


def test_fcn_je_infers_among_all_classes(val_input):
    """FCN-JE: the nearest class embedding over the whole evaluation vocabulary, U included."""
    model = _model(["MODEL.SZN.VARIANT", "fcn_je"]).eval()
    car = model.test_class_vectors[CAMVID.index("car")]
    _constant_head(model.head.heads["embedding"], car)
    with torch.no_grad():
        label = model([val_input])[0]["sem_seg"].argmax(dim=0)
    assert (label == CAMVID.index("car")).all()


def test_epoch_schedule_counts_the_images_the_protocol_keeps(shared_data):
    # "30 epochs with a batch size of 1 image": iterations = ceil(epochs x images / batch)
    assert iterations_for_epochs(30, 8498, 1) == 254940
    assert iterations_for_epochs(3, 367, 4) == 276  # 275.25 rounded up
    # CamVid with "drop": 5 of the 367 training images hold no tree, car or bicyclist pixel
    opts = ["MODEL.SZN.VARIANT", "fcn_s", "DATASETS.UNSEEN_IMAGES", "drop", "SOLVER.EPOCHS", 2,
            "SOLVER.IMS_PER_BATCH", 1, "DATASETS.TEST", "()"]  # fmt: skip
    trainer = Trainer(load_config(TINY, opts))
    assert trainer.max_iter == trainer.cfg.SOLVER.MAX_ITER == 10


def _prepare_voc_szn():
    path = Path(__file__).resolve().parents[1] / "datasets" / "prepare_voc_szn.py"
    spec = importlib.util.spec_from_file_location("prepare_voc_szn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prepare_voc_szn_writes_sbd_train_and_the_voc2011_val_without_sbd(tmp_path):
    sbd, voc11 = tmp_path / "benchmark_RELEASE/dataset", tmp_path / "VOCdevkit/VOC2011"
    (sbd / "cls").mkdir(parents=True)
    (voc11 / "ImageSets/Segmentation").mkdir(parents=True)
    (voc11 / "SegmentationClass").mkdir()
    (sbd / "train.txt").write_text("2008_000001\n2008_000002\n")
    (sbd / "val.txt").write_text("2008_000003\n")
    # VOC 2011 val: one image in SBD train, one in SBD val, two in neither
    (voc11 / "ImageSets/Segmentation/val.txt").write_text(
        "2008_000002\n2008_000003\n2009_000004\n2010_000005\n"
    )
    for image_id, seg in (("2008_000001", [[0, 17], [255, 19]]), ("2008_000002", [[1, 1], [1, 1]])):
        struct = {"Segmentation": np.array(seg, np.uint8), "Boundaries": np.zeros(1)}
        scipy.io.savemat(sbd / "cls" / f"{image_id}.mat", {"GTcls": struct})
    for image_id in ("2009_000004", "2010_000005", "2008_000002", "2008_000003"):
        Image.fromarray(np.array([[0, 20], [255, 17]], np.uint8)).save(
            voc11 / "SegmentationClass" / f"{image_id}.png"
        )
    counts = _prepare_voc_szn().main(["--root", str(tmp_path)])
    assert counts == {"sbd_train": 2, "voc11_val": 2}
    out = tmp_path / "VOCdevkit/VOC2012/SegmentationClass21"
    assert sorted(p.stem for p in (out / "voc11_val").glob("*.png")) == [
        "2009_000004",
        "2010_000005",
    ]
    # 21-way: background 0 stays a class, sheep 17, void 255
    assert np.asarray(Image.open(out / "sbd_train/2008_000001.png")).tolist() == [
        [0, 17],
        [255, 19],
    ]
