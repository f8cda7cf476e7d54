"""Two CPU processes (gloo): training runs with DDP, a step's gradients equal one process's on the
whole batch, a diverging run stops in every process, and evaluation equals one process's exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _train_net(env: dict, processes: int, out: Path, *opts: str) -> None:
    command = [
        sys.executable,
        "tools/train_net.py",
        "--num-gpus",
        str(processes),
        "--config-file",
        str(TINY),
        *opts,
        "MODEL.DEVICE",
        "cpu",
        "OUTPUT_DIR",
        str(out),
        *SMALL,
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_two_cpu_processes_train_and_evaluate_like_one(tmp_path, shared_data):
    env = {
        **os.environ,
        "ZSSEG_CACHE": str(tmp_path / "cache"),
        "ZSSEG_SHARED_DATA": str(shared_data),
    }
    train = tmp_path / "train"
    _train_net(env, 2, train, "SOLVER.MAX_ITER", "3", "DATASETS.TEST", "()")
    assert (train / "model_final.pth").is_file() and (train / "log.txt.rank1").is_file()
    metrics = {}
    for processes in (1, 2):
        out = tmp_path / f"eval{processes}"
        _train_net(
            env,
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
    tmp_path, shared_data
):
    """DDP averages gradients; the loss divides by counts averaged over processes (masks, matched
    and unmatched queries, labelled images), so splitting a batch must not change the step."""
    env = {
        **os.environ,
        "ZSSEG_CACHE": str(tmp_path / "cache"),
        "ZSSEG_SHARED_DATA": str(shared_data),
    }
    results = {}
    for processes in (1, 2):
        out = tmp_path / f"grads{processes}.pt"
        command = [sys.executable, "tests/ddp_gradients.py", str(processes), str(out)]
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        results[processes] = torch.load(out, weights_only=True)
    assert results[1]["masks"] == [7, 6]  # unequal: per-process means would give other gradients
    whole, split = results[1]["grads"], results[2]["grads"]
    assert set(whole) == set(split)
    assert sum(grad.abs().max().item() > 0 for grad in whole.values()) > 100
    for name, grad in whole.items():
        assert (split[name] - grad).abs().max().item() <= 1e-4 * grad.abs().max().item(), name


@pytest.mark.slow
def test_two_processes_stop_together_when_training_diverges(tmp_path, shared_data):
    env = {
        **os.environ,
        "ZSSEG_CACHE": str(tmp_path / "cache"),
        "ZSSEG_SHARED_DATA": str(shared_data),
    }
    out = tmp_path / "diverged"
    command = [sys.executable, "tools/train_net.py", "--num-gpus", "2", "--config-file", str(TINY), "MODEL.DEVICE",
               "cpu", "OUTPUT_DIR", str(out), *SMALL, "SOLVER.MAX_ITER", "20", "SOLVER.BASE_LR", "1e30",
               "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.count("training stopped at iteration 1: the loss is not finite") >= 1
    assert "SOLVER.BASE_LR" in result.stderr
    assert sorted(p.name for p in out.glob("*.pth")) == [
        "model_0000000.pth"
    ]  # nothing after the divergence
