"""CLIP loading paths and the cached text embeddings of eq. 2's classifier."""

from __future__ import annotations

import open_clip
import pytest
import torch

from zsseg_d2.modeling.clip import CLIPWeightsError, create_clip_model
from zsseg_d2.modeling.semantic import TextEmbedder, validate_class_names

NAMES = ["sky", "road", "potted plant"]


def test_embeddings_are_template_averages_renormalised(tmp_path):
    model, _ = create_clip_model("ZSSeg-Tiny", "")
    tokenizer = open_clip.get_tokenizer("ZSSeg-Tiny")
    with torch.no_grad():
        single = model.encode_text(tokenizer([f"a photo of a {n}." for n in NAMES]), normalize=True)
    embeddings = TextEmbedder("ZSSeg-Tiny", "", "single", cache_dir=str(tmp_path))(NAMES)
    torch.testing.assert_close(embeddings, single)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))


def test_cache_is_keyed_by_vocabulary_and_templates(tmp_path, monkeypatch):
    embedder = TextEmbedder("ZSSeg-Tiny", "", "single", cache_dir=str(tmp_path))
    first = embedder(NAMES)
    assert len(list(tmp_path.glob("*.pt"))) == 1
    with monkeypatch.context() as patch:  # a cache hit must not load CLIP
        patch.setattr("zsseg_d2.modeling.semantic.clip_text.create_clip_model", None)
        torch.testing.assert_close(embedder(NAMES), first)
    reordered = embedder(NAMES[::-1])
    torch.testing.assert_close(reordered, first.flip(0))
    with_templates = TextEmbedder("ZSSeg-Tiny", "", "imagenet", cache_dir=str(tmp_path))(NAMES)
    assert not torch.allclose(with_templates, first)
    assert len(list(tmp_path.glob("*.pt"))) == 3


def test_local_checkpoint_file_is_the_real_loading_path(tmp_path):
    model, _ = create_clip_model("ZSSeg-Tiny", "")
    checkpoint = tmp_path / "tiny_clip.pt"
    torch.save(model.state_dict(), checkpoint)
    from_file = TextEmbedder(
        "ZSSeg-Tiny", str(checkpoint), "single", cache_dir=str(tmp_path / "a")
    )(NAMES)
    random = TextEmbedder("ZSSeg-Tiny", "", "single", cache_dir=str(tmp_path / "b"))(NAMES)
    torch.testing.assert_close(from_file, random)
    with torch.no_grad():
        model.text_projection.mul_(-1)
    torch.save(model.state_dict(), checkpoint)
    other = TextEmbedder("ZSSeg-Tiny", str(checkpoint), "single", cache_dir=str(tmp_path / "c"))(
        NAMES
    )
    torch.testing.assert_close(other, -random)


def test_bad_model_or_weights_fail_with_what_to_pass(tmp_path, monkeypatch):
    with pytest.raises(CLIPWeightsError, match="MODEL.CLIP.MODEL_NAME"):
        create_clip_model("ViT-Nope-99", "")
    with pytest.raises(CLIPWeightsError, match="neither a file nor a pretrained tag"):
        create_clip_model("ZSSeg-Tiny", "openai")
    # Offline with empty caches (the hub cache and open_clip's ~/.cache/clip point into tmp_path, so
    # weights a machine happens to have cached cannot make the load succeed).
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(CLIPWeightsError, match="local open_clip checkpoint file"):
        create_clip_model("RN50", "openai", offline=True)


@pytest.mark.parametrize(
    "names, message",
    [([], "empty vocabulary"), (["cat", " "], "empty"), (["cat", "dog", "cat"], "duplicate")],
)
def test_vocabulary_validation(names, message):
    with pytest.raises(ValueError, match=message):
        validate_class_names(names, "--vocab")
