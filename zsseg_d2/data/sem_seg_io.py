"""The one label reader: raw label files -> contiguous class ids, ignore = ``ignore_label``;
and the image reader, whose errors name the file.

Images with 16 bits per pixel (mode ``I;16``) are scaled to 8 bits, never clipped, by the bit depth
of their samples read from the data: a 12-bit image stored in a 16-bit file (values 0..4095) is
scaled by 255/4095, not 255/65535 (:func:`stored_bit_depth`). 16-bit colour files, whose high bytes
alone PIL would keep, are read with OpenCV and scaled the same way. 32-bit integer or float images
are read only when their values already fit 0..255, else rejected.

How raw values map to contiguous ids is described by three metadata fields:

- ``label_offset``: contiguous id = raw value - offset (VOC: 1, since raw 1..20 are the classes);
- ``raw_ignore_ids``: raw values read as ignore besides ``ignore_label`` itself
  (VOC: [0], background is ignored in GZS3; CamVid: [11], void);
- ``ignore_label``: 255, or 65535 for data sets with more than 255 classes (PC-459, A-847),
  whose label files are 16-bit PNGs.
"""

from __future__ import annotations

import functools
import os
from typing import Union

import cv2
import numpy as np
from detectron2.data import Metadata
from detectron2.data import detection_utils as utils
from PIL import Image, ImageOps

PathLike = Union[str, os.PathLike]

_LABEL_MODES = ("L", "P", "I;16", "I")
_SAMPLE_BITS = (8, 10, 12, 14, 16)
_EXIF_ORIENTATION = 0x0112


def stored_bit_depth(max_value: int) -> int:
    """The bit depth a 16-bit image's samples were taken with, read from its largest value: the
    smallest of 8, 10, 12, 14 and 16 bits that holds it (sensors store 10-, 12- or 14-bit samples
    in 16-bit files unscaled; PNG gives no reliable record of it)."""
    return next(bits for bits in _SAMPLE_BITS if max_value < 1 << bits)


def _to_eight_bits(values: np.ndarray) -> np.ndarray:
    """16-bit samples of b significant bits (:func:`stored_bit_depth`) scaled by 255 / (2^b - 1),
    rounded."""
    top = (1 << stored_bit_depth(int(values.max(initial=0)))) - 1
    return ((values.astype(np.uint32) * 255 + top // 2) // top).astype(np.uint8)


def _is_16_bit_colour(image: Image.Image) -> bool:
    """A colour image stored with 16 bits per channel, which PIL decodes to its high bytes."""
    return image.mode in ("RGB", "RGBA") and any(";16" in str(tile.args) for tile in image.tile)


def _colour_from_16_bits(image: Image.Image, path: PathLike) -> Image.Image:
    """The RGB image of a 16-bit colour file, read with all its bits (OpenCV), EXIF kept."""
    values = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if values is None or values.dtype != np.uint16 or values.ndim != 3:
        raise OSError(f"cannot read the 16-bit colour samples of {path}")
    converted = Image.fromarray(_to_eight_bits(values[..., [2, 1, 0]]), mode="RGB")
    orientation = image.getexif().get(_EXIF_ORIENTATION)
    if orientation:
        converted.getexif()[_EXIF_ORIENTATION] = orientation
    return converted


def _eight_bit(image: Image.Image, path: PathLike) -> Image.Image:
    """``image`` with 8 bits per channel (16-bit grey values scaled by :func:`_to_eight_bits`)."""
    if image.mode.startswith("I;16"):
        return Image.fromarray(_to_eight_bits(np.asarray(image)), mode="L")
    if image.mode in ("I", "F"):
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 255):
            raise ValueError(
                f"image file {path} has mode {image.mode} with values {values.min()}..{values.max()}, which "
                f"have no sure 8-bit reading; convert it to 8 or 16 bits per channel first"
            )
        return Image.fromarray(values.astype(np.uint8), mode="L")
    return image


def read_image(path: PathLike, image_format: str) -> np.ndarray:
    """Detectron2's ``read_image`` (EXIF-rotated, ``image_format`` channels) that scales 16-bit
    images by their bit depth instead of clipping them or keeping their high bytes, with an error
    that names an undecodable file and what to do."""
    try:
        with Image.open(path) as image:
            if _is_16_bit_colour(image):
                image = _colour_from_16_bits(image, path)
            image = ImageOps.exif_transpose(image)
            return utils.convert_PIL_to_numpy(_eight_bit(image, path), image_format)
    except (OSError, SyntaxError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise OSError(
            f"cannot decode image file {path} (truncated or corrupt?): {err}. Download or prepare it "
            f"again (datasets/README.md), or remove it from the data set"
        ) from err


def read_label_png(path: PathLike) -> np.ndarray:
    """Raw values of a one-channel (8/16-bit or palette) label PNG, as stored in the file."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode not in _LABEL_MODES:
                raise ValueError(
                    f"label file {path} has image mode {img.mode}; expected a one-channel label "
                    f"PNG (modes {_LABEL_MODES}) holding class ids"
                )
            raw = np.asarray(img)
    except (OSError, SyntaxError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise OSError(f"cannot decode label file {path} (truncated or corrupt?): {err}") from err
    if raw.dtype == np.int32:
        if raw.size and raw.min() < 0:
            raise ValueError(f"label file {path} holds negative value {raw.min()}")
        raw = raw.astype(np.int64)
    return raw


@functools.lru_cache(maxsize=32)
def _label_lut(
    num_classes: int, offset: int, raw_ignore_ids: tuple[int, ...], ignore_label: int
) -> tuple[np.ndarray, np.ndarray]:
    """(lut, valid): contiguous id of every raw value < 65536, and which raw values are legal."""
    dtype = np.uint8 if ignore_label <= 255 else np.int64
    raw = np.arange(65536)
    contiguous = raw - offset
    in_range = (contiguous >= 0) & (contiguous < num_classes)
    ignored = np.isin(raw, (ignore_label,) + raw_ignore_ids)
    lut = np.where(in_range & ~ignored, contiguous, ignore_label).astype(dtype)
    return lut, in_range | ignored


def _invalid_values(raw: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The raw values present in ``raw`` that ``valid`` does not allow (usually none)."""
    if raw.size == 0:
        return np.zeros(0, dtype=np.int64)
    top = int(raw.max())
    if top < len(valid) and valid[: top + 1].all():  # fast path: every value up to the max is legal
        return np.zeros(0, dtype=np.int64)
    present = np.flatnonzero(np.bincount(raw.ravel()))
    return present[(present >= len(valid)) | ~valid[np.minimum(present, len(valid) - 1)]]


def load_sem_seg(path: PathLike, metadata: Metadata) -> np.ndarray:
    """Read a label file of data set ``metadata`` as contiguous ids (H x W).

    Returns uint8 (ignore 255) for data sets with at most 255 classes, else int64 (ignore 65535).
    Raises ``ValueError`` naming the file and the value for a raw value that is neither a class
    nor ignored, and ``OSError`` naming the file when it cannot be decoded.
    """
    raw = read_label_png(path)
    lut, valid = _label_lut(
        len(metadata.stuff_classes),
        int(metadata.label_offset),
        tuple(int(v) for v in metadata.raw_ignore_ids),
        int(metadata.ignore_label),
    )
    bad = _invalid_values(raw, valid)
    if bad.size:
        offset = int(metadata.label_offset)
        below = bad[bad < offset].tolist()
        hint = (
            f". Raw values below label_offset {offset} are no class: list them in ignore_ids "
            f"(e.g. ignore_ids: {below} when they mark background or void)"
            if below
            else ""
        )
        raise ValueError(
            f"label file {path} holds value {int(bad[0])}, outside data set '{metadata.name}' "
            f"({len(metadata.stuff_classes)} classes, raw ids {offset}.."
            f"{offset + len(metadata.stuff_classes) - 1}, ignore "
            f"{[metadata.ignore_label, *metadata.raw_ignore_ids]}); all bad values: {bad.tolist()}"
            + hint
        )
    return np.take(lut, raw)
