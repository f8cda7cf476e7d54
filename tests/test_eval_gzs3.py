"""GZS3Evaluator and its metrics: hand-computed numbers, CamVid identities, errors, tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from zsseg_d2.config import add_zsseg_config
from zsseg_d2.data import load_sem_seg
from zsseg_d2.evaluation import (
    GZS3Evaluator,
    build_evaluator,
    confusion_matrix,
    format_gzs3_table,
    format_split_table,
    format_transfer_table,
    harmonic_iou,
    segmentation_metrics,
)

ROAD, CAR = 3, 8  # CamVid ids


# A hand-built confusion matrix (rows gt, columns prediction) over classes a, b (seen) and c, d
# (unseen); d is predicted once but absent from the ground truth.
HAND_CONF = np.array([[3, 1, 0, 0], [0, 2, 1, 1], [1, 0, 1, 0], [0, 0, 0, 0]])
HAND_NAMES = ["a", "b", "c", "d"]


def _pixels_of(conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (gt, pred) pixel pair per count of ``conf``."""
    pairs = [
        (g, p)
        for g in range(conf.shape[0])
        for p in range(conf.shape[1])
        for _ in range(conf[g, p])
    ]
    gt, pred = np.array(pairs).T
    return gt.astype(np.uint8), pred


def test_confusion_matrix_counts_pairs_and_drops_ignored():
    gt = np.array([0, 0, 0, 1, 1, 2, 2, 255], np.uint8)
    pred = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    # rows = gt: gt0 -> pred 0,0,1; gt1 -> 1,2; gt2 -> 2,0; the 255 pixel is dropped
    assert confusion_matrix(gt, pred, 3, 255).tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert confusion_matrix(*_pixels_of(HAND_CONF), 4, 255).tolist() == HAND_CONF.tolist()


def test_metrics_by_hand_with_a_class_predicted_but_absent():
    m = segmentation_metrics(HAND_CONF, HAND_NAMES, unseen_ids=[2, 3])
    # t = (4, 4, 2, 0), p = (4, 3, 2, 1); IoU a = 3/(4+4-3) = 3/5, b = 2/(4+3-2) = 2/5, c = 1/3
    assert [m[f"IoU-{c}"] for c in "abc"] == pytest.approx([60, 40, 100 / 3]) and math.isnan(
        m["IoU-d"]
    )
    # d has predictions: it counts 0 in mIoU (Detectron2's rule; gt-present only would give 44.4)
    assert m["mIoU"] == pytest.approx(100 / 3)  # (3/5 + 2/5 + 1/3) / 4
    assert m["fwIoU"] == pytest.approx(100 * 7 / 15)  # (4 * 3/5 + 4 * 2/5 + 2 * 1/3) / 10
    assert m["mACC"] == pytest.approx(100 * 7 / 12)  # (3/4 + 2/4 + 1/2) / 3, d has no gt
    assert m["pACC"] == pytest.approx(60)  # 6 of 10
    assert m["mIoU(S)"] == pytest.approx(50)  # (3/5 + 2/5) / 2
    assert m["fwIoU(S)"] == pytest.approx(50)  # (4 * 3/5 + 4 * 2/5) / 8
    assert m["mACC(S)"] == pytest.approx(62.5)  # (3/4 + 2/4) / 2
    assert m["pACC(S)"] == pytest.approx(62.5)  # 5 of the 8 seen pixels (b -> c, d counts wrong)
    assert m["mIoU(U)"] == pytest.approx(100 / 6)  # (1/3 + 0) / 2
    assert m["fwIoU(U)"] == pytest.approx(100 / 3)  # 2 * 1/3 / 2
    assert m["mACC(U)"] == m["pACC(U)"] == pytest.approx(50)
    assert m["hIoU"] == pytest.approx(25)  # 2 * 1/2 * 1/6 / (1/2 + 1/6)


def test_no_split_no_gzs3_numbers_and_zlss_drops_the_seen_split():
    m = segmentation_metrics(HAND_CONF, HAND_NAMES)
    assert "hIoU" not in m and "mIoU(U)" not in m and m["mIoU"] == pytest.approx(100 / 3)
    zlss = segmentation_metrics(
        np.array([[1, 1], [0, 0]]), ["c", "d"], unseen_ids=[0, 1], label_space="unseen"
    )
    assert "mIoU(S)" not in zlss and "hIoU" not in zlss
    assert (
        zlss["mIoU"] == zlss["mIoU(U)"] == pytest.approx(25)
    )  # c: 1/(2+1-1) = 1/2, d predicted: 0
    with pytest.raises(ValueError, match="label space 'seen'"):
        segmentation_metrics(HAND_CONF, HAND_NAMES, [2], label_space="seen")


def _register_hand_dataset(
    tmp_path, name: str, unseen: tuple[str, ...] = ("c", "d")
) -> tuple[list, list]:
    """``HAND_CONF`` as two label images (2 x 5 pixels) and the matching dense scores."""
    gt, pred = _pixels_of(HAND_CONF)
    gt = np.concatenate([gt, [255] * (20 - gt.size)]).astype(np.uint8).reshape(2, 2, 5)
    pred = np.concatenate([pred, [3] * (20 - pred.size)]).reshape(
        2, 2, 5
    )  # void pixels predicted d
    dicts, outputs = [], []
    for i in range(2):
        label = tmp_path / f"{name}_{i}.png"
        Image.fromarray(gt[i]).save(label)
        dicts.append(
            {
                "file_name": f"{name}_{i}.jpg",
                "sem_seg_file_name": str(label),
                "height": 2,
                "width": 5,
            }
        )
        outputs.append(
            {
                "sem_seg": torch.nn.functional.one_hot(torch.from_numpy(pred[i]), 4)
                .permute(2, 0, 1)
                .float()
            }
        )
    if name not in DatasetCatalog.list():
        DatasetCatalog.register(name, lambda: dicts)
        MetadataCatalog.get(name).set(stuff_classes=HAND_NAMES, unseen_classes=list(unseen), ignore_label=255,
                                      label_offset=0, raw_ignore_ids=[], evaluator_type="gzs3")  # fmt: skip
    return [dict(d) for d in dicts], outputs


def test_evaluator_gives_detectron2_semseg_numbers(tmp_path):
    """Detectron2's own SemSegEvaluator on the same images gives our mIoU, fwIoU, mACC, pACC."""
    from detectron2.evaluation import SemSegEvaluator

    inputs, outputs = _register_hand_dataset(tmp_path, "hand_conf_eval")
    ours = GZS3Evaluator("hand_conf_eval", distributed=False)
    ours.process(inputs, outputs)
    d2 = SemSegEvaluator("hand_conf_eval", distributed=False)
    d2.reset()
    d2.process(inputs, outputs)
    ours_m, d2_m = ours.evaluate()["sem_seg"], d2.evaluate()["sem_seg"]
    assert d2_m["mIoU"] == pytest.approx(100 / 3)
    for key in ("mIoU", "fwIoU", "mACC", "pACC", "IoU-a", "IoU-c"):
        assert ours_m[key] == pytest.approx(d2_m[key]), key


def test_zlss_restricts_predictions_to_unseen_classes(tmp_path):
    """LABEL_SPACE "unseen": the seen scores are ignored and only unseen-gt pixels count."""
    inputs, outputs = _register_hand_dataset(tmp_path, "hand_conf_zlss")
    for out in outputs:  # seen channels win every argmax over all classes...
        out["sem_seg"][:2] += 10
        out["sem_seg"][2] += 0.5  # ...and c beats d everywhere among the unseen
    gzs3 = GZS3Evaluator("hand_conf_zlss", distributed=False)
    zlss = GZS3Evaluator("hand_conf_zlss", distributed=False, label_space="unseen")
    for evaluator in (gzs3, zlss):
        evaluator.process(inputs, outputs)
    assert gzs3.evaluate()["sem_seg"]["mIoU(U)"] == 0
    m = zlss.evaluate()["sem_seg"]
    assert zlss.confusion[2:, 2:].tolist() == [[2, 0], [0, 0]] and zlss.confusion.sum() == 2
    assert m["mIoU(U)"] == m["mIoU"] == m["pACC(U)"] == pytest.approx(100)  # both c pixels -> c
    assert "hIoU" not in m and "mIoU(S)" not in m
    with pytest.raises(ValueError, match="needs the dense 'sem_seg' scores"):
        zlss.process(inputs[:1], [{"sem_seg_label": outputs[0]["sem_seg"].argmax(0)}])


def test_zlss_needs_a_split(shared_data, tmp_path):
    cfg = get_cfg()
    add_zsseg_config(cfg)
    cfg.TEST.LABEL_SPACE = "unseen"
    assert build_evaluator(cfg, "camvid_val").label_space == "unseen"
    _register_hand_dataset(tmp_path, "hand_conf_no_split", unseen=())
    with pytest.raises(ValueError, match="'hand_conf_no_split' has no split"):
        build_evaluator(cfg, "hand_conf_no_split")
    cfg.TEST.LABEL_SPACE = "everything"
    with pytest.raises(ValueError, match="TEST.LABEL_SPACE is 'everything'"):
        build_evaluator(cfg, "camvid_val")


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
    dense = [
        {"sem_seg": torch.nn.functional.one_hot(o["sem_seg_label"], 11).permute(2, 0, 1).float()}
        for o in outputs
    ]
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
    coco = {"mIoU(S)": 39.34, "mIoU(U)": 43.8, "hIoU": 41.45, "mIoU": 40.0, "pACC": 70.0}
    gzs3 = format_gzs3_table({"coco": {"sem_seg": coco}, "voc20_val": {"mIoU": 93.1}})
    lines = gzs3.splitlines()
    assert lines[0].replace(" ", "") == "dataset|mIoU(S)|mIoU(U)|hIoU|mIoU|fwIoU|mACC|pACC"
    assert lines[2].replace(" ", "") == "coco|39.3|43.8|41.5|40.0|-|-|70.0"
    assert lines[3].split("|")[1].strip() == "-" and "93.1" in lines[3]
    split = format_split_table(
        {"camvid": segmentation_metrics(HAND_CONF, HAND_NAMES, [2, 3]), "voc20_val": {"mIoU": 93.1}}
    )
    assert [line.replace(" ", "") for line in split.splitlines() if "---" not in line] == [
        "dataset|classes|pACC|mACC|mIoU|fwIoU",
        "camvid|all|60.0|58.3|33.3|46.7",
        "camvid|seen|62.5|62.5|50.0|50.0",
        "camvid|unseen|50.0|50.0|16.7|33.3",
        "voc20_val|all|-|-|93.1|-",
    ]
    transfer = format_transfer_table(
        {"voc20_val": {"mIoU": 93.14}, "ade20k_847_val": {"mIoU": 7.05}}
    )
    header, _, row = transfer.splitlines()
    assert header.split() == ["model", "|", "A-847", "|", "VOC-20"]  # paper's column order
    assert row.split() == ["mIoU", "|", "7.0", "|", "93.1"]
