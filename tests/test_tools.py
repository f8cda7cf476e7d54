"""tools/train_net.py and tools/demo.py end to end with the tiny config on real images."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zsseg_d2.engine import load_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml"


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_checkpoint(tmp_path: Path, *opts: str) -> Path:
    from detectron2.modeling import build_model

    model = build_model(load_config(str(TINY), list(opts)))
    path = tmp_path / f"tiny{len(opts)}.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, path)
    return path


def test_demo_segments_real_images_and_reports_bad_inputs(tmp_path, shared_data, capsys):
    demo = _tool("demo")
    weights = _tiny_checkpoint(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    for source in sorted((shared_data / "voc2012_val_crops" / "images").iterdir())[:2]:
        (images / source.name).write_bytes(source.read_bytes())
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    common = ["--config-file", str(TINY), "--input", str(images), "--output", str(out)]
    status = demo.main([*common, "--vocab", "person, dog, sky", "MODEL.WEIGHTS", str(weights)])
    assert status == 1  # one bad image; the two others are done
    assert "broken.jpg" in capsys.readouterr().err
    labels = sorted(out.glob("*_label.png"))
    assert len(labels) == 2 and len(list(out.glob("*_overlay.png"))) == 2
    label = np.asarray(Image.open(labels[0]))
    assert label.max() < 3
    summary = json.loads(
        labels[0].with_name(labels[0].name.replace("_label.png", "_classes.json")).read_text()
    )
    assert summary["vocabulary"] == ["person", "dog", "sky"]
    assert sum(summary["fractions"].values()) == pytest.approx(1.0, abs=1e-4)

    assert demo.main([*common, "--vocab", "cat, cat", "MODEL.WEIGHTS", str(weights)]) == 2
    assert "duplicate class names ['cat']" in capsys.readouterr().err
    assert demo.main([*common, "--vocab", " , ", "MODEL.WEIGHTS", str(weights)]) == 2
    assert "empty vocabulary" in capsys.readouterr().err
    other = _tiny_checkpoint(tmp_path, "MODEL.TRANSFORMER_DECODER.NUM_QUERIES", "8")
    assert demo.main([*common, "--overwrite", "--vocab", "cat", "MODEL.WEIGHTS", str(other)]) == 2
    assert "does not fit this model's architecture" in capsys.readouterr().err


@pytest.mark.slow
def test_train_net_trains_tiny_camvid_then_evaluates(tmp_path, shared_data, run_tool):
    out = tmp_path / "run"
    run_tool("tools/train_net.py", "--config-file", TINY, "OUTPUT_DIR", out, "SOLVER.MAX_ITER", "120",
             "DATASETS.TEST", "()", "SOLVER.CHECKPOINT_PERIOD", "60")  # fmt: skip
    losses = [
        json.loads(line)["total_loss"]
        for line in (out / "metrics.json").read_text().splitlines()
        if "total_loss" in line
    ]
    assert len(losses) >= 5 and losses[-1] < 0.8 * losses[0], losses
    text = run_tool("tools/train_net.py", "--config-file", TINY, "--eval-only", "OUTPUT_DIR",
                    tmp_path / "eval", "MODEL.WEIGHTS", out / "model_final.pth").log  # fmt: skip
    assert "mIoU(S) | mIoU(U) | hIoU" in text and "camvid_val" in text
