"""GZS3 and open-vocabulary evaluators, metrics and result tables."""

from .gzs3_evaluator import GZS3Evaluator, build_evaluator
from .metrics import confusion_matrix, harmonic_iou, segmentation_metrics, split_metrics
from .tables import TRANSFER_SETS, format_gzs3_table, format_split_table, format_transfer_table
from .vocabulary_match import dataset_ids_of, evaluation_vocabulary

__all__ = [
    "GZS3Evaluator",
    "TRANSFER_SETS",
    "build_evaluator",
    "confusion_matrix",
    "dataset_ids_of",
    "evaluation_vocabulary",
    "format_gzs3_table",
    "format_split_table",
    "format_transfer_table",
    "harmonic_iou",
    "segmentation_metrics",
    "split_metrics",
]
