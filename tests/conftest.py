"""Shared test fixtures: the real data in ../shared/data, a deterministic torch setup, and the
harness that runs the project's tools in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ZSSEG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets of ../shared/data; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set ZSSEG_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def run_tool(tmp_path) -> Callable[..., subprocess.CompletedProcess]:
    """``run_tool(script, *args, env=None, check=True, timeout=900)`` runs ``python script args``
    from the repository root with a text-embedding cache (``ZSSEG_CACHE``: this test's own unless
    set) and the real data folder (``ZSSEG_SHARED_DATA``) and the repository first on ``PYTHONPATH``, plus
    ``env``. Returns the ``CompletedProcess`` (text); with ``check`` a non-zero exit fails the
    test with the end of both streams. ``result.log`` is stdout and stderr together."""

    def run(
        script: str, *args: object, env: dict | None = None, check: bool = True, timeout: int = 900
    ) -> subprocess.CompletedProcess:
        full_env = {
            **os.environ,
            "ZSSEG_CACHE": os.environ.get("ZSSEG_CACHE", str(tmp_path / "tool_cache")),
            "ZSSEG_SHARED_DATA": os.environ.get("ZSSEG_SHARED_DATA", str(SHARED_DATA)),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        command = [sys.executable, script, *map(str, args)]
        result = subprocess.run(
            command, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout
        )
        result.log = result.stdout + result.stderr
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(command[1:])} exited {result.returncode}\n--- stdout\n{result.stdout[-3000:]}"
                f"\n--- stderr\n{result.stderr[-6000:]}"
            )
        return result

    return run
