"""Training / test augmentations in Mask2Former's semantic style, and an SSD-style colour jitter."""

from __future__ import annotations

import functools

import cv2
import numpy as np
from detectron2.config import CfgNode
from detectron2.data import transforms as T


def _ssd_distort(
    image: np.ndarray,
    brightness: float,
    contrast: float,
    contrast_last: bool,
    saturation: float,
    hue: int,
    img_format: str,
) -> np.ndarray:
    """Brightness shift, contrast scale (before or after the HSV step), saturation scale and hue
    shift of a uint8 HxWx3 image; a factor of 1 / a shift of 0 leaves that step out."""
    out = image.astype(np.float32) + brightness
    if not contrast_last:
        out *= contrast
    if saturation != 1.0 or hue != 0:
        to_hsv, from_hsv = (
            (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)
            if img_format == "RGB"
            else (cv2.COLOR_BGR2HSV, cv2.COLOR_HSV2BGR)
        )
        hsv = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), to_hsv).astype(np.int32)
        hsv[..., 0] = (hsv[..., 0] + hue) % 180  # OpenCV hue range is [0, 180)
        hsv[..., 1] = np.clip(hsv[..., 1] * saturation, 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), from_hsv).astype(np.float32)
    if contrast_last:
        out *= contrast
    return np.clip(out, 0, 255).astype(np.uint8)


class ColorAugSSD(T.Augmentation):
    """SSD-style photometric distortion: each of brightness (+-delta), contrast, saturation and
    hue (+-delta, OpenCV hue units) is applied with probability 1/2; contrast goes before or after
    the HSV step at random. Only for 3-channel RGB/BGR images."""

    def __init__(
        self,
        img_format: str,
        brightness_delta: float = 32.0,
        contrast_range: tuple[float, float] = (0.5, 1.5),
        saturation_range: tuple[float, float] = (0.5, 1.5),
        hue_delta: int = 18,
    ):
        super().__init__()
        if img_format not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.COLOR_AUG_SSD needs INPUT.FORMAT RGB or BGR, got {img_format}")
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> T.Transform:
        def maybe(draw, identity):
            return draw() if np.random.rand() < 0.5 else identity

        op = functools.partial(
            _ssd_distort,
            brightness=maybe(
                lambda: np.random.uniform(-self.brightness_delta, self.brightness_delta), 0.0
            ),
            contrast=maybe(lambda: np.random.uniform(*self.contrast_range), 1.0),
            contrast_last=bool(np.random.rand() < 0.5),
            saturation=maybe(lambda: np.random.uniform(*self.saturation_range), 1.0),
            hue=maybe(lambda: int(np.random.randint(-self.hue_delta, self.hue_delta + 1)), 0),
            img_format=self.img_format,
        )
        return T.ColorTransform(op)


class RandomGaussianBlur(T.Augmentation):
    """With probability ``prob``, a Gaussian blur of the image (not the label) whose standard
    deviation is drawn uniformly in [0, ``max_sigma``) pixels."""

    def __init__(self, prob: float = 0.5, max_sigma: float = 1.0):
        super().__init__()
        if not 0.0 <= prob <= 1.0 or max_sigma <= 0:
            raise ValueError(
                f"INPUT.GAUSSIAN_BLUR needs PROB in [0, 1] and MAX_SIGMA > 0, got {prob}, {max_sigma}"
            )
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> T.Transform:
        if np.random.rand() >= self.prob:
            return T.NoOpTransform()
        sigma = float(np.random.uniform(0.0, self.max_sigma))
        if sigma == 0.0:
            return T.NoOpTransform()
        return T.ColorTransform(functools.partial(cv2.GaussianBlur, ksize=(0, 0), sigmaX=sigma))


def build_augmentations(cfg: CfgNode, is_train: bool, ignore_label: int) -> list[T.Augmentation]:
    """Training: resize shortest edge (INPUT.MIN_SIZE_TRAIN, sampled by
    INPUT.MIN_SIZE_TRAIN_SAMPLING), crop with at most INPUT.CROP.SINGLE_CATEGORY_MAX_AREA of one
    class (INPUT.CROP.ENABLED), colour jitter (INPUT.COLOR_AUG_SSD), horizontal flip.
    Test: resize shortest edge to INPUT.MIN_SIZE_TEST."""
    if not is_train:
        return [T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)]
    augs = [
        T.ResizeShortestEdge(
            cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING
        )
    ]
    if cfg.INPUT.CROP.ENABLED:
        augs.append(
            T.RandomCrop_CategoryAreaConstraint(
                cfg.INPUT.CROP.TYPE,
                cfg.INPUT.CROP.SIZE,
                cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA,
                ignore_label,
            )
        )
    if cfg.INPUT.COLOR_AUG_SSD:
        augs.append(ColorAugSSD(cfg.INPUT.FORMAT))
    blur = cfg.INPUT.GAUSSIAN_BLUR
    if blur.ENABLED:
        augs.append(RandomGaussianBlur(blur.PROB, blur.MAX_SIGMA))
    augs.append(T.RandomFlip())
    return augs
