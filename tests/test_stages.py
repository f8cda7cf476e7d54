"""Stage bookkeeping of the demo and the CamVid benchmark: reuse only with unchanged settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zsseg_d2.utils.stages import SETTINGS_FILE, changed_keys, folder_size, run_stage


def _writer(folder: Path, calls: list, text: str = "weights"):
    def action() -> None:
        calls.append(text)
        (folder / "model.pth").write_text(text)

    return action


def test_stage_reused_with_same_settings_and_rerun_when_they_change(tmp_path: Path, capsys) -> None:
    folder, calls = tmp_path / "stage1", []
    product = folder / "model.pth"
    assert run_stage(
        "stage 1", folder, {"iters": 10, "lr": 0.1}, product, _writer(folder, calls, "a")
    )
    assert json.loads((folder / SETTINGS_FILE).read_text()) == {"iters": 10, "lr": 0.1}
    assert not run_stage(
        "stage 1", folder, {"lr": 0.1, "iters": 10}, product, _writer(folder, calls, "b")
    )
    assert calls == ["a"] and "reusing" in capsys.readouterr().out
    (folder / "stale.txt").write_text("from the old run")
    assert run_stage(
        "stage 1", folder, {"iters": 20, "lr": 0.1}, product, _writer(folder, calls, "c")
    )
    out = capsys.readouterr().out
    assert "settings changed since it was made: iters" in out and "running it again" in out
    assert (
        calls == ["a", "c"] and product.read_text() == "c" and not (folder / "stale.txt").exists()
    )


def test_stage_without_record_or_product_is_rerun(tmp_path: Path, capsys) -> None:
    folder, calls = tmp_path / "stage", []
    folder.mkdir()
    (folder / "model.pth").write_text("left by an interrupted run")
    assert run_stage("s", folder, {"a": 1}, folder / "model.pth", _writer(folder, calls))
    assert "no settings recorded" in capsys.readouterr().out and calls == ["weights"]
    (folder / "model.pth").unlink()
    assert run_stage("s", folder, {"a": 1}, folder / "model.pth", _writer(folder, calls))
    assert "model.pth is missing" in capsys.readouterr().out and len(calls) == 2


def test_stage_that_writes_nothing_fails_and_records_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    with pytest.raises(RuntimeError, match="finished without writing"):
        run_stage("s", folder, {"a": 1}, folder / "model.pth", lambda: None)
    assert not (folder / SETTINGS_FILE).exists()


def test_changed_keys_and_folder_size(tmp_path: Path) -> None:
    assert changed_keys({"a": 1, "b": [1, 2], "c": 0}, {"a": 1, "b": [1, 3], "d": 0}) == [
        "b",
        "c",
        "d",
    ]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_bytes(b"12345")
    (tmp_path / "g").write_bytes(b"123")
    assert folder_size(tmp_path) == 8 and folder_size(tmp_path / "missing") == 0
