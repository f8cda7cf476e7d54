"""Every registered method through the same contract: train two iterations, save, reload,
evaluate; reloading with another semantic file, template set or vocabulary is an error naming
both values and the override that fixes it. A sixth method defined here trains and evaluates
through ``tools/train_net.py`` with no edit to shared code."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from detectron2.config import CfgNode
from detectron2.modeling import META_ARCH_REGISTRY
from method_reference import REPO, write_fixture_images
from torch import nn
from torch.nn import functional as F

from zsseg_d2 import config as zsseg_config
from zsseg_d2.data.class_lists import load_class_list
from zsseg_d2.engine import Trainer, argument_parser, load_config
from zsseg_d2.engine.checkpoint import Checkpointer, load_trained_weights
from zsseg_d2.engine.stage_weights import check_stage_weights
from zsseg_d2.modeling.segmentor import ZeroShotSegmentor

# The first stage of each method, tiny (the contract is the same for every stage).
TINY_CONFIGS = {
    "CEL": "cel/tiny/Base-Tiny.yaml",
    "SZN": "szn/tiny/camvid_step1.yaml",
    "ZS3Net": "zs3net/tiny/camvid_1_segmentation.yaml",
    "SIGN": "sign/tiny/camvid.yaml",
    "RelationNet": "relation_net/tiny/camvid.yaml",
}
CAMVID = load_class_list("camvid_11")
EMBED_DIM = 16


def _registered_methods() -> list[str]:
    return sorted(
        name
        for name, cls in META_ARCH_REGISTRY
        if isinstance(cls, type)
        and issubclass(cls, ZeroShotSegmentor)
        and cls.__module__.startswith("zsseg_d2.")
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """A two-split spec-file data set of CamVid's classes and split (no ../shared needed), two
    embedding files of its names, and the ``KEY VALUE`` options that use them."""
    root = tmp_path_factory.mktemp("contract")
    for split in ("train", "val"):
        records = write_fixture_images(root / split)
        for r in records:  # the spec pairs images and labels by stem: separate folders
            (root / split / "images").mkdir(exist_ok=True)
            (root / split / "labels").mkdir(exist_ok=True)
            stem = r["image_id"]
            (root / split / f"img{stem[3:]}.png").rename(root / split / "images" / f"{stem}.png")
            (root / split / f"lbl{stem[3:]}.png").rename(root / split / "labels" / f"{stem}.png")
    spec = {
        "classes": list(CAMVID.prompts),
        "unseen_classes": ["tree", "car", "bicyclist"],
        "ignore_ids": [11],
        "splits": {
            "contract_train": {"images": "train/images", "labels": "train/labels"},
            "contract_val": {"images": "val/images", "labels": "val/labels"},
        },
    }
    (root / "spec.json").write_text(json.dumps(spec))
    files = []
    for seed in (0, 1):
        vectors = np.random.default_rng(seed).normal(size=(len(CAMVID.prompts), EMBED_DIM))
        path = root / f"vectors{seed}.npz"
        np.savez(path, names=np.array(CAMVID.prompts), vectors=vectors.astype(np.float32))
        files.append(str(path))
    opts = [
        "DATASETS.SPEC_FILES", f"('{root / 'spec.json'}',)",
        "DATASETS.TRAIN", "('contract_train',)",
        "DATASETS.TEST", "('contract_val',)",
        "SOLVER.IMS_PER_BATCH", 2, "SOLVER.MAX_ITER", 2, "SOLVER.CHECKPOINT_PERIOD", 1000,
        "SOLVER.AMP.ENABLED", False, "TEST.EVAL_PERIOD", 0, "DATALOADER.NUM_WORKERS", 0,
        "MODEL.DEVICE", "cpu",
    ]  # fmt: skip
    return {"root": root, "files": files, "opts": opts}


def _config(method: str, data: dict, output, *opts) -> CfgNode:
    return load_config(
        str(REPO / "configs" / TINY_CONFIGS[method]),
        [*data["opts"], "OUTPUT_DIR", str(output), *opts],
    )


def _file_source(path: str) -> list:
    return ["MODEL.SEMANTIC.SOURCE", "file", "MODEL.SEMANTIC.FILES", f"('{path}',)"]


def test_every_method_has_a_tiny_config():
    assert _registered_methods() == sorted(TINY_CONFIGS)


@pytest.mark.parametrize("method", sorted(TINY_CONFIGS))
def test_train_save_reload_evaluate(method, data, tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))
    source = _file_source(data["files"][0])
    trainer = Trainer(_config(method, data, tmp_path / "run", *source, "DATASETS.TEST", "()"))
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert trainer.iter == 2  # two iterations done
    checkpoint = tmp_path / "run" / "model_final.pth"

    cfg = _config(method, data, tmp_path / "eval", *source)
    model = Trainer.build_model(cfg)
    load_trained_weights(model, str(checkpoint))
    results = Trainer.test(cfg, model)["contract_val"]["sem_seg"]
    assert {"mIoU", "mIoU(S)", "mIoU(U)", "hIoU"} <= set(results)
    assert (
        results == Trainer.test(cfg, trainer.model)["contract_val"]["sem_seg"]
    )  # reloaded = trained

    other_file = _config(method, data, tmp_path / "b", *_file_source(data["files"][1]))
    with pytest.raises(ValueError) as error:
        load_trained_weights(Trainer.build_model(other_file), str(checkpoint))
    message = str(error.value)
    assert "MODEL.SEMANTIC.FILES" in message
    assert data["files"][0] in message and data["files"][1] in message
    assert f"pass MODEL.SEMANTIC.FILES ['{data['files'][0]}']" in message

    reordered = list(reversed(CAMVID.prompts))
    other_vocabulary = _config(
        method, data, tmp_path / "c", *_file_source(data["files"][0]),
        "MODEL.VOCABULARY.TRAIN", str(reordered),
    )  # fmt: skip
    with pytest.raises(ValueError) as error:
        load_trained_weights(Trainer.build_model(other_vocabulary), str(checkpoint))
    message = str(error.value)
    assert "training vocabulary: checkpoint '11 classes (sky, building," in message
    assert "config '11 classes (bicyclist, pedestrian," in message
    assert "MODEL.VOCABULARY.TRAIN of the checkpoint's run" in message


@pytest.mark.parametrize("method", sorted(TINY_CONFIGS))
def test_other_prompt_templates_are_refused(method, data, tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))
    single = _config(method, data, tmp_path, "MODEL.CLIP.PROMPT_TEMPLATES", "single")
    Checkpointer(Trainer.build_model(single), str(tmp_path)).save("single")
    imagenet = _config(method, data, tmp_path, "MODEL.CLIP.PROMPT_TEMPLATES", "imagenet")
    with pytest.raises(ValueError) as error:
        load_trained_weights(Trainer.build_model(imagenet), str(tmp_path / "single.pth"))
    assert (
        "MODEL.CLIP.PROMPT_TEMPLATES: checkpoint 'single', config 'imagenet' -> "
        "pass MODEL.CLIP.PROMPT_TEMPLATES single"
    ) in str(error.value)


def test_a_later_stage_without_its_weights_names_the_stage_to_run():
    cfg = load_config(str(REPO / "configs" / "zs3net" / "tiny" / "camvid_2_zs3net.yaml"))
    with pytest.raises(FileNotFoundError) as error:
        check_stage_weights(cfg, starts_from_earlier_stage=True)
    assert (
        "run `python tools/train_net.py --config-file configs/zs3net/tiny/camvid_1_segmentation.yaml`"
        in str(error.value)
    )
    cfg.defrost()
    cfg.MODEL.WEIGHTS = ""
    with pytest.raises(ValueError, match="MODEL.STAGE 'generator' starts from an earlier stage"):
        check_stage_weights(cfg, starts_from_earlier_stage=True)
    check_stage_weights(cfg, starts_from_earlier_stage=False)  # a first stage may start from ""


def test_old_keys_name_their_replacement():
    base = str(REPO / "configs" / "cel" / "tiny" / "Base-Tiny.yaml")
    for old, new, value in (
        ("MODEL.CEL.TEST_VOCABULARY", "MODEL.VOCABULARY.TEST", "['a']"),
        ("MODEL.ZS3NET.STAGE", "MODEL.STAGE", "generator"),
        ("MODEL.SZN.STEP", "MODEL.STAGE", 2),
    ):
        with pytest.raises(KeyError, match=f"{old} was renamed to {new}"):
            load_config(base, [old, value])
    with pytest.raises(KeyError, match="'CELSegmentor' was renamed to 'CEL'"):
        load_config(base, ["MODEL.META_ARCHITECTURE", "CELSegmentor"])


# ---- a sixth method, defined here ------------------------------------------------------------


def add_toy_config(cfg: CfgNode) -> None:
    cfg.MODEL.TOY = CfgNode()
    cfg.MODEL.TOY.TEMPERATURE = 0.1


@META_ARCH_REGISTRY.register()
class ToyJointEmbedding(ZeroShotSegmentor):
    """Each pixel's feature projected into the semantic space and classified by cosine / T."""

    def __init__(self, cfg: CfgNode):
        base = self.base_config(cfg)
        super().__init__(**base)
        channels = self.backbone.output_shape()["dense"].channels
        self.projection = nn.Conv2d(channels, self.semantic_source.dim, 1)
        self.temperature = cfg.MODEL.TOY.TEMPERATURE
        self.init_vocabulary()

    def _logits(self, images, vectors: torch.Tensor) -> torch.Tensor:
        embedding = F.normalize(self.projection(self.backbone(images.tensor)["dense"]), dim=1)
        logits = torch.einsum("bdhw,cd->bchw", embedding, F.normalize(vectors, dim=1))
        size = images.tensor.shape[-2:]
        return F.interpolate(logits / self.temperature, size=size, mode="bilinear")

    def losses(self, batched_inputs: list[dict]) -> dict[str, torch.Tensor]:
        images = self.preprocess(batched_inputs)
        logits = self._logits(images, self.train_class_vectors)
        labels = self.padded_labels(batched_inputs, images)
        return {"loss_ce": F.cross_entropy(logits, labels, ignore_index=self.ignore_value)}

    def inference(self, batched_inputs: list[dict]) -> list[dict]:
        images = self.preprocess(batched_inputs)
        logits = self._logits(images, self.test_class_vectors)
        return [
            {"sem_seg": self.postprocess(scores, images, i, x).softmax(dim=0)}
            for i, (scores, x) in enumerate(zip(logits, batched_inputs))
        ]


def _train_net():
    spec = importlib.util.spec_from_file_location("train_net", REPO / "tools" / "train_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_method_is_a_module_and_trains_through_train_net(data, tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))
    # registered for this test only: configs other tests write must not carry MODEL.TOY
    monkeypatch.setattr(zsseg_config, "_METHOD_CONFIGS", list(zsseg_config._METHOD_CONFIGS))
    zsseg_config.register_method_config(add_toy_config)
    config = tmp_path / "toy.yaml"
    config.write_text(
        f'_BASE_: "{REPO / "configs" / "szn" / "tiny" / "Base-SZN-Tiny.yaml"}"\n'
        'MODEL:\n  META_ARCHITECTURE: "ToyJointEmbedding"\n  STAGE: ""\n  TOY:\n    TEMPERATURE: 0.05\n'
    )
    train_net = _train_net()
    opts = [str(o) for o in data["opts"]] + ["OUTPUT_DIR", str(tmp_path / "toy")]
    opts += _file_source(data["files"][0])
    parser = argument_parser()
    train_net.main(parser.parse_args(["--config-file", str(config), *opts]))
    weights = tmp_path / "toy" / "model_final.pth"
    assert weights.is_file()
    results = train_net.main(
        parser.parse_args(
            ["--config-file", str(config), "--eval-only", *opts, "MODEL.WEIGHTS", str(weights)]
        )
    )
    metrics = results["contract_val"]["sem_seg"]
    assert 0.0 <= metrics["mIoU"] <= 100.0 and "hIoU" in metrics
