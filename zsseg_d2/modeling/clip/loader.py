"""Building open_clip models from a model name and a pretrained tag, a local file, or nothing.

``MODEL.CLIP.PRETRAINED`` may be an open_clip tag (``openai``; downloaded once into the hub cache),
a local checkpoint file, or ``""`` for random weights. When the hub cannot be reached (probed in
seconds), a tag is looked up in the local hub cache only, so a machine without network fails at
once with what to pass instead of retrying the download. Random weights are drawn from a fixed seed so
that every stage of a run (training, pseudo labels, evaluation) sees the same "CLIP"; they are for
tests and the offline demo only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import open_clip
import torch
from torch import nn

logger = logging.getLogger(__name__)

_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
open_clip.add_model_config(_CONFIG_DIR)  # registers "ZSSeg-Tiny" (tests, demo)

RANDOM_WEIGHTS_SEED = 0
HUB_PROBE_TIMEOUT_S = 3.0


class CLIPWeightsError(RuntimeError):
    """CLIP weights cannot be found or loaded; the message says what to pass instead."""


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Make huggingface_hub fail at once instead of trying the network, when ``offline``."""
    if not offline:
        yield
        return
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub answers an HTTPS request within ``timeout`` seconds (any HTTP
    status counts; no answer, a DNS, TLS or connection error does not)."""
    from huggingface_hub import constants

    try:
        urllib.request.urlopen(
            urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=timeout
        ).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (computed once per path, size and modification time)."""
    stat = os.stat(path)
    return _file_sha256(os.path.abspath(path), stat.st_size, stat.st_mtime_ns)


def weights_digest(pretrained: str) -> str:
    """What the weights ``pretrained`` names are, independent of where a file lies: the file's
    SHA-256, the tag, or the random seed (recorded in checkpoints)."""
    if os.path.isfile(pretrained):
        return f"sha256:{file_sha256(pretrained)}"
    return weights_identity(pretrained)


def weights_identity(pretrained: str) -> str:
    """A string that changes whenever the weights ``pretrained`` names change (for caches)."""
    if not pretrained:
        return f"random-seed{RANDOM_WEIGHTS_SEED}"
    if os.path.isfile(pretrained):
        stat = os.stat(pretrained)
        return f"file:{os.path.abspath(pretrained)}:{stat.st_size}:{int(stat.st_mtime)}"
    return f"tag:{pretrained}"


def check_model_name(model_name: str) -> None:
    """Raise :class:`CLIPWeightsError` naming the setting when open_clip does not know ``model_name``."""
    if model_name not in open_clip.list_models():
        raise CLIPWeightsError(
            f"unknown open_clip model name {model_name!r} (MODEL.CLIP.MODEL_NAME); "
            f"choose one of open_clip.list_models(), e.g. 'ViT-B-16', or 'ZSSeg-Tiny' for tests"
        )


def create_clip_model(
    model_name: str, pretrained: str, offline: bool = False, device: str = "cpu"
) -> tuple[nn.Module, dict]:
    """Return ``(model, preprocess_cfg)`` in eval mode, frozen.

    ``preprocess_cfg`` has open_clip's ``size``, ``mean`` and ``std`` of the image encoder.
    Raises :class:`CLIPWeightsError` with the settings to change when the model or its weights
    cannot be had (unknown name, unknown tag, missing file, no network).
    """
    check_model_name(model_name)
    if pretrained and not os.path.isfile(pretrained):
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in tags:
            raise CLIPWeightsError(
                f"MODEL.CLIP.PRETRAINED {pretrained!r} is neither a file nor a pretrained tag of "
                f"{model_name} (tags: {tags}); pass a local checkpoint file or one of the tags"
            )
    if pretrained and not os.path.isfile(pretrained) and not offline and not hub_reachable():
        logger.warning(
            f"the Hugging Face hub is unreachable: loading CLIP {model_name} {pretrained!r} from the local "
            f"hub cache only (as with MODEL.CLIP.OFFLINE True)"
        )
        offline = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        try:
            with _hub_offline(offline):
                model = open_clip.create_model(
                    model_name, pretrained=pretrained or None, device=device
                )
        except RuntimeError as error:
            raise CLIPWeightsError(
                f"could not load CLIP weights {pretrained!r} for {model_name}: {error}. Without "
                f"network access, set MODEL.CLIP.PRETRAINED to a local open_clip checkpoint file "
                f"(e.g. the open_clip_pytorch_model.bin of {model_name}), or fill the hub cache on "
                f"a connected machine first"
            ) from error
    model.eval().requires_grad_(False)
    visual = model.visual
    preprocess = {
        "size": visual.image_size
        if isinstance(visual.image_size, tuple)
        else (visual.image_size,) * 2,
        "mean": tuple(getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN),
        "std": tuple(getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD),
    }
    logger.info(f"Loaded open_clip {model_name} ({weights_identity(pretrained)})")
    return model, preprocess
