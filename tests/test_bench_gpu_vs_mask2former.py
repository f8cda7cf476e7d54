"""The side-by-side benchmark's summary: per figure the median over rounds of each code base and
project / reference; mixed precision against the same code base's fp32."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu_vs_mask2former.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_gpu_vs_mask2former", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sample(what, code, seconds, mib):
    return {"what": what, "code": code, "median_s": seconds, "peak_mib": mib}


def test_summary_medians_ratios_and_amp_speedups(bench):
    samples = [
        _sample("train:fp32", "reference", 0.30, 100.0),
        _sample("train:fp32", "project", 0.40, 90.0),
        _sample("train:fp32", "reference", 0.34, 110.0),
        _sample("train:fp32", "project", 0.20, 90.0),
        _sample("train:float16", "reference", 0.16, 80.0),
        _sample("train:float16", "project", 0.15, 60.0),
        _sample("inference", "reference", 0.04, 10.0),
    ]
    rows = {row["name"]: row for row in bench.summarise(samples)}
    fp32 = rows["train:fp32/median_s"]
    assert fp32["reference"] == pytest.approx(0.32) and fp32["project"] == pytest.approx(0.30)
    assert fp32["project_over_reference"] == pytest.approx(0.30 / 0.32)
    assert rows["train:fp32/peak_mib"]["project_over_reference"] == pytest.approx(90 / 105)
    assert rows["train:float16/median_s"]["project_over_reference"] == pytest.approx(0.15 / 0.16)
    assert "inference/median_s" not in rows  # the project's inference was not measured
    assert rows["project/train:float16_speedup_over_fp32"]["value"] == pytest.approx(0.30 / 0.15)
    assert rows["reference/train:float16_speedup_over_fp32"]["value"] == pytest.approx(0.32 / 0.16)
