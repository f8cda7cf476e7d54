"""Two CPU processes (gloo): training runs with DDP, a step's gradients equal one process's on the
whole batch, a diverging run stops in every process, and evaluation equals one process's exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"
SMALL = [
    "INPUT.CROP.SIZE",
    "(64, 64)",
    "INPUT.SIZE_DIVISIBILITY",
    "64",
    "INPUT.MIN_SIZE_TEST",
    "96",
]


def _train_net(run_tool, processes: int, out: Path, *opts: str, check: bool = True):
    return run_tool(
        "tools/train_net.py", "--num-gpus", processes, "--config-file", TINY, *opts,
        "MODEL.DEVICE", "cpu", "OUTPUT_DIR", out, *SMALL, check=check,
    )  # fmt: skip


@pytest.mark.slow
def test_two_cpu_processes_train_and_evaluate_like_one(tmp_path, shared_data, run_tool):
    train = tmp_path / "train"
    _train_net(run_tool, 2, train, "SOLVER.MAX_ITER", "3", "DATASETS.TEST", "()")
    assert (train / "model_final.pth").is_file() and (train / "log.txt.rank1").is_file()
    metrics = {}
    for processes in (1, 2):
        out = tmp_path / f"eval{processes}"
        _train_net(
            run_tool,
            processes,
            out,
            "--eval-only",
            "MODEL.WEIGHTS",
            str(train / "model_final.pth"),
            "DATASETS.TEST",
            "('voc2012_crops_val',)",
        )
        metrics[processes] = json.loads(
            (out / "inference" / "voc2012_crops_val" / "gzs3_metrics.json").read_text()
        )
    assert metrics[1] == metrics[2]


@pytest.mark.slow
def test_two_processes_with_one_image_each_get_the_gradients_of_the_whole_batch(
    tmp_path, shared_data, run_tool
):
    """DDP averages gradients; the loss divides by counts averaged over processes (masks, matched
    and unmatched queries, labelled images), so splitting a batch must not change the step."""
    results = {}
    for processes in (1, 2):
        out = tmp_path / f"grads{processes}.pt"
        run_tool("tests/ddp_gradients.py", processes, out)
        results[processes] = torch.load(out, weights_only=True)
    assert results[1]["masks"] == [7, 6]  # unequal: per-process means would give other gradients
    whole, split = results[1]["grads"], results[2]["grads"]
    assert set(whole) == set(split)
    assert sum(grad.abs().max().item() > 0 for grad in whole.values()) > 100
    for name, grad in whole.items():
        assert (split[name] - grad).abs().max().item() <= 1e-4 * grad.abs().max().item(), name


@pytest.mark.slow
def test_two_processes_stop_together_when_training_diverges(tmp_path, shared_data, run_tool):
    out = tmp_path / "diverged"
    result = _train_net(
        run_tool, 2, out, "SOLVER.MAX_ITER", "20", "SOLVER.BASE_LR", "1e30",
        "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()", check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.count("training stopped at iteration 1: the loss is not finite") >= 1
    assert "SOLVER.BASE_LR" in result.stderr
    assert sorted(p.name for p in out.glob("*.pth")) == [
        "model_0000000.pth"
    ]  # nothing after the divergence
