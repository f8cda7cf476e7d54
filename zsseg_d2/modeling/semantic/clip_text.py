"""Frozen CLIP text embeddings t_i of class names (the classifier of eq. 2), cached on disk.

Each class name is filled into the prompt templates, encoded by the CLIP text tower, the
L2-normalised embeddings are averaged over templates and renormalised. The result depends only on
(model, weights, templates, class list), which key an on-disk cache, so a vocabulary is encoded
once however often it is used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import open_clip
import torch
from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES
from tqdm import tqdm

from ...utils.file_io import atomic_write
from ..clip.loader import check_model_name, create_clip_model, weights_digest, weights_identity
from .names import validate_class_names

logger = logging.getLogger(__name__)

PROMPT_TEMPLATES = {
    "imagenet": OPENAI_IMAGENET_TEMPLATES,  # CLIP's 80 ImageNet templates
    "single": (lambda c: f"a photo of a {c}.",),
}
_PROMPTS_PER_BATCH = 256


def default_cache_dir() -> Path:
    return Path(os.environ.get("ZSSEG_CACHE", Path.home() / ".cache" / "zsseg_d2"))


class TextEmbedder:
    """Encodes vocabularies with a CLIP text tower, loaded only on a cache miss and released
    afterwards (it is not needed again until a new vocabulary comes)."""

    def __init__(
        self,
        model_name: str,
        pretrained: str,
        templates: str = "imagenet",
        cache_dir: str | None = None,
        offline: bool = False,
    ):
        if templates not in PROMPT_TEMPLATES:
            raise ValueError(
                f"MODEL.CLIP.PROMPT_TEMPLATES {templates!r} unknown; choose one of {sorted(PROMPT_TEMPLATES)}"
            )
        check_model_name(model_name)
        self.model_name = model_name
        self.pretrained = pretrained
        self.templates = templates
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.offline = offline

    @property
    def dim(self) -> int:
        """Width D of the embeddings (from the model's config; nothing is loaded)."""
        return int(open_clip.get_model_config(self.model_name)["embed_dim"])

    def settings_record(self) -> dict[str, dict[str, str]]:
        """The settings that determine the embeddings, for checkpoints: config key ->
        {"value": as configured, "identity": what is compared (the weights file's hash)}."""
        return {
            "MODEL.SEMANTIC.SOURCE": {"value": "clip_text", "identity": "clip_text"},
            "MODEL.CLIP.MODEL_NAME": {"value": self.model_name, "identity": self.model_name},
            "MODEL.CLIP.PRETRAINED": {
                "value": self.pretrained,
                "identity": weights_digest(self.pretrained),
            },
            "MODEL.CLIP.PROMPT_TEMPLATES": {"value": self.templates, "identity": self.templates},
        }

    def __call__(self, class_names: Sequence[str]) -> torch.Tensor:
        """Return the ``[C, D]`` unit-norm embeddings of ``class_names`` (CPU, float32)."""
        names = validate_class_names(class_names, "the vocabulary")
        path = self.cache_dir / f"{self._cache_key(names)}.pt"
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        embeddings = self._encode(names)
        with atomic_write(path) as f:
            torch.save(embeddings, f)
        return embeddings

    def _cache_key(self, names: list[str]) -> str:
        identity = {
            "model": self.model_name,
            "weights": weights_identity(self.pretrained),
            "templates": self.templates,
            "classes": names,
            "open_clip": open_clip.__version__,
        }
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]

    @torch.no_grad()
    def _encode(self, names: list[str]) -> torch.Tensor:
        model, _ = create_clip_model(self.model_name, self.pretrained, self.offline)
        templates: Sequence[Callable[[str], str]] = PROMPT_TEMPLATES[self.templates]
        prompts = [template(name) for name in names for template in templates]
        description = (
            f"encoding {len(names)} class names x {len(templates)} templates ({self.model_name})"
        )
        logger.info(description)
        tokenizer = open_clip.get_tokenizer(self.model_name)
        chunks = [
            model.encode_text(tokenizer(prompts[i : i + _PROMPTS_PER_BATCH]), normalize=True)
            for i in tqdm(
                range(0, len(prompts), _PROMPTS_PER_BATCH),
                desc=description,
                unit="batch",
                total=-(-len(prompts) // _PROMPTS_PER_BATCH),
            )
        ]
        per_prompt = torch.cat(chunks).view(len(names), len(templates), -1)
        return torch.nn.functional.normalize(per_prompt.mean(dim=1), dim=-1).float()
