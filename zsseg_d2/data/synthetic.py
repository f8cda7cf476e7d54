"""Procedurally drawn scenes (no downloaded assets): the "shapes" set of the random-text demo
(``tools/run_demo.py --scenes shapes``), and the writer every drawn set shares (:class:`SceneSet`;
the COCO-Stuff-named scenes of :mod:`zsseg_d2.data.scenes` are the other set).

Every scene is drawn once from one geometry into both the RGB image and its exact label map: a
background of 1-3 "stuff" regions split by random wavy horizons, then 1-4 "things" painted in order,
so a later thing occludes an earlier one in the image and the label map alike (no ignore band).
Each class has its own colour, texture and shape; a fixed seed gives byte-identical files.
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

GENERATOR_VERSION = 1
STUFF_CLASSES = ["sky", "grass", "water", "sand", "wall"]
THING_CLASSES = ["sun", "ball", "tree", "house", "car"]
CLASS_NAMES: list[str] = STUFF_CLASSES + THING_CLASSES
UNSEEN_CLASSES: list[str] = ["water", "car"]  # held out for GZS3: one stuff, one thing
_MARKER = ".synthetic.json"

Rgb = tuple[int, int, int]
Texture = Callable[[np.random.Generator, int, int], np.ndarray]
DrawScene = Callable[[np.random.Generator, tuple[int, int]], tuple[np.ndarray, np.ndarray]]


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth vertical gradient from deep to pale blue."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = np.array([70, 140, 235], np.float32), np.array([175, 215, 250], np.float32)
    return np.broadcast_to(top + t * (bottom - top), (h, w, 3)) + rng.normal(0, 2, (h, w, 1))


def _grass(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Green with vertical blade streaks."""
    streaks = rng.normal(0, 22, (1, w, 1)) + rng.normal(0, 8, (h, w, 1))
    return np.array([70, 160, 45], np.float32) + streaks * np.array([0.5, 1.0, 0.4], np.float32)


def _water(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Dark teal with horizontal wave stripes."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    period, phase = rng.uniform(5, 9), rng.uniform(0, 2 * np.pi)
    waves = np.sin(2 * np.pi * y / period + phase + 0.8 * np.sin(x / 6.0))[..., None]
    return np.array([25, 95, 130], np.float32) + 30 * waves * np.array([0.6, 1.0, 1.0], np.float32)


def _sand(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Beige with grey speckle noise."""
    return np.array([225, 195, 135], np.float32) + rng.normal(0, 16, (h, w, 1))


def brick_wall(
    rng: np.random.Generator, h: int, w: int, mortar: Rgb, brick: Rgb, noise: float
) -> np.ndarray:
    """Bricks with mortar joints, alternate rows offset by half a brick, grey noise on top."""
    brick_h, brick_w = int(rng.integers(7, 11)), int(rng.integers(14, 22))
    y, x = np.mgrid[0:h, 0:w]
    row = y // brick_h
    joint = (y % brick_h == 0) | ((x + (row % 2) * (brick_w // 2)) % brick_w == 0)
    wall = np.where(joint[..., None], mortar, brick).astype(np.float32)
    return wall + rng.normal(0, noise, (h, w, 1))


def _wall(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Grey bricks with pale mortar joints."""
    return brick_wall(rng, h, w, (215, 215, 205), (125, 120, 130), 5)


STUFF_TEXTURES: dict[str, Texture] = {
    "sky": _sky,
    "grass": _grass,
    "water": _water,
    "sand": _sand,
    "wall": _wall,
}


def _fill(layer: np.ndarray, mask: np.ndarray | None, pts: np.ndarray, colour: Rgb) -> None:
    """Fill polygon `pts` with `colour` on `layer` and, if given, with 1 on `mask` (no anti-aliasing)."""
    pts = np.round(pts).astype(np.int32)
    cv2.fillPoly(layer, [pts], colour, cv2.LINE_8)
    if mask is not None:
        cv2.fillPoly(mask, [pts], 1, cv2.LINE_8)


def _disc(cx: float, cy: float, r: float) -> np.ndarray:
    """Polygon approximating a circle (36 vertices)."""
    a = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)


def _box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned rectangle polygon."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _draw_thing(
    name: str, layer: np.ndarray, mask: np.ndarray, cx: float, cy: float, s: float
) -> None:
    """Draw thing `name` of size `s` centred at (cx, cy); parts filled with `mask=None` are decoration."""
    if name == "sun":
        _fill(layer, mask, _disc(cx, cy, s / 2), (250, 215, 30))
    elif name == "ball":  # red beach ball with a white band
        _fill(layer, mask, _disc(cx, cy, s / 2), (215, 30, 40))
        _fill(layer, None, _box(cx - s, cy - s / 10, cx + s, cy + s / 10), (245, 245, 245))
    elif name == "tree":  # brown trunk under a dark green crown
        _fill(layer, mask, _box(cx - s / 10, cy, cx + s / 10, cy + s / 2), (105, 65, 30))
        _fill(layer, mask, _disc(cx, cy - s / 8, s * 0.38), (20, 85, 30))
    elif name == "house":  # orange body, dark red roof, blue window
        _fill(
            layer, mask, _box(cx - s * 0.4, cy - s / 10, cx + s * 0.4, cy + s / 2), (235, 145, 55)
        )
        _fill(
            layer,
            mask,
            np.array([[cx - s / 2, cy - s / 10], [cx + s / 2, cy - s / 10], [cx, cy - s / 2]]),
            (125, 35, 30),
        )
        _fill(layer, None, _box(cx - s / 4, cy + s / 20, cx - s / 20, cy + s / 4), (90, 175, 235))
    elif name == "car":  # purple body and cabin, black wheels
        _fill(layer, mask, _box(cx - s / 2, cy - s / 20, cx + s / 2, cy + s / 5), (150, 50, 180))
        _fill(
            layer,
            mask,
            np.array(
                [
                    [cx - s / 4, cy - s / 20],
                    [cx - s / 8, cy - s / 4],
                    [cx + s / 5, cy - s / 4],
                    [cx + s / 3, cy - s / 20],
                ]
            ),
            (150, 50, 180),
        )
        for wx in (cx - s / 3, cx + s / 3):
            _fill(layer, mask, _disc(wx, cy + s / 5, s / 8), (25, 25, 25))
    else:
        raise ValueError(f"unknown thing class {name!r}; expected one of {THING_CLASSES}")


def _background(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """1-3 distinct stuff regions split by wavy near-horizontal lines; sky, if drawn, is on top."""
    names = list(rng.choice(STUFF_CLASSES, int(rng.integers(1, 4)), replace=False))
    names.sort(key=lambda n: n != "sky")
    return draw_bands(rng, h, w, names, STUFF_TEXTURES, CLASS_NAMES)


def draw_bands(
    rng: np.random.Generator,
    h: int,
    w: int,
    names: Sequence[str],
    textures: dict[str, Texture],
    class_names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """``names`` as bands from top to bottom, split by wavy near-horizontal lines, each filled
    with its texture: (float image HxWx3, uint8 label map of ``class_names`` ids)."""
    x = np.arange(w, dtype=np.float32)
    region = np.zeros((h, w), np.int64)
    for y0 in np.sort(rng.uniform(0.25, 0.75, len(names) - 1)) * h:
        line = (
            y0
            + rng.uniform(-0.3, 0.3) * (x - w / 2)
            + rng.uniform(0, 0.06 * h)
            * np.sin(x * rng.uniform(0.03, 0.12) + rng.uniform(0, 2 * np.pi))
        )
        region += np.arange(h)[:, None] > line[None, :]
    image, label = np.zeros((h, w, 3), np.float32), np.zeros((h, w), np.uint8)
    for i, name in enumerate(names):
        inside = region == i
        image[inside] = (textures[name](rng, h, w) * rng.uniform(0.9, 1.1))[inside]
        label[inside] = class_names.index(name)
    return image, label


def paint_thing(
    image: np.ndarray, label: np.ndarray, class_id: int, layer: np.ndarray, mask: np.ndarray, rng
) -> None:
    """Paint a drawn thing (``layer`` where ``mask`` is 1) over ``image`` and ``label``, shaded by a
    random factor and pixel noise."""
    shaded = layer * rng.uniform(0.9, 1.1) + rng.normal(0, 6, (*mask.shape, 1))
    image[mask == 1] = shaded[mask == 1]
    label[mask == 1] = class_id


def draw_scene(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: (RGB uint8 HxWx3 image, uint8 HxW label map of CLASS_NAMES ids)."""
    h, w = size
    image, label = _background(rng, h, w)
    for name in rng.choice(THING_CLASSES, int(rng.integers(1, 5))):
        s = rng.uniform(0.25, 0.5) * min(h, w)
        cx = rng.uniform(s / 2, w - s / 2)
        cy = rng.uniform(s / 2, h / 2) if name == "sun" else rng.uniform(s / 2, h - s / 2)
        layer, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
        _draw_thing(str(name), layer, mask, cx, cy, s)
        paint_thing(image, label, CLASS_NAMES.index(name), layer, mask, rng)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label


@dataclass(frozen=True)
class SceneSet:
    """A family of drawn scenes: its class names (label ids, in order), unseen names, drawing
    function and version (bumped whenever the drawing changes, so that stale files are redrawn)."""

    name: str
    version: int
    class_names: tuple[str, ...]
    unseen_classes: tuple[str, ...]
    draw: DrawScene
    description: str


SHAPES = SceneSet(
    "zsseg_shapes",
    GENERATOR_VERSION,
    tuple(CLASS_NAMES),
    tuple(UNSEEN_CLASSES),
    draw_scene,
    "Synthetic scenes drawn by zsseg_d2/data/synthetic.py (no third-party assets).",
)


def _split_dict(root: Path, split: str, image_id: str, h: int, w: int) -> dict:
    """Detectron2 semantic-segmentation record of one generated image."""
    return {
        "file_name": str(root / split / "images" / f"{image_id}.jpg"),
        "sem_seg_file_name": str(root / split / "labels" / f"{image_id}.png"),
        "height": h,
        "width": w,
        "image_id": image_id,
    }


def generate_split(
    root: str | Path,
    split: str,
    num_images: int,
    seed: int,
    size: tuple[int, int] = (128, 128),
    scenes: SceneSet = SHAPES,
) -> list[dict]:
    """Write `<root>/<split>/images/<id>.jpg` (quality 95) and `labels/<id>.png`; return the records.

    Image i is drawn by ``scenes.draw`` from a generator seeded by (seed, crc32(split), i): same
    arguments, same bytes.
    """
    h, w = size
    if num_images < 1 or min(h, w) < 32:
        raise ValueError(
            f"generate_split({split!r}): need num_images >= 1 and size >= (32, 32), "
            f"got num_images={num_images}, size={size}"
        )
    root = Path(root)
    for sub in ("images", "labels"):
        (root / split / sub).mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(num_images):
        image, label = scenes.draw(
            np.random.default_rng([seed, zlib.crc32(split.encode()), i]), (h, w)
        )
        record = _split_dict(root, split, f"{i:05d}", h, w)
        cv2.imwrite(record["file_name"], image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(record["sem_seg_file_name"], label)
        records.append(record)
    return records


def split_dicts(root: str | Path, split: str) -> list[dict]:
    """Records of an already generated split (read from its meta.json); for dataset registration."""
    meta_file = Path(root) / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{meta_file} missing: run zsseg_d2.data.synthetic.generate({str(root)!r})"
        )
    meta = json.loads(meta_file.read_text())
    h, w = meta["size"]
    return [_split_dict(Path(root), split, f"{i:05d}", h, w) for i in range(meta["splits"][split])]


def generate(
    root: str | Path,
    num_train: int = 300,
    num_val: int = 60,
    seed: int = 0,
    size: tuple[int, int] = (128, 128),
    scenes: SceneSet = SHAPES,
) -> None:
    """Write the train and val splits of ``scenes`` plus meta.json and README.txt under `root`.

    Does nothing when the marker file records the same generator version and parameters and all
    files exist; otherwise regenerates from scratch.
    """
    root = Path(root)
    params = {
        "scenes": scenes.name,
        "version": scenes.version,
        "num_train": num_train,
        "num_val": num_val,
        "seed": seed,
        "size": list(size),
    }
    marker = root / _MARKER
    counts = {"train": num_train, "val": num_val}
    if (
        marker.is_file()
        and json.loads(marker.read_text()) == params
        and all(
            Path(r[key]).is_file()
            for split in counts
            for r in split_dicts(root, split)
            for key in ("file_name", "sem_seg_file_name")
        )
    ):
        return
    marker.unlink(missing_ok=True)
    for split, count in counts.items():
        shutil.rmtree(root / split, ignore_errors=True)
        generate_split(root, split, count, seed, size, scenes)
    meta = {
        "scenes": scenes.name,
        "classes": list(scenes.class_names),
        "unseen_classes": list(scenes.unseen_classes),
        "splits": counts,
        "size": list(size),
        "seed": seed,
        "generator_version": scenes.version,
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=1))
    (root / "README.txt").write_text(
        f"{scenes.description}\n"
        f"{num_train} train / {num_val} val images of {size[0]}x{size[1]}, seed {seed}.\n"
        "images/<id>.jpg: RGB (JPEG quality 95); labels/<id>.png: uint8 class ids, no ignore pixels.\n"
        f"Classes (id order): {', '.join(scenes.class_names)}. "
        f"Unseen for GZS3: {', '.join(scenes.unseen_classes)}.\n"
    )
    marker.write_text(json.dumps(params))
