"""On a GPU: CEL's criterion waits for the device once per decoder layer (the matching costs'
copy to the assignment solver) plus once per batch (the image-level label check), and the pixel
decoder never. Counted with PyTorch's CUDA sync debug mode; skipped without CUDA."""

from __future__ import annotations

import warnings

import pytest
import torch
from detectron2.modeling import build_model
from test_loss_criterion import make_criterion, make_outputs, make_targets
from test_meta_arch import TINY

from zsseg_d2.engine import load_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="counts CUDA syncs")


def _syncs(function) -> list[str]:
    """The synchronizing CUDA operations ``function`` makes (one warning each)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            function()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return [str(w.message) for w in caught if "synchroniz" in str(w.message)]


def _to_cuda(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cuda().requires_grad_(value.requires_grad)
    if isinstance(value, dict):
        return {key: _to_cuda(item) for key, item in value.items()}
    return [_to_cuda(item) for item in value]


def test_criterion_syncs_once_per_layer_and_once_per_batch():
    outputs = make_outputs()
    outputs["aux_outputs"] = [make_outputs(), make_outputs()]  # three layers
    outputs, targets = _to_cuda(outputs), _to_cuda(make_targets())
    criterion = make_criterion()
    syncs = _syncs(lambda: criterion(outputs, targets))
    assert len(syncs) <= 3 + 1, syncs


def test_pixel_decoder_does_not_sync(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    cfg = load_config(TINY)
    cfg.MODEL.DEVICE = "cuda"
    model = build_model(cfg)
    images = torch.randn(2, 3, 128, 128, device="cuda")
    with torch.no_grad():
        features = model.backbone(images)
        syncs = _syncs(lambda: model.sem_seg_head.pixel_decoder.forward_features(features))
    assert syncs == []
