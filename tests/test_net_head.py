"""Pixel decoder, masked-attention transformer decoder and the CEL head on a tiny configuration."""

from __future__ import annotations

import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.methods.cel import CELHead, build_cel_head
from zsseg_d2.methods.cel.pixel_decoder.msdeform_pixel_decoder import (
    MSDeformAttnPixelDecoder,
    _pixel_centres,
)
from zsseg_d2.methods.cel.transformer_decoder.masked_attention_decoder import (
    AttentionBlock,
    MaskedAttentionDecoder,
    build_attention_mask,
    build_transformer_decoder,
)
from zsseg_d2.methods.cel.transformer_decoder.position_encoding import SinePositionEmbedding

CLASS_EMBED_DIM = 16
INPUT_SHAPE = {f"res{i}": ShapeSpec(channels=4 * 2**i, stride=2**i) for i in (2, 3, 4, 5)}


def _tiny_cfg():
    cfg = get_cfg()
    add_zsseg_config(cfg)
    head, dec = cfg.MODEL.SEM_SEG_HEAD, cfg.MODEL.TRANSFORMER_DECODER
    head.CONVS_DIM, head.MASK_DIM, head.ENCODER_LAYERS = 32, 32, 1
    head.ENCODER_HEADS, head.ENCODER_DIM_FEEDFORWARD = 4, 64
    dec.HIDDEN_DIM, dec.NUM_QUERIES, dec.DEC_LAYERS, dec.DIM_FEEDFORWARD, dec.NHEADS = (
        32,
        8,
        3,
        64,
        4,
    )
    return cfg


def _features(batch: int = 2, height: int = 64, width: int = 96) -> dict:
    return {
        name: torch.randn(batch, shape.channels, height // shape.stride, width // shape.stride)
        for name, shape in INPUT_SHAPE.items()
    }


def test_pixel_decoder_output_shapes_and_strides():
    decoder = MSDeformAttnPixelDecoder(_tiny_cfg(), INPUT_SHAPE)
    mask_features, multi_scale = decoder.forward_features(_features())
    assert mask_features.shape == (2, 32, 16, 24)  # stride 4
    assert [tuple(f.shape) for f in multi_scale] == [
        (2, 32, 2, 3),
        (2, 32, 4, 6),
        (2, 32, 8, 12),
    ]  # 32, 16, 8


def test_pixel_decoder_errors_name_the_setting():
    cfg = _tiny_cfg()
    cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_ENCODER_IN_FEATURES = ["res3", "res4", "res6"]
    with pytest.raises(ValueError, match="DEFORMABLE_ENCODER_IN_FEATURES"):
        MSDeformAttnPixelDecoder(cfg, INPUT_SHAPE)
    decoder = MSDeformAttnPixelDecoder(_tiny_cfg(), INPUT_SHAPE)
    features = _features()
    del features["res2"]
    with pytest.raises(KeyError, match="res2"):
        decoder.forward_features(features)


def test_pixel_centres_are_normalised_xy():
    centres = _pixel_centres([torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 1, 4)])
    expected = torch.tensor(
        [
            [0.25, 0.25],
            [0.75, 0.25],
            [0.25, 0.75],
            [0.75, 0.75],
            [0.125, 0.5],
            [0.375, 0.5],
            [0.625, 0.5],
            [0.875, 0.5],
        ]
    )
    torch.testing.assert_close(centres, expected)


def test_sine_position_embedding_hand_values():
    pos = SinePositionEmbedding(num_pos_feats=4)(torch.zeros(1, 3, 2, 5))
    assert pos.shape == (1, 8, 2, 5)
    # Channels 0-3 encode y, 4-7 x, with frequencies 1, 1, 1/100, 1/100 (10000^(2*floor(i/2)/4)),
    # sin on even channels and cos on odd ones; positions are (index + 1) / size * 2pi.
    assert pos[0, 0, 0, 0].item() == pytest.approx(math.sin(1 / 2 * 2 * math.pi), abs=1e-5)
    assert pos[0, 5, 1, 2].item() == pytest.approx(math.cos(3 / 5 * 2 * math.pi), abs=1e-5)
    assert pos[0, 7, 1, 2].item() == pytest.approx(math.cos(3 / 5 * 2 * math.pi / 100.0), abs=1e-5)
    assert pos[0, 2, 1, 4].item() == pytest.approx(math.sin(2 / 2 * 2 * math.pi / 100.0), abs=1e-5)


def test_attention_mask_blocks_pixels_outside_the_previous_mask():
    logits = torch.full((1, 2, 4, 4), -1.0)
    logits[0, 0, :, :2] = 1.0  # query 0 covers the left half; query 1 covers nothing
    mask = build_attention_mask(logits, (2, 2), num_heads=3)
    assert mask.shape == (3, 2, 4)
    for head in range(3):
        assert mask[head, 0].tolist() == [
            False,
            True,
            False,
            True,
        ]  # only the left column is attended
        assert mask[head, 1].tolist() == [False, False, False, False]  # all-masked row unmasked


def test_masked_cross_attention_ignores_blocked_pixels():
    block = AttentionBlock(d_model=8, nhead=2, dropout=0.0, pre_norm=False).eval()
    queries, query_pos = torch.randn(1, 2, 8), torch.randn(1, 2, 8)
    memory, memory_pos = torch.randn(1, 4, 8), torch.randn(1, 4, 8)
    logits = torch.full((1, 2, 2, 2), -1.0)
    logits[0, 0, 0, 0] = 1.0  # query 0 may only see pixel 0
    attn_mask = build_attention_mask(logits, (2, 2), num_heads=2)
    out = block(queries, memory, query_pos, memory_pos, attn_mask)

    changed_blocked = memory.clone()
    changed_blocked[0, 1:] += 5.0
    out_blocked = block(queries, changed_blocked, query_pos, memory_pos, attn_mask)
    torch.testing.assert_close(out_blocked[0, 0], out[0, 0])  # query 0 does not see pixels 1-3
    assert not torch.allclose(out_blocked[0, 1], out[0, 1])  # query 1 (all masked -> unmasked) does

    changed_allowed = memory.clone()
    changed_allowed[0, 0] += 5.0
    assert not torch.allclose(
        block(queries, changed_allowed, query_pos, memory_pos, attn_mask)[0, 0], out[0, 0]
    )


def _decoder_inputs(batch: int = 2) -> tuple:
    multi_scale = [torch.randn(batch, 32, h, w) for h, w in ((2, 3), (4, 6), (8, 12))]
    return multi_scale, torch.randn(batch, 32, 16, 24)


def test_decoder_outputs_and_deep_supervision():
    decoder = build_transformer_decoder(_tiny_cfg(), 32, CLASS_EMBED_DIM)
    assert isinstance(decoder, MaskedAttentionDecoder)
    out = decoder(*_decoder_inputs())
    assert len(out["aux_outputs"]) == 3
    for prediction in [out] + out["aux_outputs"]:
        assert prediction["pred_class_embeds"].shape == (2, 8, CLASS_EMBED_DIM)
        assert prediction["pred_masks"].shape == (2, 8, 16, 24)
        norms = prediction["pred_class_embeds"].norm(dim=-1)
        torch.testing.assert_close(norms, torch.ones_like(norms))


def test_decoder_layers_use_round_robin_levels_and_previous_masks():
    cfg = _tiny_cfg()
    cfg.MODEL.TRANSFORMER_DECODER.DEC_LAYERS = 4
    decoder = build_transformer_decoder(cfg, 32, CLASS_EMBED_DIM)
    seen = []

    def record(module, args):
        _, memory, _, _, attn_mask = args
        seen.append((memory.shape[1], attn_mask))

    for layer in decoder.layers:
        layer.cross_attention.register_forward_pre_hook(record)
    multi_scale, mask_features = _decoder_inputs()
    out = decoder(multi_scale, mask_features)
    sizes = [(2, 3), (4, 6), (8, 12), (2, 3)]
    assert [length for length, _ in seen] == [h * w for h, w in sizes]
    for index, (size, (_, attn_mask)) in enumerate(zip(sizes, seen)):
        expected = build_attention_mask(out["aux_outputs"][index]["pred_masks"], size, num_heads=4)
        assert torch.equal(attn_mask, expected)


def test_head_builds_from_cfg_and_gradients_reach_every_parameter():
    head = build_cel_head(_tiny_cfg(), INPUT_SHAPE, CLASS_EMBED_DIM)
    assert isinstance(head, CELHead)
    # Deformable DETR initialises these weights to zero, which blocks gradients to what feeds
    # them (the encoder's level embedding) at step 0; give them small values first.
    for module in head.modules():
        if hasattr(module, "sampling_offsets"):
            torch.nn.init.normal_(module.sampling_offsets.weight, std=0.01)
            torch.nn.init.normal_(module.attention_weights.weight, std=0.01)
    out = head(_features())
    loss = sum(
        prediction["pred_masks"].square().mean() + prediction["pred_class_embeds"][..., 0].sum()
        for prediction in [out] + out["aux_outputs"]
    )
    loss.backward()
    without_grad = [
        name
        for name, param in head.named_parameters()
        if param.grad is None or not param.grad.abs().sum() > 0
    ]
    assert without_grad == []


def test_head_rejects_missing_backbone_features():
    shapes = {name: shape for name, shape in INPUT_SHAPE.items() if name != "res2"}
    with pytest.raises(ValueError, match="IN_FEATURES"):
        build_cel_head(_tiny_cfg(), shapes, CLASS_EMBED_DIM)
