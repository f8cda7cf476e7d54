"""What the web demo does per request, without the web: pick the checkpoint's config and text
settings, read the upload, parse the vocabulary, segment, and describe the result.

Every problem a user can cause raises :class:`UserError` with a message for the page.
"""

from __future__ import annotations

import functools
import itertools
import logging
import shlex
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from detectron2.config import CfgNode
from PIL import Image, UnidentifiedImageError

from ..data.class_lists import CLASS_NAMES_DIR, load_class_list
from ..data.sem_seg_io import read_image
from ..data.vocabulary import training_vocabulary
from ..engine import load_config
from ..engine.checkpoint import load_tensors_only
from ..engine.predictor import VocabularyPredictor
from ..engine.text_record import RECORD_KEY
from ..modeling.semantic import validate_class_names
from ..utils.visualization import class_colors, class_fractions, overlay_with_legend

logger = logging.getLogger(__name__)

# The config keys of a text record that are set from it: they name the semantic source
# (docs/semantic_spaces.md). The record's other entries (training vocabulary, PCA) are checked only.
TEXT_SETTING_KEYS = (
    "MODEL.SEMANTIC.SOURCE",
    "MODEL.CLIP.MODEL_NAME",
    "MODEL.CLIP.PRETRAINED",
    "MODEL.CLIP.PROMPT_TEMPLATES",
    "MODEL.SEMANTIC.FILES",
    "MODEL.SEMANTIC.NORMALIZE",
)
CHECKPOINT_CLASSES = "the checkpoint's training classes"
_CACHED_PREDICTORS = 2


class UserError(ValueError):
    """A problem with what the user gave (upload, vocabulary, checkpoint, settings)."""


@dataclass(frozen=True)
class LegendRow:
    class_id: int
    name: str
    color: tuple[int, int, int]
    share: float  # fraction of the image's pixels
    unseen: bool  # not a seen class of the checkpoint's training split


@dataclass(frozen=True)
class Segmentation:
    overlay: np.ndarray  # RGB, the label map over the image with a legend below
    legend: list[LegendRow]  # every class shown, largest share first
    label_png: Path  # class ids into the vocabulary
    note: str  # one line on what was done


def parse_vocabulary(text: str) -> list[str]:
    """Class names separated by commas or new lines (blank entries skipped)."""
    names = [name for line in text.splitlines() for name in line.split(",") if name.strip()]
    if not names:
        raise UserError("the vocabulary is empty: type class names separated by commas or lines")
    try:
        return validate_class_names(names, "the vocabulary")
    except ValueError as error:
        raise UserError(str(error)) from error


def parse_overrides(text: str) -> list[str]:
    """``KEY VALUE`` pairs as typed (shell quoting allowed)."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise UserError(f"cannot read the config overrides {text!r}: {error}") from error
    if len(words) % 2:
        raise UserError(f"the config overrides must be KEY VALUE pairs; {words[-1]!r} has no value")
    return words


def class_lists() -> list[str]:
    """The names :func:`class_list` knows: the checkpoint's classes and the shipped lists."""
    return [CHECKPOINT_CLASSES, *sorted(p.stem for p in CLASS_NAMES_DIR.glob("*.json"))]


def read_upload(path: str | None, max_pixels: int) -> np.ndarray:
    """The uploaded image as RGB, after checking its size against ``max_pixels`` (from the
    header, before decoding)."""
    if not path:
        raise UserError("no image: upload one or pick a demo scene")
    name = Path(path).name
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as error:
        raise UserError(
            f"{name} is not an image this demo can read (PNG, JPEG, BMP, TIFF, WebP, ...): {error}"
        ) from error
    if width * height > max_pixels:
        raise UserError(
            f"{name} is {width} x {height} = {width * height / 1e6:.3g} megapixels, more than the "
            f"{max_pixels / 1e6:.3g} this demo accepts (--max-megapixels, set by the memory it may "
            "use): downscale the image or restart the demo with a larger limit"
        )
    try:
        return read_image(path, "RGB")
    except (OSError, ValueError) as error:
        raise UserError(str(error).replace(str(path), name)) from error


@functools.lru_cache(maxsize=8)
def _recorded_text_settings(path: str, mtime_ns: int) -> tuple[str, ...]:
    """``KEY VALUE`` pairs of the semantic-source settings in the checkpoint's text record."""
    try:
        record = load_tensors_only(path).get(RECORD_KEY, {})
    except (ValueError, AttributeError) as error:
        raise UserError(f"{error}") from error
    return tuple(
        word for key in TEXT_SETTING_KEYS if key in record for word in (key, record[key]["value"])
    )


def checkpoint_config(
    checkpoint: Path, config_file: str | None, overrides: Sequence[str]
) -> CfgNode:
    """The config to segment with ``checkpoint``: the ``config.yaml`` its training run wrote
    beside it (else ``config_file``), the text settings of its record, then ``overrides``."""
    if not checkpoint.is_file():
        raise UserError(
            f"checkpoint {checkpoint} not found: run `make demo` to train the demo's, or pick or "
            "type another checkpoint (.pth)"
        )
    beside = checkpoint.parent / "config.yaml"
    config = beside if beside.is_file() else config_file
    if not config:
        raise UserError(
            f"no config for checkpoint {checkpoint}: there is no config.yaml beside it (train_net.py "
            "writes one into OUTPUT_DIR); start the demo with --config-file of its training run"
        )
    text_settings = _recorded_text_settings(str(checkpoint), checkpoint.stat().st_mtime_ns)
    try:
        return load_config(
            str(config), [*text_settings, "MODEL.WEIGHTS", str(checkpoint), *overrides]
        )
    except (KeyError, ValueError, FileNotFoundError) as error:
        raise UserError(f"config {config} with overrides {list(overrides)}: {error}") from error


def _legend(
    label: np.ndarray, vocabulary: list[str], unseen: set[str], shown: list[int]
) -> list[LegendRow]:
    colors = class_colors(len(vocabulary))
    shares = class_fractions(label, vocabulary)
    rows = [
        LegendRow(
            i,
            vocabulary[i],
            tuple(colors[i]),
            shares.get(vocabulary[i], 0.0),
            vocabulary[i] in unseen,
        )
        for i in shown
    ]
    return sorted(rows, key=lambda row: -row.share)


class Segmenter:
    """Segments uploads with a vocabulary; keeps the last predictors built (one per checkpoint and
    settings) and runs one request at a time."""

    def __init__(
        self,
        config_file: str | None = None,
        opts: Sequence[str] = (),
        max_pixels: int = 25_000_000,
        output_dir: Path | None = None,
    ):
        self.config_file = config_file
        self.opts = list(opts)
        self.max_pixels = max_pixels
        if output_dir is None:  # removed when the segmenter goes (at the latest, at exit)
            self._temporary = tempfile.TemporaryDirectory(prefix="zsseg_web_")
            output_dir = self._temporary.name
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._predictors: OrderedDict[tuple, VocabularyPredictor] = OrderedDict()
        self._lock = threading.Lock()
        self._count = itertools.count()

    def predictor(
        self,
        checkpoint: str,
        vocabulary: Sequence[str],
        ensemble: bool = False,
        overrides: str = "",
    ) -> VocabularyPredictor:
        """The predictor of ``checkpoint`` (CLIP ensemble on or off) set to ``vocabulary``; built on
        first use, then reused while the checkpoint file and the settings stay the same."""
        path = Path(checkpoint.strip()).expanduser()
        opts = [*self.opts, "MODEL.CLIP.ENSEMBLE", str(ensemble), *parse_overrides(overrides)]
        key = (str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else 0, tuple(opts))
        try:
            if key in self._predictors:
                self._predictors[key].set_vocabulary(vocabulary)
            else:
                cfg = checkpoint_config(path, self.config_file, opts)
                self._predictors[key] = VocabularyPredictor(cfg, vocabulary)
        except (ValueError, KeyError, FileNotFoundError, RuntimeError) as error:
            raise UserError(str(error)) from error
        self._predictors.move_to_end(key)
        while len(self._predictors) > _CACHED_PREDICTORS:
            self._predictors.popitem(last=False)
        return self._predictors[key]

    def class_list(self, name: str, checkpoint: str) -> list[str]:
        """The class names of a shipped list, or the checkpoint's training vocabulary."""
        if name == CHECKPOINT_CLASSES:
            path = Path(checkpoint.strip()).expanduser()
            cfg = checkpoint_config(path, self.config_file, [*self.opts])
            try:
                return training_vocabulary(cfg)
            except ValueError as error:
                raise UserError(str(error)) from error
        try:
            return list(load_class_list(name).prompts)
        except FileNotFoundError as error:
            raise UserError(str(error)) from error

    def segment(
        self,
        image_path: str | None,
        vocabulary_text: str,
        checkpoint: str,
        ensemble: bool = False,
        unseen_only: bool = False,
        overrides: str = "",
    ) -> Segmentation:
        rgb = read_upload(image_path, self.max_pixels)
        vocabulary = parse_vocabulary(vocabulary_text)
        with self._lock:
            start = time.monotonic()
            predictor = self.predictor(checkpoint, vocabulary, ensemble, overrides)
            try:
                label = predictor(rgb)
            except RuntimeError as error:  # out of memory among them
                raise UserError(f"segmentation failed: {error}") from error
            seconds = time.monotonic() - start
        model = predictor.model
        unseen = {name for name in vocabulary if name not in set(model.split.seen)}
        shown = [i for i, name in enumerate(vocabulary) if name in unseen or not unseen_only]
        if unseen_only and not shown:
            raise UserError(
                "no class of the vocabulary is unseen: all are seen classes of the checkpoint "
                f"({', '.join(model.split.seen)}); add other names or turn 'unseen classes only' off"
            )
        painted = np.where(np.isin(label, shown), label, len(vocabulary))
        note = f"{rgb.shape[1]} x {rgb.shape[0]} px, {len(vocabulary)} classes, {seconds:.2f} s"
        if ensemble and not hasattr(model, "clip_ensemble"):
            note += f"; {type(model).__name__} has no CLIP ensemble (CEL's), so that toggle does nothing"
        return Segmentation(
            overlay=overlay_with_legend(rgb, painted, vocabulary),
            legend=_legend(label, vocabulary, unseen, shown),
            label_png=self._save_label(label, len(vocabulary), image_path),
            note=note,
        )

    def _save_label(self, label: np.ndarray, num_classes: int, image_path: str) -> Path:
        path = self.output_dir / f"{Path(image_path).stem}_label_{next(self._count)}.png"
        Image.fromarray(label.astype(np.uint16 if num_classes > 255 else np.uint8)).save(path)
        return path
