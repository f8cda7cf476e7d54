"""Checkpoints carry their text settings; inference encodes only the names it uses; no network
means failing in seconds."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from zsseg_d2.engine import load_config
from zsseg_d2.engine.checkpoint import Checkpointer, load_trained_weights
from zsseg_d2.engine.predictor import VocabularyPredictor
from zsseg_d2.modeling.clip import CLIPWeightsError, create_clip_model
from zsseg_d2.modeling.clip import loader as clip_loader
from zsseg_d2.modeling.semantic import TextEmbedder

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml")


@pytest.fixture(autouse=True)
def _text_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))


def _saved(tmp_path: Path, *opts: str) -> str:
    model = build_model(load_config(TINY, list(opts)))
    Checkpointer(model, save_dir=str(tmp_path)).save("model_final")
    return str(tmp_path / "model_final.pth")


def test_checkpoint_records_text_settings_and_a_mismatch_names_both_values_and_the_fix(
    tmp_path, caplog
):
    path = _saved(tmp_path)
    record = torch.load(path, weights_only=True)["text_settings"]
    assert record["MODEL.CLIP.PROMPT_TEMPLATES"]["value"] == "single"
    assert record["MODEL.CLIP.MODEL_NAME"]["value"] == "ZSSeg-Tiny"
    assert record["training vocabulary"]["value"].startswith("11 classes (sky, building")

    load_trained_weights(build_model(load_config(TINY)), path)  # same settings: loads
    other = build_model(load_config(TINY, ["MODEL.CLIP.PROMPT_TEMPLATES", "imagenet"]))
    with pytest.raises(ValueError) as error:
        load_trained_weights(other, path)
    message = str(error.value)
    assert "MODEL.CLIP.PROMPT_TEMPLATES: checkpoint 'single', config 'imagenet'" in message
    assert "pass MODEL.CLIP.PROMPT_TEMPLATES single" in message and path in message
    assert "MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH True" in message
    with caplog.at_level(logging.WARNING):
        load_trained_weights(other, path, accept_text_mismatch=True)
    assert "Accepted (MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH)" in caplog.text


def test_vocabulary_and_weights_file_are_compared_by_content(tmp_path):
    clip, _ = create_clip_model("ZSSeg-Tiny", "")
    weights = tmp_path / "clip_a.pt"
    torch.save(clip.state_dict(), weights)
    path = _saved(tmp_path, "MODEL.CLIP.PRETRAINED", str(weights))
    copy = tmp_path / "elsewhere" / "clip_copy.pt"
    copy.parent.mkdir()
    copy.write_bytes(weights.read_bytes())
    load_trained_weights(build_model(load_config(TINY, ["MODEL.CLIP.PRETRAINED", str(copy)])), path)
    with torch.no_grad():
        clip.text_projection.mul_(2)
    torch.save(clip.state_dict(), copy)
    with pytest.raises(
        ValueError, match=rf"MODEL.CLIP.PRETRAINED: checkpoint '{weights}', config '{copy}'"
    ):
        load_trained_weights(
            build_model(load_config(TINY, ["MODEL.CLIP.PRETRAINED", str(copy)])), path
        )
    other_vocabulary = build_model(
        load_config(
            TINY,
            ["MODEL.CLIP.PRETRAINED", str(weights), "DATASETS.TRAIN", "('voc2012_crops_val',)"],
        )
    )
    with pytest.raises(
        ValueError, match=r"training vocabulary: checkpoint '11 classes .*config '20 classes"
    ):
        load_trained_weights(other_vocabulary, path)


def test_embedding_file_source_is_recorded(tmp_path):
    names = [
        "sky",
        "building",
        "pole",
        "road",
        "pavement",
        "tree",
        "sign symbol",
        "fence",
        "car",
        "pedestrian",
        "bicyclist",
    ]
    vectors = np.random.default_rng(0).normal(size=(11, 16)).astype(np.float32)
    np.savez(tmp_path / "a.npz", names=np.array(names), vectors=vectors)
    np.savez(tmp_path / "b.npz", names=np.array(names), vectors=vectors[::-1].copy())
    source = ["MODEL.SEMANTIC.SOURCE", "file", "MODEL.SEMANTIC.FILES"]
    path = _saved(tmp_path, *source, f"['{tmp_path / 'a.npz'}']")
    with pytest.raises(
        ValueError, match="MODEL.SEMANTIC.FILES: checkpoint .*a.npz.*config .*b.npz"
    ):
        load_trained_weights(
            build_model(load_config(TINY, [*source, f"['{tmp_path / 'b.npz'}']"])), path
        )
    with pytest.raises(
        ValueError, match="MODEL.SEMANTIC.SOURCE: checkpoint 'file', config 'clip_text'"
    ):
        load_trained_weights(build_model(load_config(TINY)), path)


def test_training_resumes_and_fine_tunes_through_the_same_check(tmp_path):
    path = _saved(tmp_path)
    model = build_model(load_config(TINY, ["MODEL.CLIP.PROMPT_TEMPLATES", "imagenet"]))
    with pytest.raises(ValueError, match="PROMPT_TEMPLATES"):
        Checkpointer(model).load(path)
    Checkpointer(model, accept_text_mismatch=True).load(path)


def test_checkpoint_without_a_record_loads_with_a_warning(tmp_path, caplog):
    model = build_model(load_config(TINY))
    old = tmp_path / "old.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, old)
    with caplog.at_level(logging.WARNING):
        load_trained_weights(model, str(old))
    assert "has no record of the text settings" in caplog.text


def test_predictor_encodes_only_the_requested_names(tmp_path, monkeypatch):
    path = _saved(tmp_path)
    encoded = []
    original = TextEmbedder._encode

    def recording(self, names):
        encoded.append(list(names))
        return original(self, names)

    monkeypatch.setattr(TextEmbedder, "_encode", recording)
    predictor = VocabularyPredictor(load_config(TINY, ["MODEL.WEIGHTS", path]), ["cat", "grass"])
    label = predictor(np.zeros((40, 50, 3), dtype=np.uint8))
    assert label.shape == (40, 50) and label.max() <= 1
    assert encoded == [["cat", "grass"]]


def test_unreachable_hub_fails_in_seconds_without_offline_set(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://10.255.255.1")  # unroutable
    start = time.monotonic()
    assert not clip_loader.hub_reachable(timeout=1.0)
    assert time.monotonic() - start < 5
    monkeypatch.setattr(clip_loader, "hub_reachable", lambda timeout=3.0: False)
    start = time.monotonic()
    with pytest.raises(
        CLIPWeightsError, match="set MODEL.CLIP.PRETRAINED to a local open_clip checkpoint file"
    ):
        create_clip_model("RN50", "openai")
    assert time.monotonic() - start < 20


def test_text_encoding_shows_progress(tmp_path, capsys):
    TextEmbedder("ZSSeg-Tiny", "", "single", cache_dir=str(tmp_path))(["sky", "road", "tree"])
    assert "encoding 3 class names x 1 templates (ZSSeg-Tiny)" in capsys.readouterr().err
