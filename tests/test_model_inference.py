"""Eq. 2 (text classifier) and eq. 4 (semantic inference) against hand-derived values."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from zsseg_d2.methods.cel import TextClassifier
from zsseg_d2.methods.cel.semantic_inference import (
    chunked_semantic_scores,
    full_resolution_mask_chunks,
    semantic_argmax,
    semantic_scores,
    tensor_chunks,
)


def test_classifier_is_cosine_over_temperature():
    class_embeds = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])  # B=1, Q=2, unit norm
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    similarity, logits = TextClassifier(2, temperature=0.5)(class_embeds, text)
    torch.testing.assert_close(similarity, torch.tensor([[[1.0, 0.0], [0.6, 0.8]]]))
    torch.testing.assert_close(logits, torch.tensor([[[2.0, 0.0], [1.2, 1.6]]]))
    # p_1(class 0) = e^2 / (e^2 + e^0)
    assert math.isclose(
        logits.softmax(-1)[0, 0, 0].item(), math.exp(2) / (math.exp(2) + 1), rel_tol=1e-6
    )


def test_learned_background_adds_a_last_column_only_to_logits():
    classifier = TextClassifier(2, temperature=0.5, learned_background=True)
    with torch.no_grad():
        classifier.background.copy_(torch.tensor([0.0, -3.0]))  # normalised to (0, -1)
    class_embeds = torch.tensor([[[1.0, 0.0], [0.6, 0.8]]])
    similarity, logits = classifier(class_embeds, torch.eye(2))
    assert similarity.shape == (1, 2, 2)
    torch.testing.assert_close(logits[0, :, 2], torch.tensor([0.0, -1.6]))


def test_eq4_semantic_scores_by_hand():
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]])  # [Q=2, C=2]
    masks = torch.tensor([[[1.0, 0.0]], [[0.5, 1.0]]])  # [Q=2, H=1, W=2]
    scores = semantic_scores(probs, masks)
    # S_0 = 0.8*[1, 0] + 0.3*[0.5, 1];  S_1 = 0.2*[1, 0] + 0.7*[0.5, 1]
    torch.testing.assert_close(scores, torch.tensor([[[0.95, 0.3]], [[0.55, 0.7]]]))
    assert semantic_argmax(
        probs, tensor_chunks(masks), (1, 2), class_chunk=1, query_chunk=1
    ).tolist() == [[0, 1]]
    torch.testing.assert_close(
        chunked_semantic_scores(probs, tensor_chunks(masks), (1, 2), query_chunk=1), scores
    )


def test_chunked_argmax_equals_dense_argmax():
    generator = torch.Generator().manual_seed(3)
    probs = torch.rand(7, 10, generator=generator).softmax(-1)
    masks = torch.rand(7, 5, 6, generator=generator)
    dense = semantic_scores(probs, masks).argmax(0)
    for class_chunk in (1, 3, 10, 64):
        for query_chunk in (1, 2, 7, 16):
            label = semantic_argmax(probs, tensor_chunks(masks), (5, 6), class_chunk, query_chunk)
            assert torch.equal(label, dense), (class_chunk, query_chunk)


def test_query_chunked_scores_equal_the_unchunked_sum():
    generator = torch.Generator().manual_seed(4)
    probs = torch.rand(9, 4, generator=generator).softmax(-1)
    masks = torch.rand(9, 6, 5, generator=generator)
    for query_chunk in (1, 4, 9, 100):
        chunked = chunked_semantic_scores(probs, tensor_chunks(masks), (6, 5), query_chunk)
        torch.testing.assert_close(chunked, semantic_scores(probs, masks), rtol=1e-6, atol=1e-6)


def test_full_resolution_masks_are_made_a_chunk_of_queries_at_a_time(monkeypatch):
    """Each chunk equals the same queries upsampled all at once (to float rounding), and no full-resolution tensor
    ever holds more than ``query_chunk`` masks (memory O(chunk x H x W))."""
    generator = torch.Generator().manual_seed(5)
    logits = torch.randn(10, 8, 12, generator=generator)
    chunks = full_resolution_mask_chunks(
        logits, padded_size=(32, 48), image_size=(30, 41), output_size=(61, 83)
    )
    whole = chunks(0, 10)
    padded = torch.nn.functional.interpolate(
        logits[None], size=(32, 48), mode="bilinear", align_corners=False
    )
    expected = torch.nn.functional.interpolate(
        padded[:, :, :30, :41], size=(61, 83), mode="bilinear", align_corners=False
    )[0].sigmoid()
    torch.testing.assert_close(whole, expected, rtol=0, atol=0)
    torch.testing.assert_close(
        torch.cat([chunks(0, 3), chunks(3, 6), chunks(6, 10)]), whole, rtol=0, atol=1e-6
    )

    full_size_channels = []
    original = torch.nn.functional.interpolate

    def recording(x, size=None, **kwargs):
        out = original(x, size=size, **kwargs)
        if tuple(out.shape[-2:]) == (61, 83):
            full_size_channels.append(out.shape[1])
        return out

    monkeypatch.setattr(torch.nn.functional, "interpolate", recording)
    probs = torch.rand(10, 3, generator=generator).softmax(-1)
    label = semantic_argmax(probs, chunks, (61, 83), class_chunk=2, query_chunk=4)
    assert torch.equal(label, semantic_scores(probs, whole).argmax(0))
    assert full_size_channels and max(full_size_channels) == 4


def test_model_inference_is_the_same_for_any_query_chunk(shared_data):
    """The tiny model on a real CamVid photo: dense scores equal to float rounding, labels equal,
    with 3 queries at a time as with all 16 at once."""
    from detectron2.modeling import build_model

    from zsseg_d2.data.sem_seg_io import read_image
    from zsseg_d2.engine import load_config

    model = build_model(
        load_config(str(Path(__file__).resolve().parents[1] / "configs/cel/tiny/camvid_8-3.yaml"))
    ).eval()
    image = read_image(sorted((shared_data / "camvid" / "val" / "images").iterdir())[0], "RGB")
    small = torch.nn.functional.interpolate(
        torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float(), size=(96, 128)
    )
    inputs = [{"image": small[0].byte(), "height": image.shape[0], "width": image.shape[1]}]
    results = {}
    with torch.no_grad():
        for chunk in (16, 3):
            model.query_chunk = chunk
            results[chunk] = model(inputs)[0]
        model.max_dense_classes = 0
        label_only = model(inputs)[0]["sem_seg_label"]
    torch.testing.assert_close(results[3]["sem_seg"], results[16]["sem_seg"], rtol=1e-6, atol=1e-6)
    assert torch.equal(results[3]["sem_seg_label"], results[16]["sem_seg_label"])
    assert torch.equal(label_only, results[16]["sem_seg_label"])
    assert results[16]["sem_seg"].shape == (11, 360, 480)
