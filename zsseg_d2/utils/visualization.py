"""Overlays of label maps with a legend of the classes present, and per-class pixel fractions."""
from __future__ import annotations

from typing import Dict, Sequence

import cv2
import numpy as np
from detectron2.data.catalog import Metadata
from detectron2.utils.colormap import colormap
from detectron2.utils.visualizer import ColorMode, Visualizer

_LEGEND_ROW = 18


def class_colors(num_classes: int) -> list:
    """A fixed RGB colour per class id (Detectron2's palette, repeated when exhausted)."""
    palette = colormap(rgb=True, maximum=255).astype(int).tolist()
    return [palette[i % len(palette)] for i in range(num_classes)]


def class_fractions(label: np.ndarray, class_names: Sequence[str]) -> Dict[str, float]:
    """Fraction of the image's pixels per class present, largest first (ids >= C are skipped)."""
    counts = np.bincount(label.ravel(), minlength=len(class_names))[: len(class_names)]
    order = np.argsort(-counts, kind="stable")
    return {class_names[i]: round(float(counts[i]) / label.size, 6) for i in order if counts[i] > 0}


def overlay_with_legend(image_rgb: np.ndarray, label: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The image with the label map drawn over it and, below, a legend of the classes present."""
    metadata = Metadata(name="_overlay", stuff_classes=list(class_names), stuff_colors=class_colors(len(class_names)))
    drawn = Visualizer(image_rgb, metadata, instance_mode=ColorMode.IMAGE).draw_sem_seg(label, alpha=0.55)
    overlay = drawn.get_image()
    fractions = class_fractions(label, class_names)
    legend = np.full((_LEGEND_ROW * max(len(fractions), 1) + 6, overlay.shape[1], 3), 255, dtype=np.uint8)
    for row, (name, fraction) in enumerate(fractions.items()):
        top = 3 + row * _LEGEND_ROW
        color = metadata.stuff_colors[list(class_names).index(name)]
        cv2.rectangle(legend, (4, top), (4 + _LEGEND_ROW - 4, top + _LEGEND_ROW - 4), color, thickness=-1)
        cv2.putText(legend, f"{name} {100 * fraction:.1f}%", (_LEGEND_ROW + 6, top + _LEGEND_ROW - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([overlay, legend], axis=0)
