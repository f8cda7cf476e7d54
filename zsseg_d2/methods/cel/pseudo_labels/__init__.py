"""Unseen pseudo labels from CLIP on mask crops (section 3.4 of Dao et al. 2023, eq. 9-10).

The pass (``runner.run_shard`` / ``runner.merge_shards``) is used by
``tools/generate_pseudo_labels.py``. Crops, scoring and the crop classifier it shares with the CLIP
ensemble live in :mod:`zsseg_d2.modeling.clip`.
"""

from .proposals import select_proposals

__all__ = ["select_proposals"]
