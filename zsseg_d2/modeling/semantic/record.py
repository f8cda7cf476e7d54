"""The text record's entry for a vocabulary (checkpoints compare class lists by content)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

_SHOWN_NAMES = 8


def vocabulary_entry(names: Sequence[str]) -> dict[str, str]:
    """{"value": a readable summary, "identity": the SHA-256 of the ordered list}."""
    names = list(names)
    shown = ", ".join(names[:_SHOWN_NAMES]) + (", ..." if len(names) > _SHOWN_NAMES else "")
    identity = hashlib.sha256(json.dumps(names).encode()).hexdigest()
    return {"value": f"{len(names)} classes ({shown})", "identity": identity}
