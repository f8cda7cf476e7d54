"""The tiny Relation Network trains through tools/train_net.py on CamVid and evaluates in both label
spaces (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "relation_net" / "tiny" / "camvid.yaml"


@pytest.mark.slow
def test_relation_net_trains_on_camvid_and_evaluates_zlss_and_gzlss(
    tmp_path, shared_data, run_tool
):
    def _run(*args: str) -> str:
        return run_tool("tools/train_net.py", "--config-file", TINY, *args).log

    out = tmp_path / "train"
    _run("OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", "40", "DATASETS.TEST", "()")
    # A single loss is logged as total_loss, every 20 iterations.
    losses = [
        json.loads(line)["total_loss"]
        for line in (out / "metrics.json").read_text().splitlines()
        if "total_loss" in line
    ]
    assert len(losses) == 2
    assert losses[-1] < losses[0], losses
    weights = str(out / "model_final.pth")
    gzlss = _run("--eval-only", "OUTPUT_DIR", str(tmp_path / "gzlss"), "MODEL.WEIGHTS", weights)
    assert "mIoU(S) | mIoU(U) | hIoU" in gzlss
    _run(
        "--eval-only",
        "OUTPUT_DIR",
        str(tmp_path / "zlss"),
        "MODEL.WEIGHTS",
        weights,
        "TEST.LABEL_SPACE",
        "unseen",
    )
    zlss = json.loads(
        (tmp_path / "zlss" / "inference" / "camvid_val" / "gzs3_metrics.json").read_text()
    )
    assert "mIoU(U)" in zlss and "mIoU(S)" not in zlss
