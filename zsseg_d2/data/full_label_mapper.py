"""Training mapper that keeps unseen-class pixels: ZS3Net's protocol (Bucher et al. 2019).

ZS3Net's classifier retraining puts generated unseen-class features where the ground truth has
unseen pixels, so its training mapper must keep those labels. This leaks where unseen objects are
(not what they look like) into training; configs/zs3net/README.md discusses it.
Select it with ``INPUT.DATASET_MAPPER_NAME "zs_full_label"``.
"""

from __future__ import annotations

from .build import register_dataset_mapper
from .mapper import ZeroShotSemanticDatasetMapper
from .splits import unseen_class_ids


@register_dataset_mapper("zs_full_label")
class FullLabelDatasetMapper(ZeroShotSemanticDatasetMapper):
    """As :class:`ZeroShotSemanticDatasetMapper`, but ``"sem_seg"`` (and ``"instances"``) keep the
    unseen classes, as training-vocabulary ids."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        unseen = unseen_class_ids(self.metadata)
        self._seen_lut[unseen] = self._class_to_vocab[unseen]
