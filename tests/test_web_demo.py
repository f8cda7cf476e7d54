"""The web demo: the request logic (vocabulary, uploads, the checkpoint's config and text
settings, the legend) and the page itself, driven in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from detectron2.modeling import build_model
from helpers import split_of
from PIL import Image

from zsseg_d2.data.synthetic import CLASS_NAMES, UNSEEN_CLASSES
from zsseg_d2.engine import load_config
from zsseg_d2.engine.checkpoint import Checkpointer
from zsseg_d2.modeling.clip.loader import create_clip_model
from zsseg_d2.web import session
from zsseg_d2.web.render import legend_html
from zsseg_d2.web.session import Segmenter, UserError, checkpoint_config

REPO = Path(__file__).resolve().parents[1]
BASE_TINY = str(REPO / "configs" / "cel" / "tiny" / "Base-Tiny.yaml")
SCENES = ["DATASETS.TRAIN", "('zsseg_shapes_train',)", "DATASETS.TEST", "()"]
VOCABULARY = ["sky", "grass", "water", "car"]  # water and car: unseen in the scenes' split


@pytest.fixture(autouse=True)
def _text_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(tmp_path / "cache"))


def save_run(folder: Path, opts: list, config_yaml: bool = True) -> Path:
    """A tiny CEL checkpoint saved as training saves one (text record included) and, like
    train_net.py, its config.yaml beside it; weights untrained."""
    cfg = load_config(BASE_TINY, [*SCENES, *opts])
    Checkpointer(build_model(cfg), save_dir=str(folder)).save("model_final")
    if config_yaml:
        (folder / "config.yaml").write_text(cfg.dump())
    return folder / "model_final.pth"


def small_clip(path: Path, seed: int) -> Path:
    """A ZSSeg-Tiny weights file as tools/train_clip.py writes one (a state dict)."""
    model, _ = create_clip_model("ZSSeg-Tiny", "")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(
                torch.randn(parameter.shape, generator=torch.Generator().manual_seed(seed))
            )
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """Like `make demo`'s stage3/: a checkpoint trained with a small-CLIP file, config.yaml beside."""
    root = tmp_path_factory.mktemp("web_run")
    clip = small_clip(root / "clip.pt", seed=1)
    (root / "run").mkdir()
    return save_run(root / "run", ["MODEL.CLIP.PRETRAINED", str(clip)])


def scene(path: Path, size=(96, 80)) -> Path:
    """An RGB picture: sky over grass."""
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    rgb[: size[1] // 2] = (120, 170, 240)
    rgb[size[1] // 2 :] = (60, 150, 50)
    Image.fromarray(rgb).save(path)
    return path


# ---- requests ------------------------------------------------------------------------------


def test_vocabulary_is_split_at_commas_and_lines():
    text = "sky, grass\nred ball,\n\n  café \n"
    assert session.parse_vocabulary(text) == ["sky", "grass", "red ball", "café"]
    for empty in ("", " , \n ,"):
        with pytest.raises(UserError, match="the vocabulary is empty"):
            session.parse_vocabulary(empty)
    with pytest.raises(UserError, match=r"duplicate class names \['cat'\]"):
        session.parse_vocabulary("cat, dog\ncat")


def test_config_overrides_are_key_value_pairs():
    assert session.parse_overrides('MODEL.CLIP.PRETRAINED "/my clips/b.pt"') == [
        "MODEL.CLIP.PRETRAINED",
        "/my clips/b.pt",
    ]
    with pytest.raises(UserError, match="'MODEL.CLIP.ENSEMBLE' has no value"):
        session.parse_overrides("INPUT.MIN_SIZE_TEST 256 MODEL.CLIP.ENSEMBLE")


def test_uploads_that_are_no_image_or_too_large_are_refused_before_decoding(tmp_path, monkeypatch):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(UserError, match="notes.png is not an image this demo can read"):
        session.read_upload(str(text), max_pixels=10**6)
    with pytest.raises(UserError, match="no image: upload one"):
        session.read_upload(None, max_pixels=10**6)
    big = scene(tmp_path / "big.png", size=(300, 200))

    def no_decoding(*args):
        raise AssertionError("the image was decoded before its size was checked")

    monkeypatch.setattr(session, "read_image", no_decoding)
    with pytest.raises(
        UserError, match=r"big.png is 300 x 200 = 0.06 megapixels, more than the 0.05"
    ):
        session.read_upload(str(big), max_pixels=50_000)


def test_checkpoint_text_settings_come_from_its_record(tmp_path):
    """Without a config.yaml beside it, the checkpoint's config is --config-file with the text
    settings of its record (here its CLIP file); other CLIP weights typed in the page are refused,
    both named."""
    clip = small_clip(tmp_path / "clip.pt", seed=1)
    checkpoint = save_run(tmp_path, ["MODEL.CLIP.PRETRAINED", str(clip)], config_yaml=False)
    cfg = checkpoint_config(checkpoint, BASE_TINY, SCENES)
    assert cfg.MODEL.CLIP.PRETRAINED == str(clip)  # Base-Tiny has "" (random weights)
    assert cfg.MODEL.WEIGHTS == str(checkpoint)
    with pytest.raises(UserError, match="no config for checkpoint"):
        checkpoint_config(checkpoint, None, [])

    segmenter = Segmenter(BASE_TINY, SCENES, output_dir=tmp_path / "out")
    picture = str(scene(tmp_path / "p.png"))
    assert segmenter.segment(picture, "sky, grass", str(checkpoint)).legend
    other_clip = small_clip(tmp_path / "other_clip.pt", seed=2)
    with pytest.raises(
        UserError, match=r"MODEL.CLIP.PRETRAINED: checkpoint .*/clip.pt', config .*/other_clip.pt'"
    ):
        segmenter.segment(
            picture, "sky", str(checkpoint), overrides=f"MODEL.CLIP.PRETRAINED {other_clip}"
        )
    with pytest.raises(UserError, match=f"checkpoint {tmp_path}/missing.pth not found"):
        segmenter.segment(picture, "sky", str(tmp_path / "missing.pth"))


def test_segmentation_legend_and_label_map(demo_run, tmp_path):
    segmenter = Segmenter(output_dir=tmp_path)
    picture = scene(tmp_path / "p.png")
    result = segmenter.segment(str(picture), ", ".join(VOCABULARY), str(demo_run))
    label = np.asarray(Image.open(result.label_png))
    assert label.shape == (80, 96) and label.max() < len(VOCABULARY)
    counts = np.bincount(label.ravel(), minlength=len(VOCABULARY))
    rows = {row.name: row for row in result.legend}
    assert sorted(rows) == sorted(VOCABULARY)  # every typed class, present or not
    for class_id, name in enumerate(VOCABULARY):
        assert rows[name].class_id == class_id
        assert rows[name].share == pytest.approx(counts[class_id] / label.size, abs=1e-6)
        assert rows[name].unseen == (name in ("water", "car"))
    shares = [row.share for row in result.legend]
    assert shares == sorted(shares, reverse=True)
    assert result.overlay.shape[1] == 96 and result.overlay.shape[0] > 80  # legend below


class FixedPredictor:
    """Stands in for the model: sky above, water bottom left, car bottom right."""

    def __init__(self):
        self.model = SimpleNamespace(split=split_of(CLASS_NAMES, UNSEEN_CLASSES))

    def __call__(self, rgb):
        label = np.zeros(rgb.shape[:2], np.int64)
        label[40:, :48], label[40:, 48:] = 2, 3
        return label


def test_unseen_only_leaves_seen_classes_unpainted(tmp_path, monkeypatch):
    monkeypatch.setattr(Segmenter, "predictor", lambda self, *args: FixedPredictor())
    segmenter = Segmenter(output_dir=tmp_path)
    picture = scene(tmp_path / "p.png")
    rgb = np.asarray(Image.open(picture).convert("RGB"))
    vocabulary = ", ".join(VOCABULARY)
    result = segmenter.segment(str(picture), vocabulary, "model.pth", unseen_only=True)
    assert [(row.name, row.share, row.unseen) for row in result.legend] == [
        ("water", 0.25, True),
        ("car", 0.25, True),
    ]
    overlay = result.overlay[:80]
    assert np.array_equal(overlay[:39], rgb[:39])  # sky, seen: as it was (row 39 is a border)
    assert (np.abs(overlay[41:].astype(int) - rgb[41:]).sum(-1) > 30).all()  # painted
    everything = segmenter.segment(str(picture), vocabulary, "model.pth")
    assert [row.name for row in everything.legend] == ["sky", "water", "car", "grass"]
    assert (np.abs(everything.overlay[:39].astype(int) - rgb[:39]).sum(-1) > 30).all()
    with pytest.raises(UserError, match="no class of the vocabulary is unseen"):
        segmenter.segment(str(picture), "sky, grass", "model.pth", unseen_only=True)


def test_predictors_are_reused_per_checkpoint_and_settings(demo_run, tmp_path, monkeypatch):
    built = []
    real = session.VocabularyPredictor

    def counting(cfg, vocabulary):
        built.append(cfg.MODEL.CLIP.ENSEMBLE)
        return real(cfg, vocabulary)

    monkeypatch.setattr(session, "VocabularyPredictor", counting)
    segmenter = Segmenter(output_dir=tmp_path)
    first = segmenter.predictor(str(demo_run), ["sky"])
    assert segmenter.predictor(str(demo_run), ["car", "sky"]) is first
    assert first.vocabulary == ["car", "sky"]
    with_ensemble = segmenter.predictor(str(demo_run), ["sky"], ensemble=True)
    assert with_ensemble is not first and with_ensemble.model.clip_ensemble is not None
    assert built == [False, True]


def test_legend_html_escapes_class_names():
    rows = [session.LegendRow(0, "<b>ball</b>", (255, 0, 16), 0.25, True)]
    page = legend_html(rows)
    assert "<b>ball" not in page and "&lt;b&gt;ball&lt;/b&gt; <em>(unseen)</em>" in page
    assert 'data-class="&lt;b&gt;ball&lt;/b&gt;"' in page and "#ff0010" in page and "25.0%" in page


# ---- the page in a real browser ------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


class WebDemo:
    """tools/web_demo.py in a subprocess on a free loopback port; stopped by ``stop``."""

    def __init__(self, args: list, env: dict):
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "tools/web_demo.py", "--port", "0", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)
            if "web demo running at" in line:
                self.url = line.split(" at ")[1].split()[0]
                self.startup_s = time.monotonic() - self.started
                self.ready.set()

    def wait(self, timeout: float) -> str:
        if not self.ready.wait(timeout):
            pytest.fail(
                f"the web demo did not start in {timeout} s:\n{''.join(self.lines)[-4000:]}"
            )
        return self.url

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def chromium_driver():
    """Headless Debian Chromium through its chromedriver, recording network requests."""
    from selenium import webdriver

    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (.ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,1300",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)


@pytest.mark.slow
def test_web_page_in_chromium(demo_run, tmp_path):
    """Upload a picture, type a vocabulary, see the overlay and the legend; errors show in the
    page; two requests at once are both answered; the page loads nothing from outside."""
    for module in ("gradio", "selenium"):
        pytest.importorskip(
            module, reason="the web extra is not installed: pip install -r requirements-web.txt"
        )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = chromium_driver()
    picture = scene(tmp_path / "scene.png", size=(160, 120))
    not_image = tmp_path / "holiday.jpg"
    not_image.write_text("this is text")
    too_large = scene(tmp_path / "huge.png", size=(1000, 600))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "ZSSEG_CACHE": str(tmp_path / "cache"),
        "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    app = WebDemo(
        ["--checkpoint", str(demo_run), "--examples", str(picture), "--max-megapixels", "0.5"], env
    )
    try:
        url = app.wait(timeout=240)
        wait = WebDriverWait(driver, 120)

        def request(image: Path | None, vocabulary: str, overrides: str = "") -> str:
            driver.get(url)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-image input[type=file]"))
            if image:
                driver.find_element(By.CSS_SELECTOR, "#input-image input[type=file]").send_keys(
                    str(image)
                )
                wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#input-image img"))
            box = driver.find_element(By.CSS_SELECTOR, "#vocabulary textarea")
            box.clear()
            box.send_keys(vocabulary)
            if overrides:
                driver.find_element(By.CSS_SELECTOR, "#overrides-panel button").click()
                field = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#overrides textarea"))
                field.clear()
                field.send_keys(overrides)
            clicked = time.monotonic()
            driver.find_element(By.CSS_SELECTOR, "#segment").click()
            # the app's message, or a toast with Gradio's own error (a failure)
            answer = "#status .zs-ok, #status .zs-error, .toast-body, [data-testid=toast-body]"
            shown = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, answer))
            request.seconds = time.monotonic() - clicked
            if not driver.execute_script("return !!arguments[0].closest('#status')", shown):
                pytest.fail(f"Gradio's error instead of the app's message: {shown.text[:300]}")
            return shown.text

        status = request(picture, "sky, grass,\nred ball\ncafé")
        first_result_s = request.seconds
        assert not status.startswith("Error"), status
        legend = [
            row.get_attribute("data-class")
            for row in driver.find_elements(By.CSS_SELECTOR, "#legend tr.zs-class")
        ]
        assert sorted(legend) == sorted(["sky", "grass", "red ball", "café"])
        overlay = driver.find_element(By.CSS_SELECTOR, "#overlay img")
        assert (
            driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth", overlay
            )
            == 160
        )
        assert driver.find_elements(
            By.XPATH, "//*[@id='label-png']//*[contains(text(), 'scene_label_')]"
        )
        driver.save_screenshot(str(tmp_path / "web_demo.png"))
        requested = [
            entry["message"]
            for entry in driver.get_log("performance")
            if '"Network.requestWillBeSent"' in entry["message"]
        ]
        outside = [
            m for m in requested if '"url":"http' in m and f'"url":"{url.rstrip("/")}' not in m
        ]
        assert requested and not outside, outside[:3]

        assert request(not_image, "sky").startswith(
            "Error: holiday.jpg is not an image this demo can read"
        )
        assert request(picture, " , ").startswith("Error: the vocabulary is empty")
        assert "1000 x 600 = 0.6 megapixels, more than the 0.5" in request(too_large, "sky")
        mismatch = request(picture, "sky", "MODEL.CLIP.PROMPT_TEMPLATES imagenet")
        assert "PROMPT_TEMPLATES: checkpoint 'single', config 'imagenet'" in mismatch
        assert not driver.find_elements(By.XPATH, "//*[contains(text(), 'Traceback')]")

        from gradio_client import Client, handle_file

        client = Client(url, verbose=False)
        jobs = [
            client.submit(
                handle_file(str(picture)),
                vocabulary,
                str(demo_run),
                False,
                False,
                "",
                api_name="/segment",
            )
            for vocabulary in ("sky, grass", "water, car, sky")
        ]
        results = [job.result(timeout=120) for job in jobs]
        assert all("zs-ok" in result[3] for result in results), results
        assert 'data-class="water"' in results[1][1] and 'data-class="water"' not in results[0][1]
    finally:
        driver.quit()
        app.stop()
    print(
        f"\nweb demo: start-up {app.startup_s:.1f} s, first result in the browser {first_result_s:.1f} s"
    )
