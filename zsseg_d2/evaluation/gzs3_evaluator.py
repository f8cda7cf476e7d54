"""GZS3 / open-vocabulary semantic-segmentation evaluator (Detectron2 ``DatasetEvaluator``)."""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from detectron2.config import CfgNode
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from ..data.sem_seg_io import load_sem_seg
from ..data.splits import unseen_class_ids
from ..utils.file_io import atomic_write
from .metrics import LABEL_SPACES, confusion_matrix, segmentation_metrics
from .tables import format_gzs3_table, format_split_table
from .vocabulary_match import dataset_ids_of, evaluation_vocabulary

logger = logging.getLogger(__name__)


class GZS3Evaluator(DatasetEvaluator):
    """Accumulates one confusion matrix over a data set and reports, in %, mIoU, fwIoU, mACC, pACC
    over all classes, over the seen "(S)" and unseen "(U)" classes of the metadata split, hIoU and
    per-class IoU, by Detectron2's rules (see :mod:`zsseg_d2.evaluation.metrics`): a class
    predicted but absent from the ground truth counts 0 in mIoU; hIoU is 0 when mIoU(S) or mIoU(U)
    is 0 or undefined.

    ``label_space`` "all" (GZS3): predictions are read from ``output["sem_seg_label"]`` (H x W class
    ids) when present, else as the argmax of ``output["sem_seg"]`` (C x H x W scores).
    "unseen" (ZLSS): the argmax over the unseen classes' channels of ``output["sem_seg"]``, scored on
    the pixels whose ground truth is unseen (seen split and hIoU not reported).
    Predictions are at the label's resolution. Their ids index ``vocabulary``, the names the model
    predicted (default: the data set's ``stuff_classes``), which is matched to the data set's
    classes by name in any order (:mod:`~zsseg_d2.evaluation.vocabulary_match`; a missing or
    extra name is an error at construction). Only the matrix is kept between images. Across
    processes the matrices are summed on the main process (which alone returns results).
    """

    def __init__(
        self,
        dataset_name: str,
        distributed: bool = True,
        output_dir: str | None = None,
        label_space: str = "all",
        vocabulary: Sequence[str] | None = None,
    ):
        self.dataset_name = dataset_name
        self.metadata = MetadataCatalog.get(dataset_name)
        self.class_names = list(self.metadata.stuff_classes)
        self.num_classes = len(self.class_names)
        self.ignore_label = int(self.metadata.ignore_label)
        self.unseen_ids = unseen_class_ids(self.metadata)
        self.label_space = _checked_label_space(label_space, dataset_name, self.unseen_ids)
        vocabulary = self.class_names if vocabulary is None else list(vocabulary)
        # predicted id -> data-set class id, and data-set class id -> score channel
        self._dataset_id = dataset_ids_of(vocabulary, dataset_name, "the evaluation vocabulary")
        self._channel = np.argsort(self._dataset_id)
        self._distributed = distributed
        self._output_dir = output_dir
        self._gt_files = {
            d["file_name"]: d["sem_seg_file_name"] for d in DatasetCatalog.get(dataset_name)
        }
        self.reset()

    def reset(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def process(self, inputs: list[dict], outputs: list[dict]) -> None:
        for inp, out in zip(inputs, outputs):
            gt_file = inp.get("sem_seg_file_name") or self._gt_files.get(inp["file_name"])
            if gt_file is None:
                raise KeyError(
                    f"{inp['file_name']} is not an image of data set '{self.dataset_name}'"
                )
            gt = load_sem_seg(gt_file, self.metadata)
            pred = self._prediction(out, gt_file)
            if self.label_space == "unseen":
                gt = np.where(np.isin(gt, self.unseen_ids), gt, self.ignore_label)
            if pred.shape != gt.shape:
                raise ValueError(
                    f"prediction for {inp['file_name']} is {tuple(pred.shape)} but its label "
                    f"{gt_file} is {gt.shape}; the model must return predictions at the input's "
                    "height/width"
                )
            self.confusion += confusion_matrix(gt, pred, self.num_classes, self.ignore_label)

    def _prediction(self, output: dict, gt_file: str) -> np.ndarray:
        if self.label_space == "unseen":
            pred = self._unseen_prediction(output, gt_file)
        elif "sem_seg_label" in output:
            pred = output["sem_seg_label"]
        else:
            pred = output["sem_seg"].argmax(dim=0)
        pred = pred.to(device="cpu", dtype=torch.int64).numpy()
        if pred.size and (pred.min() < 0 or pred.max() >= self.num_classes):
            raise ValueError(
                f"prediction for {gt_file} holds class id {int(pred.min())}..{int(pred.max())}, "
                f"outside the {self.num_classes} classes of the evaluation vocabulary of "
                f"'{self.dataset_name}': the model must predict ids into the vocabulary set by "
                "set_vocabulary"
            )
        return self._dataset_id[pred]

    def _unseen_prediction(self, output: dict, gt_file: str) -> torch.Tensor:
        scores = output.get("sem_seg")
        if scores is None or scores.shape[0] != self.num_classes:
            raise ValueError(
                f"TEST.LABEL_SPACE 'unseen' needs the dense 'sem_seg' scores [{self.num_classes}, H, W] "
                f"of every class for {gt_file}; the model returned "
                f"{'none' if scores is None else tuple(scores.shape)} (raise "
                "the method's limit on dense scores, e.g. MODEL.CEL.TEST.MAX_DENSE_CLASSES)"
            )
        channels = torch.as_tensor(self._channel[self.unseen_ids], device=scores.device)
        return channels[scores.index_select(0, channels).argmax(dim=0)]

    def evaluate(self) -> OrderedDict[str, dict] | None:
        confusion = self.confusion
        if self._distributed and comm.get_world_size() > 1:
            comm.synchronize()
            gathered = comm.gather(self.confusion, dst=0)
            if not comm.is_main_process():
                return None
            confusion = np.sum(gathered, axis=0)
        metrics = segmentation_metrics(
            confusion, self.class_names, self.unseen_ids, self.label_space
        )
        if self._output_dir:
            with atomic_write(os.path.join(self._output_dir, "gzs3_metrics.json"), "w") as f:
                json.dump(metrics, f, indent=1)
            with atomic_write(os.path.join(self._output_dir, "confusion_matrix.npy")) as f:
                np.save(f, confusion)
        results = OrderedDict(sem_seg=metrics)
        logger.info("\n" + format_gzs3_table({self.dataset_name: results}))
        logger.info("\n" + format_split_table({self.dataset_name: results}))
        return results


def build_evaluator(
    cfg: CfgNode, dataset_name: str, output_folder: str | None = None
) -> DatasetEvaluator:
    """The evaluator of ``dataset_name`` by its metadata ``evaluator_type`` ("gzs3"); results go
    to ``output_folder`` (default: <OUTPUT_DIR>/inference/<dataset_name>). Predicted ids index
    :func:`evaluation_vocabulary`, the names :meth:`Trainer.test` gives the model."""
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type")
    if evaluator_type != "gzs3":
        raise ValueError(
            f"data set '{dataset_name}' has evaluator_type {evaluator_type!r}; zsseg_d2 evaluates "
            "'gzs3' data sets (register it through zsseg_d2.data.registration.register_sem_seg)"
        )
    output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
    return GZS3Evaluator(
        dataset_name,
        distributed=True,
        output_dir=output_folder,
        label_space=cfg.TEST.LABEL_SPACE,
        vocabulary=evaluation_vocabulary(cfg, dataset_name),
    )


def _checked_label_space(label_space: str, dataset_name: str, unseen_ids: list[int]) -> str:
    if label_space not in LABEL_SPACES:
        raise ValueError(f"TEST.LABEL_SPACE is {label_space!r}; use one of {LABEL_SPACES}")
    if label_space == "unseen" and not unseen_ids:
        raise ValueError(
            f"TEST.LABEL_SPACE 'unseen' (ZLSS) needs unseen classes, but data set '{dataset_name}' "
            "has no split (metadata unseen_classes is empty); use TEST.LABEL_SPACE 'all'"
        )
    return label_space
