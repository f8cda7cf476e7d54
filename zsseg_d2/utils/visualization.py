"""Overlays of label maps with a legend of the classes present, and per-class pixel fractions.

Class names may be any Unicode text: each legend line is drawn with the first font that has a
glyph for every character, looked for in ``$ZSSEG_FONT``, matplotlib's DejaVu Sans (always
installed; Latin, Greek, Cyrillic and more) and the system's fonts. When none covers a name, it is
drawn with DejaVu Sans (missing glyphs as boxes) and a warning names the characters and the fix.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from detectron2.utils.colormap import colormap
from matplotlib import font_manager, ft2font
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FONT_ENV = "ZSSEG_FONT"
DEFAULT_FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
_LEGEND_ROW = 18
_FONT_SIZE = 13
_ALPHA = 0.55


def class_colors(num_classes: int) -> list:
    """A fixed RGB colour per class id (Detectron2's palette, repeated when exhausted)."""
    palette = colormap(rgb=True, maximum=255).astype(int).tolist()
    return [palette[i % len(palette)] for i in range(num_classes)]


def class_fractions(label: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Fraction of the image's pixels per class present, largest first (ids >= C are skipped)."""
    counts = np.bincount(label.ravel(), minlength=len(class_names))[: len(class_names)]
    order = np.argsort(-counts, kind="stable")
    return {class_names[i]: round(float(counts[i]) / label.size, 6) for i in order if counts[i] > 0}


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    try:
        return frozenset(ft2font.FT2Font(path).get_charmap())
    except (OSError, RuntimeError):  # not a font FreeType can read
        return frozenset()


def _candidate_fonts() -> list[str]:
    chosen = [os.environ[FONT_ENV]] if os.environ.get(FONT_ENV) else []
    return chosen + [str(DEFAULT_FONT)] + sorted(font_manager.findSystemFonts())


@functools.lru_cache(maxsize=256)
def font_for(text: str) -> str:
    """Path of the first candidate font with a glyph for every character of ``text``."""
    needed = {ord(c) for c in text if not c.isspace()}
    for path in _candidate_fonts():
        if needed <= _charmap(path):
            return path
    missing = "".join(
        sorted({c for c in text if ord(c) not in _charmap(str(DEFAULT_FONT)) and not c.isspace()})
    )
    logger.warning(
        f"no font found covers {missing!r} of class name {text!r}; drawn with DejaVu Sans. Install a font "
        f"that covers them (e.g. Noto Sans CJK: apt-get install fonts-noto-cjk) or set ${FONT_ENV} to one"
    )
    return str(DEFAULT_FONT)


def _paint(image_rgb: np.ndarray, label: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Classes blended over the image (ids >= C left as they are), region borders darkened."""
    known = label < len(colors)
    painted = image_rgb.astype(np.float32)
    painted[known] = (1 - _ALPHA) * painted[known] + _ALPHA * colors[label[known]]
    border = np.zeros(label.shape, dtype=bool)
    border[:-1] |= label[:-1] != label[1:]
    border[:, :-1] |= label[:, :-1] != label[:, 1:]
    painted[border] *= 0.3
    return painted.round().astype(np.uint8)


def legend_image(fractions: dict[str, float], class_names: Sequence[str], width: int) -> np.ndarray:
    """White rows of colour swatches and '<name> <percent>%' for each class in ``fractions``."""
    colors = class_colors(len(class_names))
    legend = Image.new("RGB", (width, _LEGEND_ROW * max(len(fractions), 1) + 6), "white")
    draw = ImageDraw.Draw(legend)
    for row, (name, fraction) in enumerate(fractions.items()):
        top = 3 + row * _LEGEND_ROW
        color = tuple(colors[list(class_names).index(name)])
        draw.rectangle((4, top, 4 + _LEGEND_ROW - 5, top + _LEGEND_ROW - 5), fill=color)
        text = f"{name} {100 * fraction:.1f}%"
        font = ImageFont.truetype(font_for(text), _FONT_SIZE)
        draw.text((_LEGEND_ROW + 6, top), text, fill=(0, 0, 0), font=font)
    return np.asarray(legend)


def overlay_with_legend(
    image_rgb: np.ndarray, label: np.ndarray, class_names: Sequence[str]
) -> np.ndarray:
    """The image with the label map drawn over it and, below, a legend of the classes present."""
    colors = np.asarray(class_colors(len(class_names)), dtype=np.float32)
    overlay = _paint(image_rgb, label, colors)
    legend = legend_image(class_fractions(label, class_names), class_names, overlay.shape[1])
    return np.concatenate([overlay, legend], axis=0)
