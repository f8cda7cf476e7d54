"""The pass's files: append-only JSON Lines per shard, settings, and the atomically written final file.

Layout for ``--output out/pseudo.json``::

    out/pseudo.json                                final file (read by the mapper's "pseudo" mode)
    out/pseudo.summary.json                        quality report
    out/pseudo.work/settings.json                  what the records were computed with
    out/pseudo.work/shard-000-of-001.jsonl         one record per image, appended per batch
    out/pseudo.work/log-shard-000-of-001.txt       log

A record is one JSON object per line, keys sorted::

    {"file_name", "image_id", "status": "ok", "labels": [names], "scores": {name: float},
     "num_proposals": int, "gt_unseen": [names] or null}
    {"file_name", "image_id", "status": "skipped"}      no unlabeled pixels: cannot hold unseen classes
    {"file_name", "image_id", "status": "failed", "error": str}

A killed run leaves at most a partial last line, which the next run of that shard truncates away.
When an image has several records (a failed image retried), the last one counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ....data.image_labels import PSEUDO_LABEL_FORMAT
from ....utils.file_io import PathLike, atomic_write

STATUSES = ("ok", "skipped", "failed")


@dataclass(frozen=True)
class PassLayout:
    """Where the files of a pass writing ``output`` live."""

    output: Path

    @property
    def work_dir(self) -> Path:
        return self.output.parent / f"{self.output.stem}.work"

    @property
    def summary(self) -> Path:
        return self.output.parent / f"{self.output.stem}.summary.json"

    @property
    def settings(self) -> Path:
        return self.work_dir / "settings.json"

    def shard_file(self, shard_id: int, num_shards: int) -> Path:
        return self.work_dir / f"shard-{shard_id:03d}-of-{num_shards:03d}.jsonl"

    def log_file(self, shard_id: int, num_shards: int) -> Path:
        return self.work_dir / f"log-shard-{shard_id:03d}-of-{num_shards:03d}.txt"


def dumps(obj: object) -> str:
    """Deterministic compact JSON (sorted keys)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def write_json_atomic(path: PathLike, obj: object) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n")


class RecordFile:
    """One shard's JSON Lines: read (tolerating a partial last line), repair, append durably."""

    def __init__(self, path: PathLike):
        self.path = Path(path)

    def _complete_text(self) -> tuple[str, int]:
        """(text up to the last newline, its length in bytes); ("", 0) when the file is absent."""
        if not self.path.is_file():
            return "", 0
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        return data[:end].decode("utf-8"), end

    def read(self) -> dict[str, dict]:
        """The last record of each image id; a partial last line (a killed writer) is ignored."""
        text, _ = self._complete_text()
        records = {}
        for number, line in enumerate(text.splitlines(), start=1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{self.path}, line {number} is not a JSON record ({error}); the file was edited or "
                    f"damaged by something other than a killed run: delete it to recompute this shard"
                ) from error
            if (
                not isinstance(record, dict)
                or record.get("status") not in STATUSES
                or "image_id" not in record
            ):
                raise ValueError(
                    f"{self.path}, line {number} is not a pseudo-label record: {line[:200]!r}"
                )
            records[record["image_id"]] = record
        return records

    def repair(self) -> int:
        """Cut a partial last line left by a killed run; returns the bytes discarded."""
        if not self.path.is_file():
            return 0
        _, end = self._complete_text()
        size = self.path.stat().st_size
        if end < size:
            with open(self.path, "r+b") as f:
                f.truncate(end)
        return size - end

    def append(self, records: Sequence[dict]) -> None:
        """Append records and make them durable (flush + fsync) before returning."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(dumps(record) + "\n" for record in records))
            f.flush()
            os.fsync(f.fileno())


def check_settings(path: PathLike, settings: dict) -> None:
    """Write ``settings`` on first use; raise if the records there were made with other settings."""
    path = Path(path)
    if not path.is_file():
        write_json_atomic(path, settings)
        return
    stored = json.loads(path.read_text(encoding="utf-8"))
    changed = {
        key: (stored.get(key), settings.get(key))
        for key in sorted(set(stored) | set(settings))
        if stored.get(key) != settings.get(key)
    }
    if changed:
        details = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
        raise ValueError(
            f"the records in {path.parent} were computed with other settings ({details}); "
            f"use another --output, or delete {path.parent} to start over"
        )


def final_document(
    dataset: str, threshold: float, unseen_classes: Sequence[str], records: Iterable[dict]
) -> dict:
    """The final pseudo-label file: labels of every successfully processed image, by image id."""
    labels = {
        record["image_id"]: record["labels"] for record in records if record["status"] == "ok"
    }
    return {
        "format": PSEUDO_LABEL_FORMAT,
        "dataset": dataset,
        "threshold": threshold,
        "unseen_classes": list(unseen_classes),
        "labels": dict(sorted(labels.items())),
    }
