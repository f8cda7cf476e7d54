"""SIGN's three steps (with ST and AST) through tools/train_net.py on the real CamVid images (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "sign" / "tiny"


def _losses(out: Path, key: str) -> list:
    return [
        json.loads(line)[key]
        for line in (out / "metrics.json").read_text().splitlines()
        if key in line
    ]


@pytest.mark.slow
def test_every_sign_step_runs_on_camvid(tmp_path, shared_data, run_tool):
    def _train(config: str, out: Path, *opts: str) -> str:
        return run_tool(
            "tools/train_net.py", "--config-file", TINY / config, "OUTPUT_DIR", out, *opts
        ).log

    steps = tmp_path / "train", tmp_path / "transfer"
    _train("camvid.yaml", steps[0], "SOLVER.MAX_ITER", "60", "DATASETS.TEST", "()")
    ce = _losses(steps[0], "loss_ce")
    assert ce[-1] < ce[0], ce  # the classifier learns the seen classes
    _train(
        "camvid_transfer.yaml",
        steps[1],
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
            "SOLVER.MAX_ITER",
            "5",
            "MODEL.WEIGHTS",
            str(steps[1] / "model_final.pth"),
        )
        assert _losses(tmp_path / mode, "loss_ce_pseudo")
        assert "mIoU(S) | mIoU(U) | hIoU" in log and "camvid_val" in log
