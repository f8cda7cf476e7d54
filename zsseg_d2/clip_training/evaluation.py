"""Zero-shot crop classification of a CLIP model: accuracy on class boxes, seen and unseen apart."""

from __future__ import annotations

import torch

from ..modeling.clip.scoring import crop_class_probs
from .regions import RegionSet


@torch.no_grad()
def encode_crops(
    model: torch.nn.Module, crops: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Unit-norm image embeddings ``[N, D]`` of CLIP-normalised crops."""
    model.eval()
    return torch.cat(
        [
            model.encode_image(crops[i : i + batch_size], normalize=True)
            for i in range(0, len(crops), batch_size)
        ]
    )


def crop_accuracy(
    image_embeds: torch.Tensor, regions: RegionSet, text_embeds: torch.Tensor
) -> dict[str, float]:
    """Top-1 accuracy (%) of crops classified by the nearest class text (eq. 9's argmax).

    ``seen`` / ``unseen``: crops of seen / unseen classes classified among all classes (GZS3);
    ``unseen_among_unseen``: unseen crops among the unseen classes only, as the pseudo-label pass
    scores them (eq. 9); each with its chance level ``chance_all`` / ``chance_unseen``.
    """
    probs = crop_class_probs(image_embeds, text_embeds, 1.0)
    predicted = probs.argmax(dim=1)
    unseen_ids = torch.tensor(regions.unseen_ids, dtype=torch.long)
    is_unseen = torch.isin(regions.labels, unseen_ids)
    result = {"crops": float(len(regions)), "chance_all": 100.0 / len(regions.class_names)}
    result["seen"] = _percent(predicted[~is_unseen] == regions.labels[~is_unseen])
    result["unseen"] = _percent(predicted[is_unseen] == regions.labels[is_unseen])
    if len(unseen_ids):
        among = unseen_ids[probs[is_unseen][:, unseen_ids].argmax(dim=1)]
        result["unseen_among_unseen"] = _percent(among == regions.labels[is_unseen])
        result["chance_unseen"] = 100.0 / len(unseen_ids)
    return result


def _percent(correct: torch.Tensor) -> float:
    return round(100.0 * correct.float().mean().item(), 2) if len(correct) else float("nan")
