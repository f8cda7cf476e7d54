"""Steps of a multi-stage job (the demo, the CamVid benchmark) that are reused only while their
settings stay the same.

Each step owns one folder and records, after it succeeds, the settings it ran with in
``<folder>/stage_settings.json``. A later run reuses the step's product only when the recorded
settings equal the new ones; otherwise it says which settings changed, removes the folder and runs
the step again. A step's settings should include those of the steps it reads from, so a change
reruns everything downstream.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from .file_io import atomic_write

SETTINGS_FILE = "stage_settings.json"


def _as_json(settings: dict) -> dict:
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def changed_keys(old: dict, new: dict) -> list[str]:
    """Top-level keys whose values differ between two settings dicts (added or removed included)."""
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def run_stage(
    name: str, folder: Path, settings: dict, product: Path, action: Callable[[], None]
) -> bool:
    """Run ``action`` (which writes ``product`` inside ``folder``) unless a previous run with the
    same ``settings`` left ``product``; return True when it ran."""
    settings = _as_json(settings)
    record = folder / SETTINGS_FILE
    previous = json.loads(record.read_text()) if record.is_file() else None
    if previous == settings and product.exists():
        print(f"=== {name}: reusing {product} (made with the same settings)", flush=True)
        return False
    if folder.exists():
        if previous is None:
            reason = "no settings recorded (unfinished, or made by an older version)"
        elif previous != settings:
            reason = (
                f"settings changed since it was made: {', '.join(changed_keys(previous, settings))}"
            )
        else:
            reason = f"{product.name} is missing"
        print(f"=== {name}: {reason}; removing {folder} and running it again", flush=True)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    action()
    if not product.exists():
        raise RuntimeError(f"{name} finished without writing {product}")
    with atomic_write(record, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1, sort_keys=True)
    return True


def folder_size(folder: Path) -> int:
    """Bytes of all files under ``folder`` (0 if it does not exist)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
