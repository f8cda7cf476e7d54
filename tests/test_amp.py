"""Mixed precision as Mask2Former runs it: a training step under autocast (bfloat16 on the CPU)
keeps the pixel decoder in float32 while the rest runs in low precision; the loss stays finite."""

from __future__ import annotations

import torch
from detectron2.modeling import build_model
from test_meta_arch import TINY, _batch

from zsseg_d2.engine import load_config
from zsseg_d2.engine.trainer import use_amp


def _output_dtypes(module: torch.nn.Module, store: dict) -> list:
    def record(name):
        def hook(_, __, output):
            outputs = output if isinstance(output, (tuple, list)) else [output]
            store[name] = {t.dtype for t in outputs if isinstance(t, torch.Tensor)}

        return hook

    return [m.register_forward_hook(record(n)) for n, m in module.named_modules() if n]


def test_training_step_under_bfloat16_autocast_keeps_pixel_decoder_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    torch.manual_seed(0)
    model = build_model(load_config(TINY)).train()
    decoder_dtypes, other_dtypes = {}, {}
    handles = _output_dtypes(model.sem_seg_head.pixel_decoder, decoder_dtypes)
    handles += _output_dtypes(model.sem_seg_head.transformer_decoder, other_dtypes)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = model(_batch())
    for handle in handles:
        handle.remove()
    assert decoder_dtypes and all(d == {torch.float32} for d in decoder_dtypes.values() if d), (
        decoder_dtypes
    )
    assert any(torch.bfloat16 in d for d in other_dtypes.values())  # autocast was on elsewhere
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.sem_seg_head.pixel_decoder.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_amp_config_trains_in_fp32_on_the_cpu():
    assert not use_amp(load_config(TINY, ["SOLVER.AMP.ENABLED", "True"]))
    cfg = load_config(TINY, ["SOLVER.AMP.ENABLED", "True"])
    cfg.MODEL.DEVICE = "cuda"
    assert use_amp(cfg)
