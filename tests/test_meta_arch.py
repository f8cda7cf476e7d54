"""The CEL segmentor end to end with the tiny config: losses, gradients, vocabularies, eq. 4 output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Instances

from zsseg_d2.engine import load_config
from zsseg_d2.modeling.clip import geometric_ensemble

TINY = str(Path(__file__).resolve().parents[1] / "configs" / "cel" / "tiny" / "camvid_8-3.yaml")


def _batch():
    label = torch.zeros(64, 96, dtype=torch.long)
    label[:, 48:] = 3
    label[:8] = 255  # ignored (unseen / unlabeled)
    instances = Instances(
        (64, 96), gt_classes=torch.tensor([0, 3]), gt_masks=torch.stack([label == 0, label == 3])
    )
    image = torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8)
    return [
        {
            "image": image,
            "sem_seg": label,
            "instances": instances,
            "image_labels": torch.tensor([0, 3, 5]),
        }
    ]


def test_training_losses_and_gradients(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    model = build_model(load_config(TINY)).train()
    losses = model(_batch())
    decoder_layers = load_config(TINY).MODEL.TRANSFORMER_DECODER.DEC_LAYERS
    for key in ("loss_ce", "loss_kl", "loss_mask", "loss_dice", "loss_rank"):
        assert key in losses and all(f"{key}_{i}" in losses for i in range(decoder_layers))
    sum(losses.values()).backward()
    for name in ("backbone.", "sem_seg_head.pixel_decoder.", "sem_seg_head.transformer_decoder."):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(name)]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert not any("text_embeddings" in n for n, _ in model.named_parameters())  # frozen buffers
    assert "train_text_embeddings" not in model.state_dict()  # and not in checkpoints


def test_inference_follows_the_vocabulary(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    model = build_model(load_config(TINY)).eval()
    inputs = [
        {"image": torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8), "height": 32, "width": 48}
    ]
    with torch.no_grad():
        dense = model(inputs)[0]
        assert dense["sem_seg"].shape == (11, 32, 48)
        assert torch.equal(dense["sem_seg_label"], dense["sem_seg"].argmax(0))
        model.set_vocabulary(["cat", "grass", "sky"])
        assert model(inputs)[0]["sem_seg"].shape == (3, 32, 48)
        model.max_dense_classes = 2  # large-vocabulary path: only the chunked argmax
        chunked = model(inputs)[0]
        model.max_dense_classes = 200
        assert set(chunked) == {"sem_seg_label"}
        assert torch.equal(chunked["sem_seg_label"], model(inputs)[0]["sem_seg_label"])


def test_clip_ensemble_is_applied_before_eq4(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    plain = build_model(load_config(TINY)).eval()
    ensembled = build_model(load_config(TINY, ["MODEL.CLIP.ENSEMBLE", "True"])).eval()
    ensembled.load_state_dict(plain.state_dict())
    ensembled.set_vocabulary(["sky", "road", "car"])  # car: unseen in camvid_train
    plain.set_vocabulary(["sky", "road", "car"])
    inputs = [
        {"image": torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8), "height": 64, "width": 96}
    ]
    with torch.no_grad():
        outputs, images = plain._predict(inputs)
        _, logits = plain.classifier(outputs["pred_class_embeds"], plain.test_text_embeddings)
        masks = next(plain._full_resolution_masks(outputs, images, inputs))
        p_model = logits[0].softmax(-1)
        p_clip = ensembled.clip_ensemble.clip_probs(
            inputs[0]["image"], masks, ensembled.test_text_embeddings
        )
        expected = geometric_ensemble(p_model, p_clip, torch.tensor([False, False, True]), 0.8)
        scores = ensembled(inputs)[0]["sem_seg"]
    torch.testing.assert_close(
        scores, (expected.t() @ masks.flatten(1)).view(3, 64, 96), rtol=1e-4, atol=1e-5
    )


def test_unseen_means_not_a_seen_class_of_the_training_data(tmp_path, monkeypatch):
    """The training vocabulary holds the unseen names (GZS3); the ensemble's unseen set must still
    be CamVid's unseen classes, in evaluation (Trainer.test), the demo and transfer."""
    from zsseg_d2.engine import Trainer
    from zsseg_d2.engine import trainer as trainer_module
    from zsseg_d2.engine.predictor import VocabularyPredictor

    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    cfg = load_config(TINY, ["MODEL.CLIP.ENSEMBLE", "True"])
    model = build_model(cfg).eval()
    assert {"tree", "car", "bicyclist"} <= set(model.train_vocabulary)
    seen_in_eval = []
    monkeypatch.setattr(
        trainer_module,
        "inference_on_dataset",
        lambda m, loader, ev: seen_in_eval.append(m.test_unseen.clone()) or {},
    )
    monkeypatch.setattr(Trainer, "build_test_loader", classmethod(lambda cls, cfg, name: None))
    Trainer.test(cfg, model, evaluators=[None])
    names = model.test_vocabulary
    assert [names[i] for i in seen_in_eval[0].nonzero().flatten()] == ["tree", "car", "bicyclist"]
    torch.save({"model": model.state_dict()}, tmp_path / "model.pth")
    cfg.MODEL.WEIGHTS = str(tmp_path / "model.pth")
    predictor = VocabularyPredictor(cfg, ["sky", "car", "dog"])  # the demo: any names
    assert predictor.model.test_unseen.tolist() == [False, True, True]
    transfer = load_config(TINY, ["MODEL.CLIP.ENSEMBLE", "True", "DATASETS.TRAIN", "()"])
    with pytest.raises(
        ValueError, match="set DATASETS.TRAIN to the data set the model was trained on"
    ):
        build_model(transfer)


@pytest.mark.parametrize("pixels", ["labelled", "all"])
def test_mask_loss_pixels(pixels, tmp_path, monkeypatch):
    """MODEL.CEL.LOSS.MASK_PIXELS: "labelled" leaves the ignored rows (unseen / void) and the
    padding out of L_mask; "all" (Mask2Former's) only the padding."""
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    model = build_model(load_config(TINY, ["MODEL.CEL.LOSS.MASK_PIXELS", pixels])).train()
    batch = _batch()
    images = model.preprocess(batch)
    (target,) = model._targets(batch, images)
    ignore = target["ignore_mask"]
    assert bool(ignore[8:64, :96].any()) is False
    assert bool(ignore[:8, :96].all()) is (pixels == "labelled")
    assert bool(ignore[:8, :96].any()) is (pixels == "labelled")
    assert bool(ignore[64:].all()) and bool(ignore[:, 96:].all())  # padding, if any
    with pytest.raises(ValueError, match="MASK_PIXELS must be one of"):
        build_model(load_config(TINY, ["MODEL.CEL.LOSS.MASK_PIXELS", "none"]))
