"""Unseen pseudo labels from CLIP on mask crops (section 3.4 of Dao et al. 2023, eq. 9-10).

The pass itself (``runner.run_shard`` / ``runner.merge_shards``, used by
``tools/generate_pseudo_labels.py``) is imported from :mod:`zsseg_d2.pseudo_labels.runner`; this
package exports only the parts that the model's CLIP ensemble shares, so that importing it from
:mod:`zsseg_d2.modeling` creates no import cycle.
"""
from .crops import crop_regions, expand_boxes, mask_boxes
from .proposals import select_proposals
from .scoring import crop_class_probs, image_class_scores, labels_above

__all__ = [
    "crop_class_probs",
    "crop_regions",
    "expand_boxes",
    "image_class_scores",
    "labels_above",
    "mask_boxes",
    "select_proposals",
]
