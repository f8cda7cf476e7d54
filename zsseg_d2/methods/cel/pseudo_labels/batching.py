"""Crops of many images through CLIP in full batches, and each image's eq. 10 scores.

Crops are queued as images arrive; CLIP encodes ``batch_size`` of them at a time, whatever images
they come from, and an image is complete once all of its crops are scored. The last, partial
batch is padded to full size, so the encoder always runs on batches of the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ....modeling.clip import ClipCropClassifier
from ....modeling.clip.scoring import image_class_scores


@dataclass
class _PendingImage:
    item: Any
    remaining: int
    scores: torch.Tensor


class CropBatcher:
    """Queue of crops across images -> per-image max over crops of eq. 9's probabilities."""

    def __init__(self, classifier: ClipCropClassifier, text_embeddings: torch.Tensor):
        self.classifier = classifier
        self.text_embeddings = text_embeddings.to(classifier.device)
        self.batch_size = classifier.batch_size
        self._crops: list[torch.Tensor] = []
        self._owners: list[torch.Tensor] = []
        self._queued = 0
        self._images: dict[int, _PendingImage] = {}
        self._next_slot = 0
        self.crops_encoded = 0

    def add(self, item: Any, crops: torch.Tensor) -> None:
        """Queue the crops ``[K, 3, h, w]`` of one image (``item`` is returned with its scores)."""
        slot = self._next_slot
        self._next_slot += 1
        self._images[slot] = _PendingImage(
            item, len(crops), self.text_embeddings.new_zeros(len(self.text_embeddings))
        )
        if len(crops):
            self._crops.append(crops)
            self._owners.append(torch.full((len(crops),), slot, dtype=torch.long))
            self._queued += len(crops)

    def completed(self, flush: bool = False) -> list[tuple[Any, torch.Tensor]]:
        """Encode every full batch (and, with ``flush``, the rest); return the images completed
        since the last call as ``(item, scores [U])``."""
        while self._queued >= self.batch_size:
            self._encode(self.batch_size)
        if flush and self._queued:
            self._encode(self._queued)
        done = [slot for slot, image in self._images.items() if image.remaining == 0]
        return [(image.item, image.scores) for image in (self._images.pop(slot) for slot in done)]

    def _encode(self, count: int) -> None:
        crops, owners = torch.cat(self._crops), torch.cat(self._owners)
        self._crops, self._owners = [crops[count:]], [owners[count:]]
        self._queued -= count
        batch = crops[:count]
        if count < self.batch_size:
            batch = torch.cat([batch, batch.new_zeros((self.batch_size - count, *batch.shape[1:]))])
        probs = self.classifier.class_probs(
            self.classifier.encode(batch)[:count], self.text_embeddings
        )
        slots, local = owners[:count].unique(return_inverse=True)
        batch_scores = image_class_scores(probs, local, len(slots))
        counts = local.bincount(minlength=len(slots)).tolist()
        for slot, scores, count_in_batch in zip(slots.tolist(), batch_scores, counts):
            image = self._images[slot]
            image.scores = torch.maximum(image.scores, scores)
            image.remaining -= count_in_batch
        self.crops_encoded += count
