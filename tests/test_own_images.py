"""Your own images: 16-bit files scaled (never clipped), demo outputs kept apart, clear errors for
empty inputs, non-UTF-8 vocabularies and missing _BASE_ files, Unicode class names in overlays."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from detectron2.modeling import build_model
from PIL import Image

from zsseg_d2.data.sem_seg_io import read_image
from zsseg_d2.engine import load_config
from zsseg_d2.engine.checkpoint import Checkpointer
from zsseg_d2.utils.visualization import (
    DEFAULT_FONT,
    class_colors,
    font_for,
    legend_image,
    overlay_with_legend,
)

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "cel" / "tiny" / "camvid_8-3.yaml")


@pytest.fixture(autouse=True)
def _text_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))


def _demo():
    spec = importlib.util.spec_from_file_location("demo", REPO / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896], [65535, 1000, 60000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode == "I;16"
    image = read_image(tmp_path / "gray16.png", "RGB")
    expected = np.round(values / 257).astype(np.uint8)  # 255 / 65535 = 1 / 257
    assert image.dtype == np.uint8 and np.array_equal(image[..., 0], expected)
    assert np.array_equal(image[..., 1], expected) and np.array_equal(image[..., 2], expected)


def test_32_bit_images_out_of_8_bit_range_are_rejected_naming_the_file(tmp_path):
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32)).save(tmp_path / "deep.tif")
    with pytest.raises(ValueError, match=r"deep.tif has mode I with values 0..70000"):
        read_image(tmp_path / "deep.tif", "RGB")
    Image.fromarray(np.array([[0, 200]], dtype=np.int32)).save(tmp_path / "small.tif")
    assert read_image(tmp_path / "small.tif", "RGB")[0, :, 0].tolist() == [0, 200]


def test_demo_keeps_inputs_with_the_same_stem_apart(tmp_path, shared_data):
    model = build_model(load_config(TINY))
    Checkpointer(model, save_dir=str(tmp_path)).save("model_final")
    source = sorted((shared_data / "voc2012_val_crops" / "images").iterdir())[:2]
    for folder, image in zip(("a", "b"), source):
        (tmp_path / "in" / folder).mkdir(parents=True)
        (tmp_path / "in" / folder / "x.png").write_bytes(image.read_bytes())
    out = tmp_path / "out"
    demo = _demo()
    status = demo.main(
        [
            "--config-file",
            TINY,
            "--input",
            str(tmp_path / "in" / "a"),
            str(tmp_path / "in" / "b"),
            "--vocab",
            "person, sky",
            "--output",
            str(out),
            "MODEL.WEIGHTS",
            str(tmp_path / "model_final.pth"),
        ]
    )
    assert status == 0
    images = [json.loads((out / f / "x_classes.json").read_text())["image"] for f in ("a", "b")]
    assert images == [str(tmp_path / "in" / "a" / "x.png"), str(tmp_path / "in" / "b" / "x.png")]


def test_demo_input_errors_name_the_problem(tmp_path, capsys):
    demo = _demo()
    (tmp_path / "empty").mkdir()
    common = ["--config-file", TINY, "--output", str(tmp_path / "out"), "--vocab", "cat"]
    assert demo.main([*common, "--input", str(tmp_path / "empty")]) == 2
    assert f"--input folder {tmp_path / 'empty'} holds no images" in capsys.readouterr().err
    assert demo.main([*common, "--input", str(tmp_path / "nothing*.jpg")]) == 2
    assert "matches no file" in capsys.readouterr().err
    clash = tmp_path / "clash"
    clash.mkdir()
    for suffix in (".jpg", ".png"):
        Image.new("RGB", (8, 8)).save(clash / f"x{suffix}")
    assert demo.main([*common, "--input", str(clash)]) == 2
    assert "would both write x_*" in capsys.readouterr().err
    vocab = tmp_path / "vocab.txt"
    vocab.write_bytes("caf\xe9\n".encode("latin-1"))
    assert (
        demo.main(
            [
                "--config-file",
                TINY,
                "--output",
                str(tmp_path / "o"),
                "--input",
                str(clash / "x.jpg"),
                "--vocab-file",
                str(vocab),
            ]
        )
        == 2
    )
    assert f"--vocab-file {vocab} is not UTF-8 text" in capsys.readouterr().err


def test_missing_base_config_names_the_referring_file(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text('_BASE_: "missing/Base.yaml"\n')
    with pytest.raises(
        FileNotFoundError,
        match=rf"config file {child} .*names _BASE_ '{tmp_path}/missing/Base.yaml'",
    ):
        load_config(str(child))


@pytest.mark.parametrize("name", ["café", "дерево", "δέντρο"])
def test_overlay_legend_draws_unicode_class_names(name):
    assert font_for(name) == str(DEFAULT_FONT)  # DejaVu Sans covers these scripts
    drawn = legend_image({name: 1.0}, [name], 200)
    for placeholder in ("?" * len(name), "?" * len(name.encode())):
        assert not np.array_equal(drawn, legend_image({placeholder: 1.0}, [placeholder], 200))
    assert (drawn < 128).any()  # text was drawn


def test_name_no_font_covers_is_drawn_with_a_warning(caplog, monkeypatch):
    monkeypatch.setattr(
        "zsseg_d2.utils.visualization._candidate_fonts", lambda: [str(DEFAULT_FONT)]
    )
    font_for.cache_clear()
    with caplog.at_level(logging.WARNING):
        path = font_for("東京タワー")
    font_for.cache_clear()
    assert path == str(DEFAULT_FONT) and "東京タワー" in caplog.text and "ZSSEG_FONT" in caplog.text


def test_overlay_blends_class_colours_and_keeps_the_image_size():
    image = np.full((6, 8, 3), 100, dtype=np.uint8)
    label = np.zeros((6, 8), dtype=np.int64)
    label[:, 4:] = 1
    overlay = overlay_with_legend(image, label, ["sky", "road"])
    assert overlay.shape[1] == 8 and overlay.shape[0] > 6
    inside = overlay[0, 0].astype(float)  # a pixel away from the border between the classes
    expected = 0.45 * 100 + 0.55 * np.asarray(class_colors(2)[0], dtype=float)
    np.testing.assert_allclose(inside, expected, atol=1)
