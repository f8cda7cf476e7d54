"""The text side a checkpoint was trained with, saved in it and compared with the config on load.

A model's classifier scores classes against the vectors of its semantic source (eq. 2), so the
same weights read with other prompt templates, another CLIP or another class list give other,
silently wrong, results. Checkpoints therefore hold ``text_settings``: for each setting that
determines those vectors (``MODEL.SEMANTIC.SOURCE``; ``MODEL.CLIP.MODEL_NAME``, ``PRETRAINED`` and
``PROMPT_TEMPLATES``, or ``MODEL.SEMANTIC.FILES`` and ``NORMALIZE``) and for the training
vocabulary, the configured value and an identity (weights and embedding files by SHA-256).

A model gives its record through ``text_record()`` (the segmentor contract of
``zsseg_d2/modeling/segmentor.py``); a model without it has nothing to compare.
"""

from __future__ import annotations

import logging

from torch import nn

logger = logging.getLogger(__name__)

TextRecord = dict[str, dict[str, str]]
RECORD_KEY = "text_settings"
VOCABULARY = "training vocabulary"
ACCEPT_FLAG = "MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH"


def text_record(model: nn.Module) -> TextRecord:
    """The text-side settings of ``model`` ({} for a model without ``text_record``)."""
    record = getattr(model, "text_record", None)
    return dict(record()) if callable(record) else {}


def _fix(key: str, entry: dict[str, str] | None) -> str:
    if entry is None:
        return f"the checkpoint does not set {key}"
    if key == VOCABULARY:
        return "use the training data set (DATASETS.TRAIN) or MODEL.VOCABULARY.TRAIN of the checkpoint's run"
    return f"pass {key} {entry['value']}"


def mismatches(saved: TextRecord, expected: TextRecord) -> list:
    """One line per setting whose identity differs, with both values and the override that fixes it."""
    lines = []
    for key in [*saved, *(k for k in expected if k not in saved)]:
        old, new = saved.get(key), expected.get(key)
        if (old or {}).get("identity") != (new or {}).get("identity"):
            old_value = old["value"] if old else "(not set)"
            new_value = new["value"] if new else "(not set)"
            lines.append(
                f"{key}: checkpoint {old_value!r}, config {new_value!r} -> {_fix(key, old)}"
            )
    return lines


def check_text_record(
    checkpoint: dict, model: nn.Module, path: str, accept_mismatch: bool = False
) -> None:
    """Compare the record in ``checkpoint`` (loaded from ``path``) with ``model``'s settings.

    A mismatch raises ``ValueError`` naming both values and the override, unless
    ``accept_mismatch`` (then it is a warning). A checkpoint without a record (written before
    records existed) loads with a warning."""
    expected = text_record(model)
    if not expected:
        return
    saved = checkpoint.get(RECORD_KEY)
    if saved is None:
        logger.warning(
            f"checkpoint {path} has no record of the text settings it was trained with (an older "
            f"checkpoint): make sure MODEL.CLIP / MODEL.SEMANTIC and the training vocabulary are those of its run"
        )
        return
    lines = mismatches(saved, expected)
    if not lines:
        return
    message = (
        f"checkpoint {path} was trained with other text settings than this config:\n  "
        + "\n  ".join(lines)
        + f"\nThe scores would be silently wrong. Fix the config as shown, or pass {ACCEPT_FLAG} True to load it anyway"
    )
    if not accept_mismatch:
        raise ValueError(message)
    logger.warning(
        message.replace("The scores would be silently wrong", f"Accepted ({ACCEPT_FLAG})")
    )
