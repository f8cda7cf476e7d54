"""Mixed precision as Mask2Former runs it: a training step under autocast (bfloat16 on the CPU)
keeps the pixel decoder in float32 while the rest runs in low precision; the loss stays finite.
SOLVER.AMP.PRECISION chooses float16 (loss scaling) or bfloat16 (none); the trainer's step runs
under that dtype, and checkpoints load across precisions."""

from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from test_meta_arch import TINY, _batch
from torch import nn

from zsseg_d2.engine import load_config
from zsseg_d2.engine.trainer import MixedPrecisionTrainer, amp_precision


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


def _amp_config(precision: str, device: str = "cpu", enabled: bool = True):
    cfg = load_config(TINY, ["SOLVER.AMP.ENABLED", enabled, "SOLVER.AMP.PRECISION", precision])
    cfg.MODEL.DEVICE = device
    return cfg


def test_amp_precision_setting():
    assert amp_precision(_amp_config("float16")) is None  # float16 is CUDA-only: float32 on the CPU
    assert amp_precision(_amp_config("bfloat16")) is torch.bfloat16
    assert amp_precision(_amp_config("float16", "cuda")) is torch.float16
    assert amp_precision(_amp_config("bfloat16", enabled=False)) is None
    assert load_config(TINY).SOLVER.AMP.PRECISION == "float16"  # the default, for older GPUs
    with pytest.raises(ValueError, match="SOLVER.AMP.PRECISION must be one of.*'half'"):
        amp_precision(_amp_config("half"))


class _Recorder(nn.Module):
    """A linear model that records the autocast state its forward ran under."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.seen = []

    def forward(self, batch):
        self.seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return {"loss": self.linear(torch.stack(batch)).float().pow(2).mean()}


BATCH = [torch.ones(4), torch.full((4,), 2.0)]


def _trainer(precision: torch.dtype) -> MixedPrecisionTrainer:
    torch.manual_seed(0)
    model = _Recorder().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return MixedPrecisionTrainer(model, [BATCH] * 3, optimizer, precision, "cpu")


def _step(trainer: MixedPrecisionTrainer) -> None:
    with EventStorage(0):
        trainer.run_step()


def test_bfloat16_step_runs_under_bfloat16_autocast_without_loss_scaling():
    trainer = _trainer(torch.bfloat16)
    reference = _Recorder()
    reference.load_state_dict(trainer.model.state_dict())
    _step(trainer)
    assert trainer.model.seen == [(True, torch.bfloat16)]
    assert not trainer.grad_scaler.is_enabled()
    # The step is plain SGD on the gradient of the same loss under bfloat16 autocast.
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = reference(BATCH)["loss"]
    loss.backward()
    for name, param in reference.named_parameters():
        expected = param.detach() - 0.1 * param.grad
        assert torch.allclose(trainer.model.get_parameter(name), expected), name


def test_float16_step_scales_the_loss():
    trainer = _trainer(torch.float16)
    _step(trainer)
    assert trainer.model.seen == [(True, torch.float16)]
    assert trainer.grad_scaler.is_enabled() and trainer.grad_scaler.get_scale() > 1


def test_checkpoints_load_across_precisions():
    half = _trainer(torch.float16)
    _step(half)
    half.grad_scaler.update(1024.0)  # a scale other than the initial 65536
    state = half.state_dict()
    bf16 = _trainer(torch.bfloat16)
    bf16.load_state_dict(state)  # the float16 run's scaler state is not needed
    restored = _trainer(torch.float16)
    restored.load_state_dict(state)
    assert restored.grad_scaler.get_scale() == 1024.0
    fresh = _trainer(torch.float16)
    fresh.load_state_dict(bf16.state_dict())  # no scaler state: starts from the initial scale
    assert fresh.grad_scaler.get_scale() == 65536.0
