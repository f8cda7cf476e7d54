"""Behaviour kept through the framework move: every method's losses on a fixed batch and its
predictions with fixed weights equal the values recorded on the code before it (commit b5d6323,
``tests/method_reference.py`` there, the same fixture and seeding as here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from method_reference import REPO, evaluate_case, write_fixture_images

from zsseg_d2.data import InferenceImageMapper, build_dataset_mapper
from zsseg_d2.engine import Trainer, load_config

REFERENCE = np.load(REPO / "tests" / "data" / "method_reference.npz")
WEIGHTS = ["MODEL.WEIGHTS", "{dummy}"]
CASES = {
    "cel": ("cel/tiny/camvid_8-3.yaml", []),
    "cel_gt_rank": (
        "cel/tiny/camvid_8-3.yaml",
        ["INPUT.IMAGE_LABELS.UNSEEN_MODE", "gt", "MODEL.CEL.LOSS.RANK_SCALE", 100.0],
    ),
    "cel_ensemble": ("cel/tiny/camvid_8-3.yaml", ["MODEL.CLIP.ENSEMBLE", True]),
    "cel_learned_bg": (
        "cel/tiny/camvid_8-3.yaml",
        ["MODEL.CEL.BACKGROUND", "learned", "MODEL.CEL.LOSS.USE_KL", False],
    ),
    "szn_fcn_s": ("szn/tiny/camvid_fcn_s.yaml", []),
    "szn_step1": ("szn/tiny/camvid_step1.yaml", []),
    "szn_step2": ("szn/tiny/camvid_step2.yaml", WEIGHTS),
    "szn_fcn_je": ("szn/tiny/camvid_step1.yaml", ["MODEL.SZN.VARIANT", "fcn_je"]),
    "szn_ps": ("szn/tiny/camvid_step1.yaml", ["MODEL.SZN.VARIANT", "szn_ps", "DATASETS.TRAIN", ()]),
    "zs3net_segmentation": ("zs3net/tiny/camvid_1_segmentation.yaml", []),
    "zs3net_generator": ("zs3net/tiny/camvid_2_zs3net.yaml", WEIGHTS),
    "zs3net_recursive": ("zs3net/tiny/camvid_3_zs_mmd.yaml", WEIGHTS),
    "sign_train": ("sign/tiny/camvid.yaml", []),
    "sign_transfer": ("sign/tiny/camvid_transfer.yaml", WEIGHTS),
    "sign_ast": ("sign/tiny/camvid_ast.yaml", WEIGHTS),
    "sign_st": ("sign/tiny/camvid_st.yaml", WEIGHTS),
    "relation_net": ("relation_net/tiny/camvid.yaml", []),
    "relation_net_binary": ("relation_net/tiny/camvid_binary.yaml", []),
}


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    dummy = folder / "dummy.pth"
    torch.save({}, dummy)
    return write_fixture_images(folder / "images"), str(dummy)


def test_every_recorded_case_is_checked():
    assert {key.split("/")[0] for key in REFERENCE.files} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_losses_and_predictions_equal_the_recorded_ones(case, fixture, tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path))
    records, dummy = fixture
    config, opts = CASES[case]
    opts = [dummy if o == "{dummy}" else o for o in opts]
    cfg = load_config(str(REPO / "configs" / config), opts)
    figures = evaluate_case(
        cfg,
        Trainer.build_model,
        lambda c: build_dataset_mapper(c, True),
        InferenceImageMapper,
        records,
    )
    expected = {
        key.split("/", 1)[1]: REFERENCE[key]
        for key in REFERENCE.files
        if key.startswith(case + "/")
    }
    assert set(figures) == set(expected)
    for key, value in expected.items():
        if key.endswith("/label"):
            np.testing.assert_array_equal(figures[key], value, err_msg=f"{case} {key}")
        else:
            np.testing.assert_allclose(
                figures[key], value, rtol=1e-5, atol=1e-6, err_msg=f"{case} {key}"
            )
