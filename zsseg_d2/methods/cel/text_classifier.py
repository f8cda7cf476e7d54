"""Classification of query embeddings against text embeddings (eq. 2 of Dao et al. 2023)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TextClassifier(nn.Module):
    """r_qi = cos(e_q^c, t_i) and logits r_q / tau, so p_q = softmax(logits) is eq. 2.

    With ``learned_background`` (the ablation baseline of prior mask-proposal methods) a learned
    embedding t_0 adds a last "background" column to the logits; the similarity output never has it.
    """

    def __init__(self, embed_dim: int, temperature: float, learned_background: bool = False):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"MODEL.CEL.TEMPERATURE must be > 0, got {temperature}")
        self.temperature = temperature
        self.background = (
            nn.Parameter(torch.randn(embed_dim) * embed_dim**-0.5) if learned_background else None
        )

    @property
    def has_background(self) -> bool:
        return self.background is not None

    def forward(
        self, class_embeds: torch.Tensor, text_embeds: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``class_embeds`` [B,Q,D] and ``text_embeds`` [C,D], both unit norm -> (similarity, logits)."""
        similarity = torch.einsum("bqd,cd->bqc", class_embeds, text_embeds.to(class_embeds.dtype))
        scores = similarity
        if self.background is not None:
            background = F.normalize(self.background, dim=0).to(class_embeds.dtype)
            scores = torch.cat([similarity, (class_embeds @ background).unsqueeze(-1)], dim=-1)
        return similarity, scores / self.temperature
