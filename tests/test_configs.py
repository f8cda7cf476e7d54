"""Every shipped config loads (``_BASE_`` chains, keys exist) and the ablation switches differ as named."""
from __future__ import annotations

from pathlib import Path

import pytest
from detectron2.modeling import META_ARCH_REGISTRY


import zsseg_d2  # noqa: F401  (registers the meta-architectures)
from zsseg_d2.engine import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    cfg = load_config(str(path))
    assert cfg.MODEL.META_ARCHITECTURE in META_ARCH_REGISTRY  # CELSegmentor, SZNSegmentor, ...
    assert cfg.MODEL.DEVICE == "cpu"  # no GPU here: chosen automatically


def test_table6_rows_switch_one_thing_each():
    root = Path(__file__).resolve().parents[1] / "configs" / "coco_stuff" / "ablations"
    rows = [load_config(str(root / f"{name}.yaml")) for name in ("table6_ce", "table6_ce_kl", "table6_ce_kl_r", "table6_ce_kl_r_p")]
    switches = [(c.MODEL.CEL.LOSS.USE_KL, c.MODEL.CEL.LOSS.USE_RANK, c.MODEL.CLIP.PROMPT_TEMPLATES) for c in rows]
    assert switches == [(False, False, "single"), (True, False, "single"), (True, True, "single"), (True, True, "imagenet")]
