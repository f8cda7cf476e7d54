"""datasets/prepare_*.py on tiny stand-ins shaped like the official downloads."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from zsseg_d2.data import load_sem_seg, seen_class_ids
from zsseg_d2.data.class_lists import load_class_list

DATASETS_DIR = Path(__file__).resolve().parents[1] / "datasets"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, DATASETS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(path, values, dtype=np.uint8, palette=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.asarray(values, dtype=dtype))
    if palette:
        img = img.convert("P")
    img.save(path)


def _jpg(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


def test_coco_stuff(tmp_path, monkeypatch):
    raw_dir = tmp_path / "coco/stuffthingmaps_trainval2017"
    # raw = COCO id - 1: 0 person, 20 cow (unseen), 181 wood, 255 unlabeled
    _png(raw_dir / "train2017/000000000001.png", [[0, 20], [181, 255]])
    _png(raw_dir / "val2017/000000000002.png", [[90, 91], [0, 0]])  # 90 = COCO id 91 (unused)
    _jpg(tmp_path / "coco/train2017/000000000001.jpg", (2, 2))
    script = _script("prepare_coco_stuff")
    with pytest.raises(ValueError, match=r"000000000002.png.*\[90\]"):
        script.main(["--root", str(tmp_path)])
    _png(raw_dir / "val2017/000000000002.png", [[91, 91], [0, 0]])  # 91 = banner = class 80
    script.main(["--root", str(tmp_path)])
    out = tmp_path / "coco/stuffthingmaps_zsseg"
    assert np.asarray(Image.open(out / "train2017/000000000001.png")).tolist() == [
        [0, 19],
        [170, 255],
    ]
    assert np.asarray(Image.open(out / "val2017/000000000002.png")).tolist() == [[80, 80], [0, 0]]
    seen = tmp_path / "coco/stuffthingmaps_zsseg_seen/train2017/000000000001.png"
    assert np.asarray(Image.open(seen)).tolist() == [[0, 255], [170, 255]]  # cow unseen
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    (d,) = DatasetCatalog.get("coco_stuff_171_train")
    label = load_sem_seg(d["sem_seg_file_name"], MetadataCatalog.get("coco_stuff_171_train"))
    assert MetadataCatalog.get("coco_stuff_171_train").stuff_classes[label[0, 1]] == "cow"


def test_voc_sbd(tmp_path, monkeypatch):
    voc = tmp_path / "VOCdevkit/VOC2012"
    sbd = tmp_path / "benchmark_RELEASE/dataset"
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("2007_000002\n")
    sbd.mkdir(parents=True)
    (sbd / "train.txt").write_text("2008_000003\n2007_000002\n")  # an SBD image in VOC val: dropped
    (sbd / "val.txt").write_text("2007_000001\n")  # also in VOC train: VOC's png wins
    _png(voc / "SegmentationClass/2007_000001.png", [[0, 1], [17, 255]], palette=True)  # 17 sheep
    _png(voc / "SegmentationClass/2007_000002.png", [[20, 20], [0, 15]], palette=True)
    (sbd / "cls").mkdir()
    for image_id, seg in (("2008_000003", [[3, 0], [0, 16]]), ("2007_000001", [[5, 5], [5, 5]])):
        struct = {
            "Segmentation": np.array(seg, np.uint8),
            "Boundaries": np.zeros(1),
            "CategoriesPresent": np.zeros(1),
        }
        scipy.io.savemat(sbd / "cls" / f"{image_id}.mat", {"GTcls": struct})
    _script("prepare_voc_sbd").main(["--root", str(tmp_path)])
    out = voc / "SegmentationClassZS"
    assert sorted(p.stem for p in (out / "train_aug").glob("*.png")) == [
        "2007_000001",
        "2008_000003",
    ]
    assert np.asarray(Image.open(out / "train_aug/2007_000001.png")).tolist() == [
        [255, 0],
        [16, 255],
    ]
    assert np.asarray(Image.open(out / "train_aug/2008_000003.png")).tolist() == [
        [2, 255],
        [255, 15],
    ]
    assert np.asarray(Image.open(out / "val/2007_000002.png")).tolist() == [[19, 19], [255, 14]]
    seen = np.asarray(Image.open(voc / "SegmentationClassZS_seen/train_aug/2007_000001.png"))
    assert seen.tolist() == [[255, 0], [255, 255]]  # sheep (16) is unseen
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    _jpg(voc / "JPEGImages/2007_000002.jpg", (2, 2))
    (d,) = DatasetCatalog.get("voc20_val")
    assert load_sem_seg(d["sem_seg_file_name"], MetadataCatalog.get("voc20_val")).tolist() == [
        [19, 19],
        [255, 14],
    ]
    # 21-way: background is class 0, raw ids kept
    voc21 = voc / "SegmentationClass21"
    assert np.asarray(Image.open(voc21 / "train_aug/2007_000001.png")).tolist() == [
        [0, 1],
        [17, 255],
    ]
    assert np.asarray(Image.open(voc21 / "train_aug/2008_000003.png")).tolist() == [[3, 0], [0, 16]]
    (d,) = DatasetCatalog.get("voc21_szn_17-2-2_val")
    metadata = MetadataCatalog.get("voc21_szn_17-2-2_val")
    label = load_sem_seg(d["sem_seg_file_name"], metadata)
    assert [metadata.stuff_classes[i] for i in label.ravel()] == [
        "tv monitor",
        "tv monitor",
        "background",
        "person",
    ]
    assert metadata.unseen_classes == ["sheep", "train"]


def test_pascal_context_33(tmp_path, monkeypatch):
    pc = tmp_path / "pascal_context"
    lists = tmp_path / "VOCdevkit/VOC2010/ImageSets/Main"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2008_000001\n")
    (lists / "val.txt").write_text("2008_000002\n")
    _png(
        pc / "33_context_labels/2008_000001.png", [[0, 1], [33, 17]]
    )  # unlabeled, aeroplane, ceiling, sheep
    _png(pc / "33_context_labels/2008_000002.png", [[21, 21], [19, 0]])
    _png(pc / "33_context_labels/2008_000009.png", [[1, 1], [1, 1]])  # in neither list: not copied
    _script("prepare_pascal_context_33").main(["--root", str(tmp_path)])
    assert [p.name for p in (pc / "labels_33/train").iterdir()] == ["2008_000001.png"]
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    _jpg(tmp_path / "VOCdevkit/VOC2010/JPEGImages/2008_000001.jpg", (2, 2))
    (d,) = DatasetCatalog.get("pascal_context_33_train")
    metadata = MetadataCatalog.get("pascal_context_33_train")
    label = load_sem_seg(d["sem_seg_file_name"], metadata)
    assert label[0, 0] == 255
    assert [metadata.stuff_classes[i] for i in label.ravel()[1:]] == [
        "aeroplane",
        "ceiling",
        "sheep",
    ]
    assert metadata.unseen_classes == ["sheep", "train"]


def test_pascal_context(tmp_path, monkeypatch):
    pc = tmp_path / "pascal_context"
    (pc / "trainval").mkdir(parents=True)
    names59 = load_class_list("pascal_context_59").names
    # labels.txt stand-in: 61 classes in alphabetical order, two of them outside the 59
    names = sorted(list(names59) + ["accordion", "zebra"])
    (pc / "labels.txt").write_text("".join(f"{i + 1}: {n}\n" for i, n in enumerate(names)))
    raw_of = {n: i + 1 for i, n in enumerate(names)}
    label_map = np.array(
        [
            [0, raw_of["accordion"], raw_of["aeroplane"]],
            [raw_of["wood"], raw_of["zebra"], raw_of["sky"]],
        ]
    )
    scipy.io.savemat(pc / "trainval/2008_000001.mat", {"LabelMap": label_map.astype(np.uint16)})
    (tmp_path / "VOCdevkit/VOC2010/ImageSets/Main").mkdir(parents=True)
    (tmp_path / "VOCdevkit/VOC2010/ImageSets/Main/val.txt").write_text("2008_000001\n")
    _script("prepare_pascal_context").main(["--root", str(tmp_path)])
    l459 = np.asarray(Image.open(pc / "labels_459/val/2008_000001.png"))
    assert l459.dtype == np.uint16
    assert l459.tolist() == [
        [65535, 0, 1],
        [names.index("wood"), names.index("zebra"), names.index("sky")],
    ]
    l59 = np.asarray(Image.open(pc / "labels_59/val/2008_000001.png")).tolist()
    assert l59 == [[255, 255, 0], [58, 255, names59.index("sky")]]
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    _jpg(tmp_path / "VOCdevkit/VOC2010/JPEGImages/2008_000001.jpg", (3, 2))
    meta = MetadataCatalog.get("pascal_context_459_val")
    (d,) = DatasetCatalog.get("pascal_context_459_val")
    assert load_sem_seg(d["sem_seg_file_name"], meta).tolist() == l459.tolist()
    assert (pc / "class_names_459.txt").read_text().split("\n")[:2] == ["accordion", "aeroplane"]


def _ade_seg(path, classes):
    """An ADE20K-Full *_seg.png: class k stored as R = k // 256 * 10, G = k % 256."""
    classes = np.asarray(classes)
    rgb = np.stack([classes // 256 * 10, classes % 256, np.zeros_like(classes)], -1).astype(
        np.uint8
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


@pytest.mark.parametrize("with_names_file", [False, True])
def test_ade20k_847(tmp_path, with_names_file):
    objectnames = ["wall", "person, individual", "cat"] + [
        f"obj{i}" for i in range(297)
    ]  # 300 classes
    train_dir = "ADE20K_2021_17_01/images/ADE/training/home/bedroom"
    val_dir = "ADE20K_2021_17_01/images/ADE/validation/home/kitchen"
    presence = np.zeros((300, 2), np.int64)
    presence[[0, 1, 299], 0] = 1  # training image: wall, person, obj296
    presence[[0, 1, 2, 299], 1] = 1  # validation image: wall, person, cat, obj296
    index = {"filename": ["ADE_train_1.jpg", "ADE_val_1.jpg"], "folder": [train_dir, val_dir],
             "objectnames": objectnames, "objectPresence": presence}  # fmt: skip
    (tmp_path / "ADE20K_2021_17_01").mkdir()
    with open(tmp_path / "ADE20K_2021_17_01/index_ade20k.pkl", "wb") as f:
        pickle.dump(index, f)
    _jpg(tmp_path / val_dir / "ADE_val_1.jpg", (3, 2))
    _ade_seg(
        tmp_path / val_dir / "ADE_val_1_seg.png", [[0, 1, 2], [3, 300, 2]]
    )  # mask k = objectnames[k-1]
    args = ["--root", str(tmp_path)]
    if with_names_file:
        (tmp_path / "names.txt").write_text("person, individual\nobj296\ncat\n")
        args += ["--class-names", str(tmp_path / "names.txt")]
    _script("prepare_ade20k_847").main(args)
    out = tmp_path / "ade20k_full"
    label = np.asarray(Image.open(out / "labels/val/ADE_val_1.png")).tolist()
    if with_names_file:  # person 0, obj296 1, cat 2 (wall is not listed: ignored)
        assert (out / "class_names_847.txt").read_text().split() == ["person", "obj296", "cat"]
        assert label == [[65535, 65535, 0], [2, 1, 0]]
    else:  # present in training and validation: wall, person, obj296 (cat only in validation)
        assert (out / "class_names_847.txt").read_text().split() == ["wall", "person", "obj296"]
        assert label == [[65535, 0, 1], [65535, 2, 1]]
    assert (out / "images/val/ADE_val_1.jpg").is_file()


def test_coco_nouns(tmp_path):
    captions = {
        "images": [
            {"id": 1, "file_name": "000000000001.jpg"},
            {"id": 2, "file_name": "000000000002.jpg"},
        ],
        "annotations": [
            {"image_id": 1, "caption": "A man riding a wave on a surfboard."},
            {"image_id": 1, "caption": "Two dogs near a traffic light and a cow on the street."},
            {"image_id": 2, "caption": "A dog on a large red bus parked by the street."},
            {"image_id": 2, "caption": "The giraffe next to the street."},
        ],
    }
    (tmp_path / "coco/annotations").mkdir(parents=True)
    (tmp_path / "coco/annotations/captions_train2017.json").write_text(
        __import__("json").dumps(captions)
    )
    script = _script("prepare_coco_nouns")
    meta = MetadataCatalog.get("coco_stuff_171_train")
    seen = [meta.stuff_classes[i] for i in seen_class_ids(meta)]
    # nouns outside the 156 seen names: street (2 images), man and wave (1 image each);
    # a size of 158 keeps the seen names, street, and one of the two 1-image nouns
    result = script.build(captions, seen, {"cow", "giraffe"}, size=158)
    vocabulary = result["vocabulary"]
    assert len(vocabulary) == 158 and vocabulary[:156] == seen
    assert vocabulary[156] == "street" and vocabulary[157] in ("man", "wave")
    assert "cow" not in vocabulary and "giraffe" not in vocabulary  # unseen names excluded
    labels = result["labels"]
    assert set(labels["000000000001"]) >= {"dog", "traffic light"}  # "dogs" folded onto "dog"
    assert set(labels["000000000002"]) >= {"dog", "bus", "street"}
    script.main(["--root", str(tmp_path), "--size", "158"])
    from zsseg_d2.data import load_caption_nouns

    vocab, ids = load_caption_nouns(tmp_path / "coco/caption_nouns_train2017.json")
    assert len(vocab) == 158 and vocab[ids["000000000002"][0]] in labels["000000000002"]
