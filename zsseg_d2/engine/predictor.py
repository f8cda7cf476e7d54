"""Open-vocabulary inference on single images: any class names, one trained checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import transforms as T
from detectron2.modeling import build_model

from .checkpoint import load_trained_weights


class VocabularyPredictor:
    """Builds the model of ``cfg``, loads ``MODEL.WEIGHTS`` strictly (text settings checked),
    segments with a vocabulary.

    Only ``vocabulary`` is encoded (here, so that a bad name fails at once), never the training or
    the config's evaluation vocabulary; only the label map is computed (eq. 4 in chunks of classes
    and queries, no dense C x H x W scores)."""

    def __init__(self, cfg: CfgNode, vocabulary: Sequence[str]):
        self.model = build_model(cfg).eval()
        load_trained_weights(
            self.model, cfg.MODEL.WEIGHTS, cfg.MODEL.SEMANTIC.ACCEPT_CHECKPOINT_MISMATCH
        )
        self.set_vocabulary(vocabulary)
        self.model.label_map_only = True
        self.resize = T.ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT

    def set_vocabulary(self, vocabulary: Sequence[str]) -> None:
        """Segment ``vocabulary`` from now on; its names are encoded here, so a bad one fails at once."""
        self.model.set_vocabulary(vocabulary)
        self.model.test_class_vectors  # noqa: B018  (encode the requested names now)

    @property
    def vocabulary(self) -> list:
        return self.model.test_vocabulary

    @torch.no_grad()
    def __call__(self, image_rgb: np.ndarray) -> np.ndarray:
        """Label map [H, W] (ids into ``vocabulary``) of an RGB uint8 image."""
        image = image_rgb if self.input_format == "RGB" else image_rgb[:, :, ::-1]
        height, width = image.shape[:2]
        resized = self.resize.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        output = self.model([{"image": tensor, "height": height, "width": width}])[0]
        label = (
            output["sem_seg_label"] if "sem_seg_label" in output else output["sem_seg"].argmax(0)
        )
        return label.cpu().numpy()
