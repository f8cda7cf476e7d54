"""Drawn scenes whose classes are COCO-Stuff classes: the default data set of `make demo`.

The class vectors of these scenes are the real CLIP ViT-B/16 text embeddings of their COCO-Stuff
names (``zsseg_d2/data/embeddings/coco_stuff_171.vitb16.multi.npy``), where related names lie
close. The classes come in designed pairs: each unseen class has a seen neighbour that is among
its nearest names in that text space *and* is drawn in the same family (same layout, texture or
shape) with a visible difference (colour, pattern, parts). The remaining seen classes are
unrelated to any unseen one, stuff and things alike:

=============  =================  =======================================================
unseen         seen neighbour     drawn as
=============  =================  =======================================================
clouds         sky-other          white-grey puffs over pale sky / smooth blue gradient
river          sea                green-brown water, fine diagonal ripples / deep blue,
                                  broad horizontal waves
cow            sheep              quadruped: white with black patches, smooth outline /
                                  cream wool with a bumpy outline, dark head and legs
skateboard     surfboard          board: short dark deck on two wheels / long bright
                                  pointed board with a stripe
=============  =================  =======================================================

unrelated seen classes: sand, grass, wall-brick (stuff), kite, umbrella (things). Unseen classes
mix stuff (clouds, river) and things (cow, skateboard), as the paper's COCO-Stuff split does.
:func:`neighbour_report` gives each pair's text cosine and its rank among all pairs of the
COCO-Stuff names.

Composition as :mod:`zsseg_d2.data.synthetic`: 1-3 stuff bands (ordered top to bottom: sky or
clouds, wall, water, ground) split by wavy horizons, then 1-3 things painted over them; image
and label map come from one geometry, a fixed seed gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .synthetic import SceneSet, Texture, _box, _disc, _fill, brick_wall, draw_bands, paint_thing

SCENES_VERSION = 1
STUFF = ("sky-other", "clouds", "sea", "river", "sand", "grass", "wall-brick")
THINGS = ("sheep", "cow", "surfboard", "skateboard", "kite", "umbrella")
CLASS_NAMES: tuple[str, ...] = STUFF + THINGS  # COCO-Stuff names; label id = index
UNSEEN_CLASSES: tuple[str, ...] = ("clouds", "river", "cow", "skateboard")
PAIRS: tuple[tuple[str, str], ...] = (
    ("clouds", "sky-other"),
    ("river", "sea"),
    ("cow", "sheep"),
    ("skateboard", "surfboard"),
)  # (unseen, its seen neighbour)
# top-to-bottom order of the stuff bands
_BAND_ORDER = {"sky-other": 0, "clouds": 0, "wall-brick": 1, "sea": 2, "river": 2}
_BAND_ORDER.update(sand=3, grass=3)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, blob: float) -> np.ndarray:
    """Noise in [0, 1] with blobs of about ``blob`` pixels (blurred white noise, stretched)."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), blob / 2)
    low, high = noise.min(), noise.max()
    return (noise - low) / max(high - low, 1e-6)


def _sky(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth vertical gradient from deep to pale blue."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = np.array([60, 130, 230], np.float32), np.array([160, 205, 250], np.float32)
    return np.broadcast_to(top + t * (bottom - top), (h, w, 3)) + rng.normal(0, 2, (h, w, 1))


def _clouds(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Sky family: soft white-grey puffs with grey shading over a pale blue-grey base."""
    puffs = _smooth_noise(rng, h, w, rng.uniform(8, 14))[..., None] ** 0.7
    base, white = np.array([165, 185, 215], np.float32), np.array([250, 250, 252], np.float32)
    return base + puffs * (white - base) + rng.normal(0, 2, (h, w, 1))


def _waves(rng: np.random.Generator, h: int, w: int, period: float, tilt: float) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    return np.sin(2 * np.pi * (y + tilt * x) / period + phase + 0.8 * np.sin(x / 6.0))[..., None]


def _sea(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Deep blue with broad horizontal wave stripes."""
    waves = _waves(rng, h, w, rng.uniform(7, 10), 0.0)
    return np.array([25, 75, 150], np.float32) + 30 * waves * np.array([0.5, 0.9, 1.0], np.float32)


def _river(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Water family: green-brown water with fine diagonal ripples."""
    waves = _waves(rng, h, w, rng.uniform(3.5, 5), rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1))
    return np.array([85, 110, 70], np.float32) + 25 * waves * np.array([1.0, 1.0, 0.7], np.float32)


def _sand(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Beige with grey speckle noise."""
    return np.array([225, 195, 135], np.float32) + rng.normal(0, 16, (h, w, 1))


def _grass(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Green with vertical blade streaks."""
    streaks = rng.normal(0, 22, (1, w, 1)) + rng.normal(0, 8, (h, w, 1))
    return np.array([70, 160, 45], np.float32) + streaks * np.array([0.5, 1.0, 0.4], np.float32)


def _wall_brick(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Red-brown bricks with pale mortar joints."""
    return brick_wall(rng, h, w, (220, 215, 200), (160, 70, 50), 6)


STUFF_TEXTURES: dict[str, Texture] = {
    "sky-other": _sky,
    "clouds": _clouds,
    "sea": _sea,
    "river": _river,
    "sand": _sand,
    "grass": _grass,
    "wall-brick": _wall_brick,
}


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> np.ndarray:
    """Polygon approximating an ellipse (36 vertices), rotated by ``angle`` radians."""
    a = np.linspace(0, 2 * np.pi, 36, endpoint=False)
    x, y = rx * np.cos(a), ry * np.sin(a)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)


def _quadruped_legs(
    layer: np.ndarray, mask: np.ndarray, cx: float, cy: float, s: float
) -> tuple[np.ndarray, float, float]:
    """The four legs of an animal of length ``s``; returns the body polygon and its half-axes,
    for the caller to fill."""
    rx, ry = s * 0.38, s * 0.2
    for dx in (-0.25, -0.1, 0.12, 0.27):
        leg_x = cx + dx * s
        _fill(layer, mask, _box(leg_x - s / 30, cy, leg_x + s / 30, cy + s * 0.38), (60, 55, 50))
    return _ellipse(cx, cy, rx, ry), rx, ry


def _sheep(layer, mask, cx, cy, s, rng) -> None:
    """Cream wool with a bumpy outline (a ring of small discs), dark grey head and legs."""
    facing = int(rng.choice([-1, 1]))
    body, rx, ry = _quadruped_legs(layer, mask, cx, cy, s)
    wool = (235, 228, 210)
    _fill(layer, mask, body, wool)
    for a in np.linspace(0, 2 * np.pi, 14, endpoint=False):
        _fill(layer, mask, _disc(cx + rx * np.cos(a), cy + ry * np.sin(a), s * 0.07), wool)
    _fill(
        layer,
        mask,
        _ellipse(cx + facing * s * 0.45, cy - s * 0.12, s * 0.1, s * 0.07),
        (55, 55, 55),
    )


def _cow(layer, mask, cx, cy, s, rng) -> None:
    """Quadruped family: white with black patches, smooth outline, white head with a pink muzzle."""
    facing = int(rng.choice([-1, 1]))
    body, rx, ry = _quadruped_legs(layer, mask, cx, cy, s)
    _fill(layer, mask, body, (245, 245, 240))
    patches = np.zeros(mask.shape, np.uint8)
    for _ in range(int(rng.integers(3, 6))):
        px, py = cx + rng.uniform(-0.8, 0.8) * rx, cy + rng.uniform(-0.7, 0.7) * ry
        _fill(
            patches,
            None,
            _ellipse(px, py, s * rng.uniform(0.06, 0.11), s * 0.06, rng.uniform(0, 3)),
            1,
        )
    inside = np.zeros(mask.shape, np.uint8)
    _fill(inside, None, body, 1)
    layer[(patches == 1) & (inside == 1)] = (20, 20, 20)
    head_x = cx + facing * s * 0.45
    _fill(layer, mask, _ellipse(head_x, cy - s * 0.1, s * 0.1, s * 0.08), (245, 245, 240))
    _fill(
        layer,
        None,
        _ellipse(head_x + facing * s * 0.06, cy - s * 0.07, s * 0.05, s * 0.04),
        (235, 150, 160),
    )


_BOARD_COLOURS = ((250, 200, 40), (240, 120, 40), (40, 200, 200), (230, 70, 150))


def _surfboard(layer, mask, cx, cy, s, rng) -> None:
    """A long bright pointed board with a dark stripe along it."""
    angle = rng.uniform(-0.35, 0.35)
    colour = _BOARD_COLOURS[int(rng.integers(len(_BOARD_COLOURS)))]
    _fill(layer, mask, _ellipse(cx, cy, s * 0.55, s * 0.12, angle), colour)
    _fill(layer, None, _ellipse(cx, cy, s * 0.45, s * 0.02, angle), (40, 40, 60))


def _skateboard(layer, mask, cx, cy, s, rng) -> None:
    """Board family: a short dark deck with rounded ends, seen from the side, on two wheels."""
    half, thick = s * 0.32, s * 0.05
    _fill(layer, mask, _box(cx - half, cy - thick, cx + half, cy + thick), (70, 45, 30))
    for end in (-1, 1):
        _fill(layer, mask, _disc(cx + end * half, cy, thick), (70, 45, 30))
        _fill(layer, mask, _disc(cx + end * half * 0.7, cy + thick * 2.2, s * 0.07), (240, 230, 90))


def _kite(layer, mask, cx, cy, s, rng) -> None:
    """A diamond in two colours with dark spars."""
    top, right, bottom, left = (
        (cx, cy - s / 2),
        (cx + s / 3, cy - s / 8),
        (cx, cy + s / 2),
        (cx - s / 3, cy - s / 8),
    )
    _fill(layer, mask, np.array([top, right, bottom]), (220, 40, 40))
    _fill(layer, mask, np.array([top, bottom, left]), (40, 60, 200))
    _fill(layer, None, _box(cx - s / 60, cy - s / 2, cx + s / 60, cy + s / 2), (30, 30, 30))
    _fill(
        layer,
        None,
        _box(cx - s / 3, cy - s / 8 - s / 60, cx + s / 3, cy - s / 8 + s / 60),
        (30, 30, 30),
    )


def _umbrella(layer, mask, cx, cy, s, rng) -> None:
    """A striped half-disc canopy on a dark stick with a hooked handle."""
    radius = s / 2
    a = np.linspace(np.pi, 2 * np.pi, 19)
    canopy = np.stack([cx + radius * np.cos(a), cy + radius * np.sin(a)], 1)
    _fill(layer, mask, canopy, (250, 250, 250))
    for i, colour in enumerate(((200, 30, 60), (250, 250, 250)) * 2):
        start, end = np.pi + i * np.pi / 4, np.pi + (i + 1) * np.pi / 4
        b = np.linspace(start, end, 6)
        wedge = np.concatenate(
            [[[cx, cy]], np.stack([cx + radius * np.cos(b), cy + radius * np.sin(b)], 1)]
        )
        _fill(layer, None, wedge, colour if i % 2 == 0 else (250, 210, 40))
    _fill(layer, mask, _box(cx - s / 40, cy, cx + s / 40, cy + s * 0.45), (40, 30, 30))
    _fill(layer, mask, _box(cx - s / 8, cy + s * 0.42, cx + s / 40, cy + s * 0.47), (40, 30, 30))


THING_DRAWERS = {
    "sheep": _sheep,
    "cow": _cow,
    "surfboard": _surfboard,
    "skateboard": _skateboard,
    "kite": _kite,
    "umbrella": _umbrella,
}


def _background(
    rng: np.random.Generator, h: int, w: int, stuff: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """1-3 distinct bands of ``stuff`` split by wavy near-horizontal lines, ordered top to bottom."""
    count = int(rng.integers(1, min(3, len(stuff)) + 1))
    names = sorted(rng.choice(stuff, count, replace=False), key=_BAND_ORDER.get)
    return draw_bands(rng, h, w, [str(n) for n in names], STUFF_TEXTURES, CLASS_NAMES)


def draw_scene(
    rng: np.random.Generator,
    size: tuple[int, int],
    stuff: Sequence[str] = STUFF,
    things: Sequence[str] = THINGS,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: (RGB uint8 HxWx3 image, uint8 HxW label map of CLASS_NAMES ids); its stuff
    bands are drawn from ``stuff``, its 1-3 things (none when ``things`` is empty) from ``things``."""
    h, w = size
    image, label = _background(rng, h, w, stuff)
    for name in rng.choice(things, int(rng.integers(1, 4))) if len(things) else ():
        s = rng.uniform(0.3, 0.55) * min(h, w)
        cx, cy = rng.uniform(s / 2, w - s / 2), rng.uniform(s / 2, h - s / 2)
        layer, mask = np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.uint8)
        THING_DRAWERS[str(name)](layer, mask, cx, cy, s, rng)
        paint_thing(image, label, CLASS_NAMES.index(str(name)), layer, mask, rng)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label


SCENES = SceneSet(
    "zsseg_scenes",
    SCENES_VERSION,
    CLASS_NAMES,
    UNSEEN_CLASSES,
    draw_scene,
    "Scenes of COCO-Stuff classes drawn by zsseg_d2/data/scenes.py (no third-party assets).",
)


def neighbour_report(
    embedding_file: str | Path, pairs: Sequence[tuple[str, str]] = PAIRS
) -> list[dict]:
    """For each (unseen, seen) pair: the cosine of their text embeddings in ``embedding_file``
    and its rank among all pairs of the file's names (1 = the closest pair), with the unseen
    name's nearest seen class of these scenes."""
    from ..modeling.semantic.embedding_file import read_embedding_file

    names, vectors = read_embedding_file(embedding_file)
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = vectors @ vectors.T
    all_pairs = np.sort(cosine[np.triu_indices(len(names), 1)])[::-1]
    seen = [n for n in CLASS_NAMES if n not in UNSEEN_CLASSES]
    report = []
    for unseen, neighbour in pairs:
        row = cosine[names.index(unseen)]
        nearest = max(seen, key=lambda n: row[names.index(n)])
        value = float(row[names.index(neighbour)])
        report.append(
            {
                "unseen": unseen,
                "seen": neighbour,
                "cosine": round(value, 3),
                "rank": int((all_pairs > value).sum()) + 1,
                "pairs": len(all_pairs),
                "nearest_seen": nearest,
            }
        )
    return report
