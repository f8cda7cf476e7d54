"""The Relation Network (Zhang & Khriyenko): the relation modules (the 1x1 convolution of the
concatenation, the per-pair U-Net decoder), one class's score independent of the others, the episode
sampler, eq. 5 on the episode's classes only (by hand and at the call site), binary ZLSS pairs in
training and inference on real CamVid labels, label spaces at inference."""

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
    ConvRelationModule,
    RelationHead,
    UNetRelationModule,
    WordEmbeddingModule,
    binary_targets,
    episode_targets,
    sample_episode,
)
from zsseg_d2.methods.relation_net import segmentor as rn_segmentor
from zsseg_d2.methods.relation_net.loss import relation_bce
from zsseg_d2.modeling.backbone import VGG16EncoderBackbone

TINY = str(
    Path(__file__).resolve().parents[1] / "configs" / "relation_net" / "tiny" / "camvid.yaml"
)
TINY_BINARY = TINY.replace("camvid.yaml", "camvid_binary.yaml")


def test_fused_pairs_equal_a_1x1_convolution_of_the_tiled_concatenation():
    """Every (image, class) pair: [f_2(x); f_1(v_c) tiled] through one 1x1 convolution."""
    module = ConvRelationModule("dense", visual_channels=3, semantic_channels=2, channels=4)
    visual, semantic = torch.randn(2, 3, 5, 6), torch.randn(4, 2)
    weight = torch.cat([module.visual_proj.weight[:, :, 0, 0], module.semantic_proj.weight], dim=1)
    image_index = torch.tensor([0, 1, 1, 0])  # pair p: image image_index[p], class p
    fused = module.fused_pairs(visual, semantic, image_index)
    for p, b in enumerate(image_index.tolist()):
        concat = torch.cat([visual[b], semantic[p][:, None, None].expand(2, 5, 6)])  # tiled
        expected = (
            torch.einsum("oi,ihw->ohw", weight, concat) + module.visual_proj.bias[:, None, None]
        )
        torch.testing.assert_close(fused[p], expected)


def _lively(module: torch.nn.Module) -> torch.nn.Module:
    """He-initialised convolutions and layers: a random tiny net whose outputs vary with its
    inputs (PyTorch's default init leaves the deep U-Net decoder's output nearly constant)."""
    for m in module.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight)
    return module


def _unet_head():
    encoder = VGG16EncoderBackbone(base_channels=4)
    relation = UNetRelationModule(encoder.output_shape(), semantic_channels=6)
    return _lively(encoder), _lively(RelationHead(WordEmbeddingModule(5, 6), relation))


def test_unet_relation_module_decodes_each_pair_from_its_own_image_and_class():
    """Fig. 6: the U-Net decoder runs on pool5 ⊕ the tiled class features of one pair, with that
    image's skips, up to the input resolution."""
    encoder, head = _unet_head()
    head.eval()
    images, vectors = torch.randn(2, 3, 32, 64), torch.randn(3, 5)
    with torch.no_grad():
        features = encoder(images)
        every = head(features, vectors)
        assert every.shape == (2, 3, 32, 64)
        for b in range(2):
            single = {k: v[b : b + 1] for k, v in features.items()}
            for c in range(3):
                torch.testing.assert_close(every[b, c], head(single, vectors[c : c + 1])[0, 0])
        # paired: image b with vector b only (binary ZLSS)
        paired = head.paired(features, vectors[[2, 0]])
        torch.testing.assert_close(paired[:, 0], torch.stack([every[0, 2], every[1, 0]]))
    decoder_in = head.relation.decoder.center[0].in_channels
    assert decoder_in == encoder.output_shape()["pool5"].channels + 6  # pool5 ⊕ f_1(v_c)


@pytest.mark.parametrize("structure", ["unet_decoder", "deeplab_conv"])
def test_relation_score_of_a_class_does_not_depend_on_the_other_classes(structure):
    """Eq. 4 scores each (pixel, class) pair on its own: the scores of 'car' are the same whether
    the vocabulary is all 11 classes, scored in chunks of 3, or 'car' alone."""
    opts = [] if structure == "unet_decoder" else DEEPLAB_OPTS
    model = _model(*opts).eval()
    _lively(model)
    x = {"image": torch.randint(0, 255, (3, 32, 32), dtype=torch.uint8), "height": 32, "width": 32}
    with torch.no_grad():
        everything = model([x])[0]["sem_seg"]
        model.class_chunk = 3
        chunked = model([x])[0]["sem_seg"]
        model.set_vocabulary(["car"])
        alone = model([x])[0]["sem_seg"]
    torch.testing.assert_close(chunked, everything)
    torch.testing.assert_close(alone[0], everything[8])
    assert (everything[8] - everything[0]).abs().max() > 1e-6  # the classes do differ


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


def _model(*opts: str, config: str = TINY):
    return build_model(load_config(config, list(opts)))


# The tiny model with the DeepLab rows' structure: DeepLab-v3 image embedding, "conv" relation module
DEEPLAB_OPTS = [
    "MODEL.BACKBONE.NAME", "build_deeplab_v3_backbone", "MODEL.RELATION_NET.RELATION_MODULE", "conv",
    "MODEL.RESNETS.STEM_OUT_CHANNELS", 8, "MODEL.RESNETS.RES2_OUT_CHANNELS", 16,
    "MODEL.RESNETS.WIDTH_PER_GROUP", 4, "MODEL.RESNETS.NORM", "BN",
    "MODEL.DEEPLAB.BLOCKS_PER_STAGE", [1, 1, 1, 1], "MODEL.DEEPLAB.ASPP_CHANNELS", 8,
    "MODEL.RELATION_NET.RELATION_CHANNELS", 8,
]  # fmt: skip


def test_unknown_episode_pool_is_named():
    with pytest.raises(ValueError, match="EPISODE_POOL"):
        _model("MODEL.RELATION_NET.EPISODE_POOL", "unseen")


def _camvid_inputs(n: int = 2, size: int = 32) -> list[dict]:
    labels = torch.randint(0, 11, (n, size, size))
    labels[torch.isin(labels, torch.tensor([5, 8, 10]))] = 255  # the mapper hides unseen pixels
    return [
        {"image": torch.randint(0, 255, (3, size, size), dtype=torch.uint8), "sem_seg": lab}
        for lab in labels
    ]


class _Spy:
    def __init__(self, monkeypatch, name):
        self.function, self.calls = getattr(rn_segmentor, name), []
        monkeypatch.setattr(rn_segmentor, name, self)

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        return self.function(*args, **kwargs)


def test_bce_counts_the_episodes_seen_classes_only_at_the_call_site(monkeypatch):
    """Eq. 5 in training: targets are one map per episode class; the pixels that count are those
    of the episode's classes: unselected seen classes, unseen classes and void are left out."""
    model = _model().train()
    episode, bce = _Spy(monkeypatch, "sample_episode"), _Spy(monkeypatch, "relation_bce")
    inputs = _camvid_inputs()
    for x in inputs:  # unseen pixels present (as the full-label mapper would give): still no loss
        x["sem_seg"][:4] = 8
    model(inputs)
    (logits, targets, valid) = bce.calls[0]
    labels = torch.stack([x["sem_seg"] for x in inputs])
    k = targets.shape[1]
    assert 0 < k <= 10 and logits.shape == targets.shape == (2, k, 32, 32)
    (drawn,) = episode.calls  # the draw's arguments: all 11 classes, the 8 seen kept
    assert drawn[0] == 11 and sorted(drawn[1]) == [0, 1, 2, 3, 4, 6, 7, 9]
    classes = []
    for i in range(k):  # each target map is one class's pixels
        under = labels[targets[:, i].bool()].unique().tolist()
        assert len(under) <= 1
        classes += under
    assert classes and not set(classes) & {5, 8, 10}
    assert torch.equal(valid, torch.isin(labels, torch.tensor(classes)))  # those classes only
    assert not valid[labels == 8].any() and not valid[labels == 255].any()


def test_binary_training_pairs_each_image_with_one_seen_class_it_holds(monkeypatch):
    """Binary ZLSS: "each image is only paired with its target class": 1 on its pixels, 0 on every
    other labelled pixel, the word module fed that class's vector."""
    model = _model(config=TINY_BINARY).train()
    bce = _Spy(monkeypatch, "relation_bce")
    vectors = []
    original = model.head.paired
    model.head.paired = lambda features, v: vectors.append(v) or original(features, v)
    inputs = _camvid_inputs(3)
    inputs[2]["sem_seg"] = torch.where(torch.rand(32, 32) < 0.5, 0, 255)  # sky (the negative) only
    model(inputs)
    ((logits, targets, valid),) = bce.calls
    labels = torch.stack([x["sem_seg"] for x in inputs])
    assert logits.shape == targets.shape == (3, 1, 32, 32)
    assert not valid[2].any()  # no target class in that image: it carries no loss
    for b in range(2):
        target = labels[b][targets[b, 0].bool()].unique()
        assert len(target) == 1 and int(target) not in (
            0,
            5,
            8,
            10,
        )  # a seen class; 0 = "sky", the negative
        assert torch.equal(valid[b], labels[b] != 255)  # the background pixels count, as 0
        name = model.train_vocabulary[int(target)]
        torch.testing.assert_close(vectors[0][b], model.semantic_source([name])[0])
    pairs = binary_targets(torch.tensor([[[3, 3], [255, 0]], [[255, 255], [0, 0]]]), [1, 2, 3])
    assert pairs.classes.tolist() == [3, -1]  # the second image holds no target: no loss
    assert pairs.valid.tolist() == [[[True, True], [False, True]], [[False, False], [False, False]]]


def test_binary_inference_labels_the_target_of_the_label_file_where_r_is_at_least_half(shared_data):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from zsseg_d2.data import InferenceImageMapper
    from zsseg_d2.data.sem_seg_io import load_sem_seg

    cfg = load_config(TINY_BINARY)
    model = build_model(cfg).eval()
    record = DatasetCatalog.get("camvid_val")[0]
    x = InferenceImageMapper(cfg)(record)
    gt = load_sem_seg(record["sem_seg_file_name"], MetadataCatalog.get("camvid_val"))
    present = sorted(set(gt.flatten().tolist()) - {255, 0})  # the targets: all but sky (background)
    first, second = present[0], present[1]
    scored = []

    class Head(torch.nn.Module):  # r = 0.8 for the first target on the left quarter, else 0.2
        def forward(self, features, vectors):
            scored.append(vectors)
            h, w = features["block1"].shape[-2:]  # the padded input
            logits = torch.full((1, len(vectors), h, w), math.log(0.2 / 0.8))
            logits[:, 0, :, : w // 4] = math.log(0.8 / 0.2)
            return logits

    model.head = Head()
    with torch.no_grad():
        (out,) = model([x])
    label = out["sem_seg_label"]
    assert label.shape == gt.shape and "sem_seg" not in out
    torch.testing.assert_close(
        scored[0], model.semantic_source([model.test_vocabulary[c] for c in present])
    )
    width = label.shape[1]  # a quarter of the padded width is 0.28 of the image's
    assert (label[:, : int(0.25 * width)] == first).all()
    assert (label[:, int(0.32 * width) :] == 0).all()  # r < 0.5: the background ("sky")
    assert second not in label.unique().tolist()


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


def test_prepare_cub_writes_binary_labels_the_split_by_species_and_attributes(
    tmp_path, monkeypatch
):
    import importlib.util

    from detectron2.data import DatasetCatalog

    from zsseg_d2.data.builtin import _cub_fields

    cub = tmp_path / "CUB_200_2011"
    species = [f"{i:03d}.Species_{i}" for i in range(1, 52)]  # 51 species: 50 unseen, 1 seen
    (cub / "attributes").mkdir(parents=True)
    (cub / "classes.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(species)))
    images = {1: (species[0], "a_0001"), 2: (species[7], "b_0002")}  # seen, unseen
    (cub / "images.txt").write_text("".join(f"{i} {d}/{s}.jpg\n" for i, (d, s) in images.items()))
    (cub / "image_class_labels.txt").write_text("1 1\n2 8\n")
    for d, stem in images.values():
        (cub / "images" / d).mkdir(parents=True)
        Image.new("RGB", (3, 2)).save(cub / "images" / d / f"{stem}.jpg")
        (cub / "segmentations" / d).mkdir(parents=True)
        mask = np.array([[0, 127, 128], [255, 51, 204]], np.uint8)  # averaged annotators
        Image.fromarray(mask).save(cub / "segmentations" / d / f"{stem}.png")
    attributes = np.arange(51 * 312, dtype=float).reshape(51, 312)
    np.savetxt(cub / "attributes/class_attribute_labels_continuous.txt", attributes)
    unseen_file = tmp_path / "testclasses.txt"
    unseen_file.write_text("\n".join(species[1:]) + "\n")
    path = Path(__file__).resolve().parents[1] / "datasets" / "prepare_cub.py"
    spec = importlib.util.spec_from_file_location("prepare_cub", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    counts = script.main(["--root", str(tmp_path), "--unseen-classes", str(unseen_file)])
    assert counts == {"train": 1, "test": 1}
    out = tmp_path / "cub"
    # mask >= 128 -> the species id (1-based: 0 is the background), else background
    assert np.asarray(Image.open(out / "labels/train/a_0001.png")).tolist() == [
        [0, 0, 1],
        [1, 0, 1],
    ]
    assert np.asarray(Image.open(out / "labels/test/b_0002.png")).tolist() == [[0, 0, 8], [8, 0, 8]]
    with np.load(out / "attributes_312.npz") as data:
        assert data["names"][0] == "species 1" and data["vectors"].shape == (51, 312)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    fields = _cub_fields()  # what the registered cub_{train,test} metadata reads on first access
    assert fields["stuff_classes"][:2] == ["background", "species 1"]
    assert len(fields["stuff_classes"]) == 52 and len(fields["unseen_classes"]) == 50
    (record,) = DatasetCatalog.get("cub_test")
    assert (
        Path(record["file_name"]).resolve()
        == (cub / "images" / species[7] / "b_0002.jpg").resolve()
    )
    with pytest.raises(ValueError, match="must list 50 species"):
        unseen_file.write_text(species[1] + "\n")
        script.main(["--root", str(tmp_path), "--unseen-classes", str(unseen_file)])
