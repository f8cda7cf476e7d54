"""The CLIP ensemble (Table 4): the geometric combination by hand, and crops batched over queries
against a per-query loop; cross-image crop batching of the pass against per-image scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from zsseg_d2.methods.cel.pseudo_labels.batching import CropBatcher
from zsseg_d2.modeling.clip import (
    ClipCropClassifier,
    ClipEnsemble,
    create_clip_model,
    geometric_ensemble,
    unseen_class_mask,
)
from zsseg_d2.modeling.clip.crops import crop_regions
from zsseg_d2.modeling.clip.scoring import crop_class_probs


@pytest.fixture(scope="module")
def tiny_clip():
    return create_clip_model("ZSSeg-Tiny", "")


def _classifier(tiny_clip, batch_size=3, mask_fill=True):
    model, preprocess = tiny_clip
    return ClipCropClassifier(
        model, preprocess, expand_ratio=0.25, mask_fill=mask_fill, batch_size=batch_size
    )


def test_geometric_ensemble_by_hand():
    # classes 0, 1 seen; 2, 3 unseen; lam = 0.75. All powers of two:
    # seen   p_m^0.75 p_c^0.25: c0 (2^-1, 2^-3) -> 2^-0.75 2^-0.75 = 2^-1.5; c1 (2^-2, 2^-3) -> 2^-1.5 2^-0.75 = 2^-2.25
    # unseen p_m^0.25 p_c^0.75: c2 (2^-3, 2^-2) -> 2^-0.75 2^-1.5 = 2^-2.25; c3 (2^-3, 2^-1) -> 2^-0.75 2^-0.75 = 2^-1.5
    p_model = torch.tensor([[0.5, 0.25, 0.125, 0.125]])
    p_clip = torch.tensor([[0.125, 0.125, 0.25, 0.5]])
    unseen = unseen_class_mask(["a", "b", "c", "d"], ["d", "c"])
    assert unseen.tolist() == [False, False, True, True]
    expected = torch.tensor([[2**-1.5, 2**-2.25, 2**-2.25, 2**-1.5]])
    assert torch.allclose(geometric_ensemble(p_model, p_clip, unseen, 0.75), expected, atol=1e-7)
    # lam = 1: the model alone on seen classes, CLIP alone on unseen ones
    assert torch.allclose(
        geometric_ensemble(p_model, p_clip, unseen, 1.0), torch.tensor([[0.5, 0.25, 0.25, 0.5]])
    )
    with pytest.raises(ValueError, match="ENSEMBLE_LAMBDA"):
        geometric_ensemble(p_model, p_clip, unseen, 1.5)


def test_clip_ensemble_matches_a_per_query_loop(tiny_clip):
    generator = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (3, 24, 20), dtype=torch.uint8, generator=generator)
    mask_probs = torch.full((4, 24, 20), 0.1)
    mask_probs[0, :, :10] = 0.9  # left half
    mask_probs[2, 2:9, 12:19] = 0.8  # a block
    mask_probs[3, 20:, :] = 0.6  # bottom strip; query 1 stays empty -> p_clip = 1 (reference)
    text = torch.nn.functional.normalize(torch.randn(5, 64, generator=generator), dim=-1)
    p_model = torch.randn(4, 5, generator=generator).softmax(dim=-1)
    unseen = torch.tensor([False, True, False, True, False])
    classifier = _classifier(tiny_clip, batch_size=3)
    ensemble = ClipEnsemble(classifier, lam=0.8)
    ensembled = ensemble(image, mask_probs, p_model, unseen, text)
    # Masks of another size are first resized (bilinear) to the image: the same as doing it beforehand.
    half = mask_probs[:, ::2, ::2]
    resized = torch.nn.functional.interpolate(
        half[None], size=(24, 20), mode="bilinear", align_corners=False
    )[0]
    assert torch.allclose(
        ensemble.clip_probs(image, half, text), ensemble.clip_probs(image, resized, text)
    )

    model, preprocess = tiny_clip
    scale = float(model.logit_scale.exp())
    for q in range(4):
        mask = mask_probs[q : q + 1] > 0.5
        if mask.any():
            crop = crop_regions(
                image,
                mask,
                preprocess["size"],
                preprocess["mean"],
                preprocess["std"],
                0.25,
                mask_fill=True,
            )
            p_clip = crop_class_probs(model.encode_image(crop, normalize=True), text, scale)[0]
        else:
            p_clip = torch.ones(5)
        for c in range(5):
            lam = 0.2 if unseen[c] else 0.8  # the model's exponent
            expected = p_model[q, c] ** lam * p_clip[c] ** (1 - lam)
            assert torch.isclose(ensembled[q, c], expected, atol=1e-5), (q, c)


def test_empty_masks_keep_the_model_probability_and_encode_nothing(tiny_clip):
    classifier = _classifier(tiny_clip)
    encoded = []
    encode = classifier.encode
    classifier.encode = lambda crops: encoded.append(len(crops)) or encode(crops)
    p_model = torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]])
    masks = torch.zeros(2, 16, 16)
    masks[1, 4:8, 4:8] = 0.9  # query 0 empty
    text = torch.nn.functional.normalize(
        torch.randn(3, 64, generator=torch.Generator().manual_seed(5)), dim=-1
    )
    ensembled = ClipEnsemble(classifier, lam=0.7)(
        torch.zeros(3, 16, 16, dtype=torch.uint8),
        masks,
        p_model,
        torch.tensor([False, False, True]),
        text,
    )
    assert encoded == [1]  # only the non-empty query was cropped
    # query 0: seen p^0.7, unseen p^0.3 (p_clip = 1)
    assert torch.allclose(ensembled[0], torch.tensor([0.5**0.7, 0.25**0.7, 0.25**0.3]))
    assert not torch.allclose(ensembled[1], torch.tensor([0.25**0.7, 0.25**0.7, 0.5**0.3]))


def test_ensemble_settings_from_config():
    from zsseg_d2.engine import load_config

    cfg = load_config(
        str(Path(__file__).resolve().parents[1] / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"),
        ["MODEL.CLIP.ENSEMBLE_LAMBDA", "0.7", "MODEL.CLIP.ENSEMBLE_MASK_THRESHOLD", "0.4"],
    )
    ensemble = ClipEnsemble.from_config(cfg)
    assert (ensemble.lam, ensemble.mask_threshold) == (0.7, 0.4)
    assert (
        ensemble.classifier.mask_fill is True and ensemble.classifier.expand_ratio == 0.0
    )  # reference: mean fill


def test_crop_batcher_across_images_equals_per_image_scores(tiny_clip):
    classifier = _classifier(tiny_clip, batch_size=3)
    generator = torch.Generator().manual_seed(4)
    text = torch.nn.functional.normalize(torch.randn(3, 64, generator=generator), dim=-1)
    batcher = CropBatcher(classifier, text)
    crop_counts = [2, 0, 4, 1, 5]  # crops straddle batches of 3; one image has none
    crops = [torch.randn(n, 3, 32, 32, generator=generator) for n in crop_counts]
    done = []
    for index, image_crops in enumerate(crops):
        batcher.add(index, image_crops)
        done += batcher.completed()
    done += batcher.completed(flush=True)
    assert sorted(index for index, _ in done) == [0, 1, 2, 3, 4]  # each image exactly once
    assert done[0][0] == 1  # no crops: complete at once, before image 0
    assert batcher.crops_encoded == sum(crop_counts)
    for index, scores in done:
        if crop_counts[index] == 0:
            assert torch.equal(scores, torch.zeros(3))
            continue
        probs = classifier.class_probs(classifier.encode(crops[index]), text)
        assert torch.allclose(scores, probs.max(dim=0).values, atol=1e-6)
