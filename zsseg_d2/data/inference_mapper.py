"""The evaluation (inference) mapper: images only, resized as Detectron2's test mapper does.

Detectron2's ``DatasetMapper`` also decodes each label file (as 8-bit, which clips the 16-bit labels
of PC-459 and A-847); the evaluator reads labels itself at full resolution, so here they are not read.
"""

from __future__ import annotations

import numpy as np
import torch
from detectron2.config import CfgNode, configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from .sem_seg_io import read_image


class InferenceImageMapper:
    """Dataset dict -> the dict plus ``image`` [3, h, w] uint8: shortest edge ``INPUT.MIN_SIZE_TEST``,
    longest at most ``INPUT.MAX_SIZE_TEST``; ``height``/``width`` stay the original size."""

    @configurable
    def __init__(self, *, resize: T.ResizeShortestEdge, image_format: str):
        self.resize = resize
        self.image_format = image_format

    @classmethod
    def from_config(cls, cfg: CfgNode) -> dict:
        return {
            "resize": T.ResizeShortestEdge(
                cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, "choice"
            ),
            "image_format": cfg.INPUT.FORMAT,
        }

    def __call__(self, dataset_dict: dict) -> dict:
        image = read_image(dataset_dict["file_name"], self.image_format)
        utils.check_image_size(dataset_dict, image)
        resized = self.resize.get_transform(image).apply_image(image)
        return {
            **dataset_dict,
            "image": torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1))),
        }
