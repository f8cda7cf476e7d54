"""SIGN's three steps (with ST and AST) through tools/train_net.py on the real CamVid images (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "sign" / "tiny"


def _train(config: str, out: Path, env: dict, *opts: str) -> str:
    command = [
        sys.executable,
        "tools/train_net.py",
        "--config-file",
        str(TINY / config),
        "OUTPUT_DIR",
        str(out),
        *opts,
    ]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout + run.stderr


def _losses(out: Path, key: str) -> list:
    return [
        json.loads(line)[key]
        for line in (out / "metrics.json").read_text().splitlines()
        if key in line
    ]


@pytest.mark.slow
def test_every_sign_step_runs_on_camvid(tmp_path, shared_data):
    env = {
        **os.environ,
        "ZSSEG_CACHE": str(tmp_path / "cache"),
        "ZSSEG_SHARED_DATA": str(shared_data),
    }
    steps = tmp_path / "train", tmp_path / "transfer"
    _train("camvid.yaml", steps[0], env, "SOLVER.MAX_ITER", "60", "DATASETS.TEST", "()")
    ce = _losses(steps[0], "loss_ce")
    assert ce[-1] < ce[0], ce  # the classifier learns the seen classes
    _train(
        "camvid_transfer.yaml",
        steps[1],
        env,
        "SOLVER.MAX_ITER",
        "20",
        "DATASETS.TEST",
        "()",
        "MODEL.WEIGHTS",
        str(steps[0] / "model_final.pth"),
    )
    assert _losses(steps[1], "loss_ce_synthetic")
    for mode in ("st", "ast"):
        log = _train(
            f"camvid_{mode}.yaml",
            tmp_path / mode,
            env,
            "SOLVER.MAX_ITER",
            "5",
            "MODEL.WEIGHTS",
            str(steps[1] / "model_final.pth"),
        )
        assert _losses(tmp_path / mode, "loss_ce_pseudo")
        assert "mIoU(S) | mIoU(U) | hIoU" in log and "camvid_val" in log
