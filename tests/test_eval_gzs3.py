"""GZS3Evaluator and its metrics: hand-computed numbers, CamVid identities, errors, tables."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.data import load_sem_seg
from zsseg_d2.evaluation import (
    GZS3Evaluator,
    build_evaluator,
    confusion_matrix,
    format_gzs3_table,
    format_transfer_table,
    harmonic_iou,
    segmentation_metrics,
)

ROAD, CAR = 3, 8  # CamVid ids


def test_confusion_and_metrics_by_hand():
    gt = np.array([0, 0, 0, 1, 1, 2, 2, 255], np.uint8)
    pred = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    conf = confusion_matrix(gt, pred, 3, 255)
    # rows = gt: gt0 -> pred 0,0,1; gt1 -> 1,2; gt2 -> 2,0; the 255 pixel is dropped
    assert conf.tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 1]]
    m = segmentation_metrics(conf, ["a", "b", "c"], unseen_ids=[2])
    # IoU = tp / (row + col - tp): a 2/(3+3-2) = 1/2, b 1/(2+2-1) = 1/3, c 1/(2+2-1) = 1/3
    assert m["IoU-a"] == pytest.approx(50) and m["IoU-b"] == pytest.approx(100 / 3)
    assert m["mIoU"] == pytest.approx(100 * 7 / 18)  # (1/2 + 1/3 + 1/3) / 3
    assert m["mIoU(S)"] == pytest.approx(100 * 5 / 12)  # (1/2 + 1/3) / 2
    assert m["mIoU(U)"] == pytest.approx(100 / 3)
    assert m["hIoU"] == pytest.approx(100 * 10 / 27)  # 2 * 5/12 * 1/3 / (5/12 + 1/3)
    assert m["pACC"] == pytest.approx(100 * 4 / 7)  # 4 correct of 7 labelled pixels
    assert m["mACC"] == pytest.approx(100 * 5 / 9)  # (2/3 + 1/2 + 1/2) / 3


def test_class_absent_from_gt_left_out():
    gt = np.array([0, 0, 1, 1], np.uint8)
    pred = np.array([0, 2, 1, 1])  # class 2 predicted once but never in the ground truth
    m = segmentation_metrics(confusion_matrix(gt, pred, 3, 255), ["a", "b", "c"])
    assert math.isnan(m["IoU-c"])
    assert m["mIoU"] == pytest.approx(100 * (1 / 2 + 1) / 2)  # a: 1/(2+1-1), b: 2/2
    assert "hIoU" not in m and "mIoU(U)" not in m  # no split: no GZS3 numbers


def test_hiou_zero_not_nan():
    gt = np.array([0, 1, 2], np.uint8)
    pred = np.array([0, 1, 0])  # the unseen class never right
    m = segmentation_metrics(confusion_matrix(gt, pred, 3, 255), ["a", "b", "c"], unseen_ids=[2])
    assert m["mIoU(U)"] == 0 and m["hIoU"] == 0
    assert harmonic_iou(50.0, float("nan")) == 0 and harmonic_iou(0.0, 0.0) == 0


def _camvid_predictions(corrupt: bool):
    """Ground truth as prediction (void pixels -> 0); with ``corrupt`` every car pixel -> road."""
    meta = MetadataCatalog.get("camvid_val")
    inputs, outputs, counts = [], [], np.zeros(12, np.int64)
    for d in DatasetCatalog.get("camvid_val"):
        gt = load_sem_seg(d["sem_seg_file_name"], meta).astype(np.int64)
        counts += np.bincount(np.where(gt == 255, 11, gt).ravel(), minlength=12)
        pred = np.where(gt == 255, 0, gt)
        if corrupt:
            pred[pred == CAR] = ROAD
        inputs.append({"file_name": d["file_name"]})  # the test mapper drops sem_seg_file_name
        outputs.append({"sem_seg_label": torch.from_numpy(pred)})
    return inputs, outputs, counts


def _evaluate(inputs, outputs, dataset="camvid_val", **kwargs):
    evaluator = GZS3Evaluator(dataset, **kwargs)
    evaluator.reset()
    for i in range(0, len(inputs), 4):
        evaluator.process(inputs[i : i + 4], outputs[i : i + 4])
    return evaluator.evaluate()["sem_seg"]


def test_camvid_ground_truth_against_itself_is_100(shared_data):
    m = _evaluate(*_camvid_predictions(corrupt=False)[:2])
    for key in ("mIoU", "mIoU(S)", "mIoU(U)", "hIoU", "pACC", "mACC", "IoU-car"):
        assert m[key] == pytest.approx(100), key


def test_camvid_car_relabelled_road(shared_data):
    """All car pixels predicted as road: car IoU 0; road IoU = N_road / (N_road + N_car) (its
    predicted area grows by the car pixels); every other class (all present in CamVid val) 100."""
    inputs, outputs, counts = _camvid_predictions(corrupt=True)
    n_road, n_car, n_labelled = counts[ROAD], counts[CAR], counts[:11].sum()
    road_iou = 100 * n_road / (n_road + n_car)
    seen = (7 * 100 + road_iou) / 8  # seen: sky building pole road pavement sign fence pedestrian
    unseen = (100 + 0 + 100) / 3  # unseen: tree, car, bicyclist
    m = _evaluate(inputs, outputs)
    assert m["IoU-car"] == 0 and m["IoU-road"] == pytest.approx(road_iou)
    assert m["mIoU"] == pytest.approx((9 * 100 + road_iou) / 11)
    assert m["mIoU(S)"] == pytest.approx(seen) and m["mIoU(U)"] == pytest.approx(unseen)
    assert m["hIoU"] == pytest.approx(2 * seen * unseen / (seen + unseen))
    assert m["pACC"] == pytest.approx(100 * (n_labelled - n_car) / n_labelled)
    assert 90 < m["IoU-road"] < 100  # the corruption is visible: cars are ~1.7% of the pixels


def test_dense_scores_match_labels(shared_data):
    inputs, outputs, _ = _camvid_predictions(corrupt=True)
    inputs, outputs = inputs[:3], outputs[:3]
    dense = [{"sem_seg": torch.nn.functional.one_hot(o["sem_seg_label"], 11).permute(2, 0, 1).float()} for o in outputs]
    assert _evaluate(inputs, dense) == _evaluate(inputs, outputs)


def test_bad_predictions_named(shared_data):
    inputs, outputs, _ = _camvid_predictions(corrupt=False)
    evaluator = GZS3Evaluator("camvid_val")
    with pytest.raises(ValueError, match="outside the 11 classes"):
        evaluator.process(inputs[:1], [{"sem_seg_label": outputs[0]["sem_seg_label"] + 11}])
    with pytest.raises(ValueError, match="360, 480"):
        evaluator.process(inputs[:1], [{"sem_seg_label": outputs[0]["sem_seg_label"][:100]}])


def test_build_evaluator_writes_results(shared_data, tmp_path):
    cfg = get_cfg()
    add_zsseg_config(cfg)
    evaluator = build_evaluator(cfg, "camvid_val", output_folder=str(tmp_path))
    inputs, outputs, _ = _camvid_predictions(corrupt=False)
    evaluator.process(inputs[:2], outputs[:2])
    results = evaluator.evaluate()
    saved = json.loads((tmp_path / "gzs3_metrics.json").read_text())
    assert saved["hIoU"] == results["sem_seg"]["hIoU"] == pytest.approx(100)
    assert np.load(tmp_path / "confusion_matrix.npy").sum() > 0


def test_tables():
    gzs3 = format_gzs3_table({"coco": {"sem_seg": {"mIoU(S)": 39.34, "mIoU(U)": 43.8, "hIoU": 41.45, "mIoU": 40.0, "pACC": 70.0}},
                              "voc20_val": {"mIoU": 93.1}})  # fmt: skip
    lines = gzs3.splitlines()
    assert lines[0].split() == ["dataset", "|", "mIoU(S)", "|", "mIoU(U)", "|", "hIoU", "|", "mIoU", "|", "pACC"]
    assert "39.3" in lines[2] and "41.5" in lines[2]
    assert lines[3].split("|")[1].strip() == "-" and "93.1" in lines[3]
    transfer = format_transfer_table({"voc20_val": {"mIoU": 93.14}, "ade20k_847_val": {"mIoU": 7.05}})
    header, _, row = transfer.splitlines()
    assert header.split() == ["model", "|", "A-847", "|", "VOC-20"]  # paper's column order
    assert row.split() == ["mIoU", "|", "7.0", "|", "93.1"]
