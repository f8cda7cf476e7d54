"""Writing result files so that a reader never sees half of one.

Every file a run produces for later use (checkpoints, pseudo labels, cached text embeddings,
metrics) is written to a temporary file in the same folder, flushed to disk, then renamed over
the destination (``os.replace`` is atomic on POSIX and Windows). A run killed mid-write leaves
the previous version, or nothing, plus at most a hidden ``.NAME.tmp-PID`` file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Union

PathLike = Union[str, os.PathLike]


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    if not mode.startswith("w"):
        raise ValueError(
            f"atomic_write only writes whole files (mode 'w' or 'wb'), got mode {mode!r}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
