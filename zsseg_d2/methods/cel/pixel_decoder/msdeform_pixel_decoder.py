"""Pixel decoder: a multi-scale deformable-attention encoder over res3-res5 plus an FPN step to res2
(Mask2Former's design, Cheng et al. 2022), giving the per-pixel embedding F(I) used for the masks
M_q = sigmoid(e_q^m . F(I)) (eq. 1 of Dao et al. 2023) and the multi-scale features attended to
by the transformer decoder."""

from __future__ import annotations

import fvcore.nn.weight_init as weight_init
import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from torch import nn

from ..transformer_decoder.position_encoding import SinePositionEmbedding
from .ms_deform_attn import MSDeformAttn


class DeformableEncoderLayer(nn.Module):
    """Deformable self-attention over all levels, then a feed-forward block (both post-norm)."""

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        dropout: float,
        n_levels: int,
        n_heads: int,
        n_points: int,
        impl: str,
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(d_model, n_levels, n_heads, n_points, impl=impl)
        self.norm1 = nn.LayerNorm(d_model)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        src: torch.Tensor,
        pos: torch.Tensor,
        reference_points: torch.Tensor,
        spatial_shapes: torch.Tensor,
        level_start_index: torch.Tensor,
    ) -> torch.Tensor:
        """``src``, ``pos``: [B, S, C]; ``reference_points``: [B, S, L, 2] -> [B, S, C]."""
        attended = self.self_attn(
            src + pos, reference_points, src, spatial_shapes, level_start_index
        )
        src = self.norm1(src + self.dropout(attended))
        hidden = self.dropout(F.relu(self.linear1(src)))
        return self.norm2(src + self.dropout(self.linear2(hidden)))


class DeformableEncoder(nn.Module):
    """A stack of :class:`DeformableEncoderLayer` over several flattened feature maps."""

    def __init__(
        self,
        d_model: int,
        num_layers: int,
        n_levels: int,
        n_heads: int,
        n_points: int,
        dim_feedforward: int,
        dropout: float,
        impl: str,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(
                d_model, dim_feedforward, dropout, n_levels, n_heads, n_points, impl
            )
            for _ in range(num_layers)
        )
        self.level_embed = nn.Parameter(torch.empty(n_levels, d_model))
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)
        for module in self.modules():
            if isinstance(module, MSDeformAttn):
                module.reset_parameters()
        nn.init.normal_(self.level_embed)

    def forward(
        self, features: list[torch.Tensor], positions: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """``features``, ``positions``: one [B, C, H_l, W_l] map per level -> the encoded maps."""
        # Level shapes stay on the host: the attention reads them there, without a device sync.
        spatial_shapes = torch.tensor([f.shape[-2:] for f in features], dtype=torch.long)
        sizes = spatial_shapes.prod(1)
        level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
        src = torch.cat([f.flatten(2).transpose(1, 2) for f in features], dim=1)
        pos = torch.cat(
            [
                p.flatten(2).transpose(1, 2) + self.level_embed[level]
                for level, p in enumerate(positions)
            ],
            dim=1,
        )
        reference_points = _pixel_centres(features)[None, :, None, :].expand(
            src.shape[0], -1, len(features), -1
        )
        for layer in self.layers:
            src = layer(src, pos, reference_points, spatial_shapes, level_start_index)
        per_level = src.split([h * w for h, w in (f.shape[-2:] for f in features)], dim=1)
        return [
            x.transpose(1, 2).reshape(f.shape[0], -1, *f.shape[-2:])
            for x, f in zip(per_level, features)
        ]


def _pixel_centres(features: list[torch.Tensor]) -> torch.Tensor:
    """[S, 2]: the (x, y) centre of every pixel of every level, normalised to [0, 1]."""
    centres = []
    for feature in features:
        height, width = feature.shape[-2:]
        ys = (torch.arange(height, device=feature.device, dtype=feature.dtype) + 0.5) / height
        xs = (torch.arange(width, device=feature.device, dtype=feature.dtype) + 0.5) / width
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        centres.append(torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1))
    return torch.cat(centres, dim=0)


@SEM_SEG_HEADS_REGISTRY.register()
class MSDeformAttnPixelDecoder(nn.Module):
    """Deformable-attention encoder over the coarse features, then FPN lateral + output convs down
    to ``common_stride``, then a 1x1 conv to the mask-embedding width."""

    @configurable
    def __init__(
        self,
        input_shape: dict[str, ShapeSpec],
        *,
        transformer_in_features: list[str],
        conv_dim: int,
        mask_dim: int,
        norm: str,
        common_stride: int,
        encoder_layers: int,
        encoder_heads: int,
        encoder_points: int,
        encoder_dim_feedforward: int,
        encoder_dropout: float,
        attn_impl: str,
    ):
        """
        Args:
            input_shape: the backbone features given to the decoder (name -> shape).
            transformer_in_features: the features refined by the deformable encoder.
            conv_dim: width of the decoder; mask_dim: width of the output mask features.
            norm: Detectron2 norm of the FPN convs; common_stride: stride of the mask features.
            encoder_*: depth, heads, points per level and head, FFN width, dropout of the encoder.
            attn_impl: ``"auto"`` or ``"pytorch"`` (see :class:`MSDeformAttn`).
        """
        super().__init__()
        missing = [name for name in transformer_in_features if name not in input_shape]
        if missing:
            raise ValueError(
                f"MSDeformAttnPixelDecoder: MODEL.SEM_SEG_HEAD.DEFORMABLE_ENCODER_IN_FEATURES {missing} are not in "
                f"the head's input features {sorted(input_shape)} (MODEL.SEM_SEG_HEAD.IN_FEATURES)"
            )
        if conv_dim % 32 != 0:
            raise ValueError(
                f"MSDeformAttnPixelDecoder: MODEL.SEM_SEG_HEAD.CONVS_DIM ({conv_dim}) must be a "
                "multiple of 32 (GroupNorm with 32 groups)"
            )
        by_stride = sorted(input_shape.items(), key=lambda item: -item[1].stride)
        self.transformer_in_features = [
            name for name, _ in by_stride if name in transformer_in_features
        ]
        finest_encoded_stride = min(
            input_shape[name].stride for name in self.transformer_in_features
        )
        self.fpn_features = [
            name
            for name, shape in by_stride
            if common_stride <= shape.stride < finest_encoded_stride
        ]
        reached_stride = min(
            [finest_encoded_stride] + [input_shape[name].stride for name in self.fpn_features]
        )
        if reached_stride != common_stride:
            raise ValueError(
                f"MSDeformAttnPixelDecoder: no input feature at MODEL.SEM_SEG_HEAD.COMMON_STRIDE={common_stride} "
                f"(strides {[shape.stride for _, shape in by_stride]}); add it to MODEL.SEM_SEG_HEAD.IN_FEATURES"
            )

        self.input_projections = nn.ModuleList(
            _input_projection(input_shape[name].channels, conv_dim)
            for name in self.transformer_in_features
        )
        self.position_embedding = SinePositionEmbedding(conv_dim // 2)
        self.encoder = DeformableEncoder(
            d_model=conv_dim,
            num_layers=encoder_layers,
            n_levels=len(self.transformer_in_features),
            n_heads=encoder_heads,
            n_points=encoder_points,
            dim_feedforward=encoder_dim_feedforward,
            dropout=encoder_dropout,
            impl=attn_impl,
        )
        use_bias = norm == ""
        self.lateral_convs = nn.ModuleList()
        self.output_convs = nn.ModuleList()
        for name in self.fpn_features:
            lateral = Conv2d(
                input_shape[name].channels,
                conv_dim,
                1,
                bias=use_bias,
                norm=get_norm(norm, conv_dim),
            )
            output = Conv2d(
                conv_dim,
                conv_dim,
                3,
                padding=1,
                bias=use_bias,
                norm=get_norm(norm, conv_dim),
                activation=F.relu,
            )
            weight_init.c2_xavier_fill(lateral)
            weight_init.c2_xavier_fill(output)
            self.lateral_convs.append(lateral)
            self.output_convs.append(output)
        self.mask_projection = Conv2d(conv_dim, mask_dim, 1)
        weight_init.c2_xavier_fill(self.mask_projection)

    @classmethod
    def from_config(cls, cfg, input_shape: dict[str, ShapeSpec]) -> dict:
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "input_shape": {
                name: shape for name, shape in input_shape.items() if name in head.IN_FEATURES
            },
            "transformer_in_features": list(head.DEFORMABLE_ENCODER_IN_FEATURES),
            "conv_dim": head.CONVS_DIM,
            "mask_dim": head.MASK_DIM,
            "norm": head.NORM,
            "common_stride": head.COMMON_STRIDE,
            "encoder_layers": head.ENCODER_LAYERS,
            "encoder_heads": head.ENCODER_HEADS,
            "encoder_points": head.ENCODER_POINTS,
            "encoder_dim_feedforward": head.ENCODER_DIM_FEEDFORWARD,
            "encoder_dropout": head.ENCODER_DROPOUT,
            "attn_impl": head.DEFORMABLE_ATTN_IMPL,
        }

    def forward_features(
        self, features: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """
        Args:
            features: backbone features by name ([B, C_name, H/stride, W/stride]).

        Returns:
            mask_features: [B, mask_dim, H/common_stride, W/common_stride], the per-pixel embedding F(I).
            multi_scale_features: the encoder outputs [B, conv_dim, h_l, w_l], coarsest first.

        Runs in float32 under mixed precision (autocast off, inputs cast), as Mask2Former does: the
        compiled deformable-attention kernel has no half-precision path.
        """
        device_type = next(iter(features.values())).device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._forward_fp32({name: x.float() for name, x in features.items()})

    def _forward_fp32(
        self, features: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        missing = [
            name
            for name in self.transformer_in_features + self.fpn_features
            if name not in features
        ]
        if missing:
            raise KeyError(
                f"MSDeformAttnPixelDecoder: features {missing} missing (got {sorted(features)})"
            )
        projected = [
            proj(features[name])
            for name, proj in zip(self.transformer_in_features, self.input_projections)
        ]
        positions = [self.position_embedding(x) for x in projected]
        multi_scale_features = self.encoder(projected, positions)
        out = multi_scale_features[-1]
        for name, lateral_conv, output_conv in zip(
            self.fpn_features, self.lateral_convs, self.output_convs
        ):
            lateral = lateral_conv(features[name])
            upsampled = F.interpolate(
                out, size=lateral.shape[-2:], mode="bilinear", align_corners=False
            )
            out = output_conv(lateral + upsampled)
        return self.mask_projection(out), multi_scale_features

    def forward(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Same as :meth:`forward_features`."""
        return self.forward_features(features)


def _input_projection(in_channels: int, conv_dim: int) -> nn.Sequential:
    conv = nn.Conv2d(in_channels, conv_dim, kernel_size=1)
    nn.init.xavier_uniform_(conv.weight, gain=1)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.GroupNorm(32, conv_dim))
