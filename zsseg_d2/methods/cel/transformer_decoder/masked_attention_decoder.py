"""Masked-attention transformer decoder (Mask2Former's design, Cheng et al. 2022) producing, for
each of N queries, a mask embedding e_q^m and an L2-normalised class embedding e_q^c (Dao et al.
2023, eq. 1-2). The decoder knows nothing about classes: the meta architecture compares the class
embeddings with text embeddings."""

from __future__ import annotations

import fvcore.nn.weight_init as weight_init
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d
from detectron2.utils.registry import Registry
from torch import nn

from .position_encoding import SinePositionEmbedding

TRANSFORMER_DECODER_REGISTRY = Registry("TRANSFORMER_DECODER")
TRANSFORMER_DECODER_REGISTRY.__doc__ = """
Transformer decoders turning multi-scale features and mask features into per-query predictions.
Called with ``(cfg, in_channels, class_embed_dim)``.
"""


def build_transformer_decoder(cfg, in_channels: int, class_embed_dim: int) -> nn.Module:
    """Build the transformer decoder named by ``cfg.MODEL.TRANSFORMER_DECODER.NAME``."""
    name = cfg.MODEL.TRANSFORMER_DECODER.NAME
    return TRANSFORMER_DECODER_REGISTRY.get(name)(cfg, in_channels, class_embed_dim)


def build_attention_mask(
    mask_logits: torch.Tensor, size: tuple[int, int], num_heads: int
) -> torch.Tensor:
    """Masked attention's mask from the previous mask prediction (Mask2Former, eq. 2-3).

    Args:
        mask_logits: [B, Q, H, W] mask logits of the previous prediction.
        size: (h, w) of the feature level attended to next.
        num_heads: attention heads (the mask is repeated per head).

    Returns:
        [B * num_heads, Q, h * w] bool, True where attention is NOT allowed: pixels whose resized
        mask probability is below 0.5. A query masked everywhere may attend everywhere (no NaN).
    """
    resized = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
    blocked = resized.flatten(2) < 0  # sigmoid(x) < 0.5
    blocked = blocked & ~blocked.all(dim=-1, keepdim=True)
    batch, n_queries, n_pixels = blocked.shape
    return (
        blocked.unsqueeze(1)
        .expand(-1, num_heads, -1, -1)
        .reshape(batch * num_heads, n_queries, n_pixels)
    )


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"MLP: num_layers must be >= 1, got {num_layers}")
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(
            nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = F.relu(x)
        return x


class AttentionBlock(nn.Module):
    """Multi-head attention with a residual connection and LayerNorm (pre- or post-norm)."""

    def __init__(self, d_model: int, nhead: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.attention = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(
        self,
        target: torch.Tensor,
        memory: torch.Tensor,
        query_pos: torch.Tensor,
        memory_pos: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``target``, ``query_pos``: [B, Q, C]; ``memory``, ``memory_pos``: [B, S, C];
        ``attn_mask``: [B*heads, Q, S] bool (True = blocked). Self-attention: memory is target."""
        queries = self.norm(target) if self.pre_norm else target
        keys = self.norm(memory) if self.pre_norm and memory is target else memory
        attended = self.attention(
            queries + query_pos, keys + memory_pos, keys, attn_mask=attn_mask, need_weights=False
        )[0]
        target = target + self.dropout(attended)
        return target if self.pre_norm else self.norm(target)


class FeedForwardBlock(nn.Module):
    """Two-layer feed-forward network with a residual connection and LayerNorm."""

    def __init__(self, d_model: int, dim_feedforward: int, dropout: float, pre_norm: bool):
        super().__init__()
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, target: torch.Tensor) -> torch.Tensor:
        x = self.norm(target) if self.pre_norm else target
        target = target + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x)))))
        return target if self.pre_norm else self.norm(target)


class DecoderLayer(nn.Module):
    """Masked cross-attention -> self-attention -> FFN."""

    def __init__(
        self, d_model: int, nhead: int, dim_feedforward: int, dropout: float, pre_norm: bool
    ):
        super().__init__()
        self.cross_attention = AttentionBlock(d_model, nhead, dropout, pre_norm)
        self.self_attention = AttentionBlock(d_model, nhead, dropout, pre_norm)
        self.ffn = FeedForwardBlock(d_model, dim_feedforward, dropout, pre_norm)

    def forward(
        self,
        queries: torch.Tensor,
        query_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        attn_mask: torch.Tensor,
    ) -> torch.Tensor:
        queries = self.cross_attention(queries, memory, query_pos, memory_pos, attn_mask)
        queries = self.self_attention(queries, queries, query_pos, query_pos)
        return self.ffn(queries)


@TRANSFORMER_DECODER_REGISTRY.register()
class MaskedAttentionDecoder(nn.Module):
    """Learnable queries refined by ``dec_layers`` layers, each cross-attending (masked by the
    previous prediction) to one feature level in round-robin; predictions are made before the
    first layer and after each one (deep supervision)."""

    @configurable
    def __init__(
        self,
        in_channels: int,
        class_embed_dim: int,
        *,
        hidden_dim: int,
        num_queries: int,
        nheads: int,
        dim_feedforward: int,
        dec_layers: int,
        pre_norm: bool,
        dropout: float,
        mask_dim: int,
        enforce_input_project: bool,
        class_embed_layers: int,
        mask_embed_layers: int,
        num_feature_levels: int,
    ):
        """
        Args:
            in_channels: channels of the multi-scale features.
            class_embed_dim: width D of the class embeddings (the text-embedding width).
            hidden_dim, num_queries, nheads, dim_feedforward, dec_layers, pre_norm, dropout: the
                transformer's shape.
            mask_dim: channels of the mask features (and of the mask embeddings e^m).
            enforce_input_project: project the features even when in_channels == hidden_dim.
            class_embed_layers, mask_embed_layers: depths of the MLPs E^c and E^m.
            num_feature_levels: number of multi-scale features attended to in round-robin.
        """
        super().__init__()
        if hidden_dim % nheads != 0:
            raise ValueError(
                f"MaskedAttentionDecoder: MODEL.TRANSFORMER_DECODER.HIDDEN_DIM ({hidden_dim}) must be "
                f"divisible by NHEADS ({nheads})"
            )
        self.num_heads = nheads
        self.num_feature_levels = num_feature_levels
        self.position_embedding = SinePositionEmbedding(hidden_dim // 2)
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_feature_levels, hidden_dim)
        self.input_projections = nn.ModuleList(
            _input_projection(in_channels, hidden_dim, enforce_input_project)
            for _ in range(num_feature_levels)
        )
        self.layers = nn.ModuleList(
            DecoderLayer(hidden_dim, nheads, dim_feedforward, dropout, pre_norm)
            for _ in range(dec_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_embed = MLP(hidden_dim, hidden_dim, class_embed_dim, class_embed_layers)
        self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, mask_embed_layers)

    @classmethod
    def from_config(cls, cfg, in_channels: int, class_embed_dim: int) -> dict:
        dec = cfg.MODEL.TRANSFORMER_DECODER
        return {
            "in_channels": in_channels,
            "class_embed_dim": class_embed_dim,
            "hidden_dim": dec.HIDDEN_DIM,
            "num_queries": dec.NUM_QUERIES,
            "nheads": dec.NHEADS,
            "dim_feedforward": dec.DIM_FEEDFORWARD,
            "dec_layers": dec.DEC_LAYERS,
            "pre_norm": dec.PRE_NORM,
            "dropout": dec.DROPOUT,
            "mask_dim": cfg.MODEL.SEM_SEG_HEAD.MASK_DIM,
            "enforce_input_project": dec.ENFORCE_INPUT_PROJ,
            "class_embed_layers": dec.CLASS_EMBED_LAYERS,
            "mask_embed_layers": dec.MASK_EMBED_LAYERS,
            "num_feature_levels": len(cfg.MODEL.SEM_SEG_HEAD.DEFORMABLE_ENCODER_IN_FEATURES),
        }

    def forward(
        self, multi_scale_features: list[torch.Tensor], mask_features: torch.Tensor
    ) -> dict[str, object]:
        """
        Args:
            multi_scale_features: ``num_feature_levels`` maps [B, in_channels, h_l, w_l].
            mask_features: [B, mask_dim, H/4, W/4], the per-pixel embedding F(I).

        Returns:
            ``{"pred_class_embeds": [B, Q, D] unit-norm, "pred_masks": [B, Q, H/4, W/4] logits,
            "aux_outputs": [{"pred_class_embeds", "pred_masks"}] * dec_layers}`` — the last
            prediction is the main one, ``aux_outputs`` holds the earlier ones in order.
        """
        if len(multi_scale_features) != self.num_feature_levels:
            raise ValueError(
                f"MaskedAttentionDecoder: expected {self.num_feature_levels} feature levels, "
                f"got {len(multi_scale_features)}"
            )
        memories, memory_pos, sizes = self._flatten_levels(multi_scale_features)
        batch = mask_features.shape[0]
        queries = self.query_feat.weight.unsqueeze(0).expand(batch, -1, -1)
        query_pos = self.query_pos.weight.unsqueeze(0).expand(batch, -1, -1)

        predictions = [self._predict(queries, mask_features)]
        for index, layer in enumerate(self.layers):
            level = index % self.num_feature_levels
            attn_mask = build_attention_mask(
                predictions[-1]["pred_masks"].detach(), sizes[level], self.num_heads
            )
            queries = layer(queries, query_pos, memories[level], memory_pos[level], attn_mask)
            predictions.append(self._predict(queries, mask_features))
        return {**predictions[-1], "aux_outputs": predictions[:-1]}

    def _flatten_levels(
        self, features: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """Projected features and positional encodings as [B, h*w, C] sequences, with each (h, w)."""
        memories, positions, sizes = [], [], []
        for level, (feature, projection) in enumerate(zip(features, self.input_projections)):
            sizes.append(tuple(feature.shape[-2:]))
            positions.append(self.position_embedding(feature).flatten(2).transpose(1, 2))
            memory = projection(feature).flatten(2).transpose(1, 2) + self.level_embed.weight[level]
            memories.append(memory)
        return memories, positions, sizes

    def _predict(
        self, queries: torch.Tensor, mask_features: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Class embeddings e^c (unit norm, eq. 2) and mask logits e^m . F(I) (eq. 1)."""
        decoded = self.decoder_norm(queries)
        class_embeds = F.normalize(self.class_embed(decoded), dim=-1)
        mask_embeds = self.mask_embed(decoded)
        pred_masks = torch.einsum("bqc,bchw->bqhw", mask_embeds, mask_features)
        return {"pred_class_embeds": class_embeds, "pred_masks": pred_masks}


def _input_projection(in_channels: int, hidden_dim: int, enforce: bool) -> nn.Module:
    if in_channels == hidden_dim and not enforce:
        return nn.Identity()
    projection = Conv2d(in_channels, hidden_dim, kernel_size=1)
    weight_init.c2_xavier_fill(projection)
    return projection
