"""SIGN's Spatial Information Module (Sec. 3.2-3.3, Tables 2 and 4): F_x, z = SIM(E(x) ⊕ PE) (eq. 1).

"The Spatial Information Module consists of the encoding module and the reparameterization
module. The encoding module uses a residual structure": a 1x1 projection of E(x) ⊕ PE, then one
residual block of the architecture ``sim_type`` (Sec. 4.4):

- "conv": "(A) Convolution-based SIM uses simple residual blocks with consecutive convolution and
  activation layers" (two 3x3 convolutions, ``hidden`` channels between them);
- "attention": "(B) Attention-based [CaGNet] SIM learns three attention maps of different scales
  from deep features. Deep features are then element-wise multiplied with attention maps, and
  concatenated together" (3x3 convolutions of dilation 1, 2, 5 in a chain, ``hidden`` wide; a
  3x3 convolution to three sigmoid maps; a 1x1 convolution of the concatenation);
- "self_attention": "(C) ... the structure of Transformer Encoder": one self-attention head over
  all pixels (query, key and value projections, no output projection) and a feed-forward layer;
- "multihead_attention": "(D) Multihead self-attention ... the attention results are concatenated
  together and linearly transformed back to the original dimension": a Transformer-encoder layer;
- "none" (Table 4, "w/o SIM"): no positional encoding and no reparameterisation (z ~ N(0, I),
  no KL), the 1x1 projection and a convolutional residual block as trainable capacity ("we
  slightly increased the number of trainable parameters").

The paper's Appendix A, which gives the layers, is not in our copy; the widths in the configs are
chosen so that each SIM has the parameter count of Table 2. The reparameterisation module maps
F_x to the mean and log-variance of z and samples z = mu + sigma * eps (the KL of eq. 2 is in
``losses.py``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .positional_encoding import PositionalEncoder

SIM_TYPES = ("multihead_attention", "self_attention", "attention", "conv", "none")


class SIMOutput(NamedTuple):
    features: torch.Tensor  # F_x [B, D, H, W]
    latent: torch.Tensor  # z [B, Z, H, W]
    mean: torch.Tensor
    log_var: torch.Tensor


def _tokens(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).transpose(1, 2)


def _map(tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return tokens.transpose(1, 2).reshape(like.shape)


class SingleHeadSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(d)) V over the pixels, Q, K, V linear maps of the input (no output map)."""

    def __init__(self, dim: int):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        scores = self.query(tokens) @ self.key(tokens).transpose(1, 2) / tokens.shape[-1] ** 0.5
        return scores.softmax(dim=-1) @ self.value(tokens)


class TransformerEncoderBlock(nn.Module):
    """Pre-norm residual attention and feed-forward layer over the H*W pixels."""

    def __init__(self, dim: int, attention: nn.Module, feedforward: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = attention
        self.ffn = nn.Sequential(
            nn.Linear(dim, feedforward), nn.ReLU(inplace=True), nn.Linear(feedforward, dim)
        )

    def attend(self, tokens: torch.Tensor) -> torch.Tensor:
        if isinstance(self.attention, nn.MultiheadAttention):
            return self.attention(tokens, tokens, tokens, need_weights=False)[0]
        return self.attention(tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = _tokens(x)
        tokens = tokens + self.attend(self.norm1(tokens))
        tokens = tokens + self.ffn(self.norm2(tokens))
        return _map(tokens, x)


class ConvResidualBlock(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, dim, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class MultiScaleAttentionBlock(nn.Module):
    """CaGNet's contextual module as a residual block: three chained dilated convolutions, each
    output weighted by its own sigmoid attention map, concatenated and projected back."""

    def __init__(self, dim: int, hidden: int, dilations: tuple[int, ...] = (1, 2, 5)):
        super().__init__()
        widths = [dim] + [hidden] * len(dilations)
        self.scales = nn.ModuleList(
            nn.Conv2d(widths[i], hidden, 3, padding=d, dilation=d) for i, d in enumerate(dilations)
        )
        self.attention = nn.Conv2d(hidden * len(dilations), len(dilations), 3, padding=1)
        self.fuse = nn.Conv2d(hidden * len(dilations), dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs, h = [], x
        for conv in self.scales:
            h = torch.relu(conv(h))
            outputs.append(h)
        maps = torch.sigmoid(self.attention(torch.cat(outputs, dim=1)))
        weighted = [out * maps[:, i : i + 1] for i, out in enumerate(outputs)]
        return x + self.fuse(torch.cat(weighted, dim=1))


def _encoding_block(sim_type: str, dim: int, heads: int, feedforward: int, hidden: int):
    if sim_type == "multihead_attention":
        attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        return TransformerEncoderBlock(dim, attention, feedforward)
    if sim_type == "self_attention":
        return TransformerEncoderBlock(dim, SingleHeadSelfAttention(dim), feedforward)
    if sim_type == "attention":
        return MultiScaleAttentionBlock(dim, hidden)
    return ConvResidualBlock(dim, hidden)  # "conv", and the capacity of "none"


class SpatialInformationModule(nn.Module):
    def __init__(
        self,
        in_channels: int,
        positional_encoder: PositionalEncoder,
        feature_dim: int,
        latent_dim: int,
        sim_type: str = "multihead_attention",
        heads: int = 8,
        feedforward: int = 1024,
        blocks: int = 1,
        hidden: int = 256,
    ):
        super().__init__()
        if sim_type not in SIM_TYPES:
            raise ValueError(f"MODEL.SIGN.SIM_TYPE must be one of {SIM_TYPES}, got {sim_type!r}")
        if sim_type == "none" and positional_encoder.mode != "none":
            raise ValueError(
                "MODEL.SIGN.SIM_TYPE 'none' (Table 4, w/o SIM) has no positional encoding: set "
                f"MODEL.SIGN.POSITIONAL_ENCODING 'none', got {positional_encoder.mode!r}"
            )
        self.sim_type = sim_type
        self.positional_encoder = positional_encoder
        self.feature_dim, self.latent_dim = feature_dim, latent_dim
        self.input_proj = nn.Conv2d(in_channels + positional_encoder.out_channels, feature_dim, 1)
        self.blocks = nn.Sequential(
            *[
                _encoding_block(sim_type, feature_dim, heads, feedforward, hidden)
                for _ in range(blocks)
            ]
        )
        if sim_type != "none":
            self.mean = nn.Conv2d(feature_dim, latent_dim, 1)
            self.log_var = nn.Conv2d(feature_dim, latent_dim, 1)

    def forward(self, image_features: torch.Tensor) -> SIMOutput:
        features = self.blocks(self.input_proj(self.positional_encoder(image_features)))
        if (
            self.sim_type == "none"
        ):  # no reparameterisation: z ~ N(0, I), KL(N(0, I) || N(0, I)) = 0
            b, _, h, w = features.shape
            zeros = features.new_zeros(b, self.latent_dim, h, w)
            return SIMOutput(features, torch.randn_like(zeros), zeros, zeros)
        mean, log_var = self.mean(features), self.log_var(features)
        latent = reparameterize(mean, log_var) if self.training else mean
        return SIMOutput(features, latent, mean, log_var)


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """z = mu + exp(log_var / 2) * eps, eps ~ N(0, 1) (the reparameterisation trick)."""
    return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
