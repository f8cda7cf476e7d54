"""Contrastive training of an open_clip model on captioned regions (CLIP's symmetric InfoNCE).

Each step draws ``groups`` class-distinct groups: one random region of every class that has
regions, captioned "<template>(<class name>)" with a template drawn from the prompt templates that
inference averages. Within a group every caption is another class, so the symmetric InfoNCE of
open_clip's ``ClipLoss`` (with the model's learned logit scale) has no false negatives; the loss is
the mean over groups. Class-balanced groups also give rare classes (CamVid's bicyclist, 0.3% of
the pixels) as many steps as frequent ones.

The token embedding stays at its initial weights: of its ~49k rows only the prompts' few words
would move, and updating them all was most of the optimizer's time.

With ``text_features`` given (the "locked text" mode) the captions are those fixed class vectors,
e.g. real CLIP text embeddings, and only the image tower and the logit scale learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from tqdm import tqdm

from .regions import RegionSet

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps exp(logit_scale) to 100


@dataclass(frozen=True)
class ClipTrainingSettings:
    """Optimisation settings of :func:`train_clip` (AdamW, cosine decay after a linear warm-up)."""

    steps: int = 1500
    groups: int = 8  # class-distinct groups per step (batch = groups x classes regions)
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    flip: bool = True  # random horizontal flips of the crops
    seed: int = 0


def class_distinct_batch(
    class_rows: Sequence[torch.Tensor], groups: int, generator: torch.Generator
) -> torch.Tensor:
    """``[groups, K]`` region indices: row g holds one random region of each of the K classes."""
    picks = [rows[torch.randint(len(rows), (groups,), generator=generator)] for rows in class_rows]
    return torch.stack(picks, dim=1)


def _parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices only; gains, biases, embeddings' scale and the logit scale
    are not decayed (CLIP's recipe; a decayed logit scale would shrink towards 1)."""
    decayed, kept = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (kept if parameter.ndim < 2 or "logit_scale" in name else decayed).append(parameter)
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": kept, "weight_decay": 0.0},
    ]


def _learning_rate(step: int, settings: ClipTrainingSettings) -> float:
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(settings.steps - settings.warmup, 1)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * progress))


class CaptionEncoder:
    """Text features of (class, template) captions through the model's text tower; each distinct
    caption of a batch is encoded once."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Callable,
        class_names: Sequence[str],
        templates: Sequence[Callable[[str], str]],
    ):
        self.model = model
        self.num_templates = len(templates)
        self.tokens = tokenizer([template(name) for name in class_names for template in templates])

    def __call__(self, classes: torch.Tensor, template_index: torch.Tensor) -> torch.Tensor:
        caption = classes * self.num_templates + template_index
        distinct, position = torch.unique(caption, return_inverse=True)
        return self.model.encode_text(self.tokens[distinct], normalize=True)[position]


def train_clip(
    model: torch.nn.Module,
    regions: RegionSet,
    templates: Sequence[Callable[[str], str]],
    tokenizer: Callable,
    settings: ClipTrainingSettings,
    text_features: torch.Tensor | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` in place on ``regions``; returns the loss and logit scale every 50 steps."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    classes = [c for c, count in enumerate(regions.class_counts()) if count > 0]
    class_rows = [torch.nonzero(regions.labels == c).flatten() for c in classes]
    classes_t = torch.tensor(classes)
    model.train().requires_grad_(True)
    model.token_embedding.requires_grad_(
        False
    )  # 49k x width rows, a few used: AdamW's largest cost
    if text_features is not None:
        model.transformer.requires_grad_(False)  # locked text side: only the image tower learns
        locked = F.normalize(text_features.float(), dim=-1)[classes_t]
    else:
        captions = CaptionEncoder(model, tokenizer, regions.class_names, templates)
    optimizer = torch.optim.AdamW(_parameter_groups(model, settings.weight_decay), lr=settings.lr)
    loss_fn, history = ClipLoss(), []
    bar = tqdm(range(settings.steps), desc="CLIP training", disable=not progress, mininterval=2.0)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, settings)
        batch = class_distinct_batch(class_rows, settings.groups, generator)  # [G, K]
        crops = regions.crops[batch.flatten()]
        if settings.flip:
            flips = torch.rand(len(crops), generator=generator) < 0.5
            crops = torch.where(flips[:, None, None, None], crops.flip(-1), crops)
        image = model.encode_image(crops, normalize=True).view(*batch.shape, -1)
        if text_features is None:
            template_index = torch.randint(len(templates), (batch.numel(),), generator=generator)
            text = captions(classes_t.repeat(settings.groups), template_index).view(
                *batch.shape, -1
            )
        else:
            text = locked.expand(settings.groups, -1, -1)
        scale = model.logit_scale.exp()
        loss = torch.stack(
            [loss_fn(image[g], text[g], scale) for g in range(settings.groups)]
        ).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        if step % 50 == 0 or step == settings.steps - 1:
            history.append({"step": step, "loss": loss.item(), "logit_scale": scale.item()})
            bar.set_postfix(loss=f"{loss.item():.3f}", scale=f"{scale.item():.1f}")
    model.eval().requires_grad_(False)
    return history
