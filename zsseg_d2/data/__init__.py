"""Data sets (registered on import), the label reader, splits, image-level labels and mappers."""

from .build import DATASET_MAPPERS, build_dataset_mapper, register_dataset_mapper
from .builtin import register_all
from .full_label_mapper import FullLabelDatasetMapper
from .image_labels import load_caption_nouns, load_pseudo_labels
from .inference_mapper import InferenceImageMapper
from .mapper import ZeroShotSemanticDatasetMapper
from .protocols import class_presence, drop_images_with_classes, training_dataset_dicts
from .sem_seg_io import load_sem_seg
from .spec_files import register_spec_file, register_spec_files, register_specs_from_env
from .splits import seen_class_ids, unseen_class_ids
from .vocabulary import class_name_aliases, training_vocabulary

register_all()
register_specs_from_env()

__all__ = [
    "DATASET_MAPPERS",
    "FullLabelDatasetMapper",
    "InferenceImageMapper",
    "ZeroShotSemanticDatasetMapper",
    "build_dataset_mapper",
    "class_name_aliases",
    "class_presence",
    "drop_images_with_classes",
    "load_caption_nouns",
    "load_pseudo_labels",
    "load_sem_seg",
    "register_dataset_mapper",
    "register_spec_file",
    "register_spec_files",
    "seen_class_ids",
    "training_dataset_dicts",
    "training_vocabulary",
    "unseen_class_ids",
]
