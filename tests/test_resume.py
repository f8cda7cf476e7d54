"""Training killed with SIGKILL resumes with --resume from its last checkpoint's iteration; --eval-only
--resume evaluates that checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from zsseg_d2.engine import Trainer, load_config
from zsseg_d2.engine.checkpoint import Checkpointer, weights_to_evaluate

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"


def _opts(out: Path, max_iter: int) -> list:
    return [
        "OUTPUT_DIR",
        str(out),
        "SOLVER.MAX_ITER",
        str(max_iter),
        "SOLVER.CHECKPOINT_PERIOD",
        "3",
        "DATASETS.TEST",
        "()",
        "INPUT.CROP.SIZE",
        "(64, 64)",
        "INPUT.SIZE_DIVISIBILITY",
        "64",
    ]


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, shared_data, run_tool):
    env = {
        **os.environ,
        "ZSSEG_CACHE": str(tmp_path / "cache"),
        "ZSSEG_SHARED_DATA": str(shared_data),
    }
    out = tmp_path / "run"
    process = subprocess.Popen(  # killed mid-run: a background process, not run_tool
        [sys.executable, "tools/train_net.py", "--config-file", str(TINY), *_opts(out, 1000)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 400
    while (
        not (out / "last_checkpoint").is_file()
        and time.monotonic() < deadline
        and process.poll() is None
    ):
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (out / "last_checkpoint").is_file(), "no checkpoint was written before the kill"
    last = (out / "last_checkpoint").read_text().strip()
    checkpoint = torch.load(
        out / last, map_location="cpu", weights_only=True
    )  # tensors and plain data only
    done = checkpoint["iteration"]
    trainer_state = checkpoint["trainer"]  # Detectron2 keeps optimizer and scheduler state here
    assert trainer_state["optimizer"]["state"] and "LRScheduler" in trainer_state["hooks"]

    resumed = Trainer(load_config(str(TINY), _opts(out, 1000)))
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == done + 1
    saved_optimizer, optimizer = trainer_state["optimizer"], resumed.optimizer.state_dict()
    assert saved_optimizer["state"].keys() == optimizer["state"].keys()
    for index, state in saved_optimizer["state"].items():
        assert state["step"] == optimizer["state"][index]["step"]
        assert torch.equal(state["exp_avg_sq"], optimizer["state"][index]["exp_avg_sq"])
    assert resumed.scheduler.state_dict() == trainer_state["hooks"]["LRScheduler"]
    assert resumed.scheduler.last_epoch == done + 1

    text = run_tool(
        "tools/train_net.py", "--config-file", TINY, "--resume", *_opts(out, done + 3)
    ).log
    assert f"Starting training from iteration {done + 1}" in text
    assert "Loading trainer from" in text
    final = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)
    assert final["iteration"] == done + 2


def test_eval_only_weights_are_the_last_checkpoint_with_resume(tmp_path):
    cfg = load_config(str(TINY), ["OUTPUT_DIR", str(tmp_path), "MODEL.WEIGHTS", "given.pth"])
    assert weights_to_evaluate(cfg, resume=True) == "given.pth"  # nothing in OUTPUT_DIR yet
    Checkpointer(torch.nn.Linear(1, 1), save_dir=str(tmp_path)).save("model_0000004")
    assert weights_to_evaluate(cfg, resume=True) == str(tmp_path / "model_0000004.pth")
    assert weights_to_evaluate(cfg, resume=False) == "given.pth"
