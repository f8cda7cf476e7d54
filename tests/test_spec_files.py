"""Data sets from spec files: registered by the config or an environment variable in every process,
checked, and trained with two processes."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, DatasetFromList, MapDataset, MetadataCatalog
from PIL import Image

from zsseg_d2.data import ZeroShotSemanticDatasetMapper, load_sem_seg, register_spec_file
from zsseg_d2.engine import load_config

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs" / "cel" / "tiny" / "Base-Tiny.yaml")
CAMVID_NAMES = [
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
]


def _own_data(root: Path, shared_data: Path, prefix: str, per_split: int = 3) -> Path:
    """A copy of a few CamVid pairs laid out as a user's own data set, with a spec file."""
    for split, count in (("train", per_split), ("val", 2)):
        for kind in ("images", "labels"):
            (root / split / kind).mkdir(parents=True)
        for label in sorted((shared_data / "camvid" / split / "labels").iterdir())[:count]:
            shutil.copy(label, root / split / "labels" / label.name)
            shutil.copy(
                shared_data / "camvid" / split / "images" / f"{label.stem}.jpg",
                root / split / "images",
            )
    (root / "classes.txt").write_text("\n".join(CAMVID_NAMES) + "\n", encoding="utf-8")
    spec = root / "spec.yaml"
    spec.write_text(
        "class_file: classes.txt\n"
        "unseen_classes: [tree, car, bicyclist]\n"
        "ignore_ids: [11]\n"
        "splits:\n"
        f"  {prefix}_train: {{images: train/images, labels: train/labels}}\n"
        f"  {prefix}_val: {{images: val/images, labels: val/labels}}\n",
        encoding="utf-8",
    )
    return spec


def test_spec_file_in_the_config_registers_the_splits(tmp_path, shared_data):
    spec = _own_data(tmp_path, shared_data, "own_cfg")
    cfg = load_config(
        TINY,
        [
            "DATASETS.SPEC_FILES",
            f"('{spec}',)",
            "DATASETS.TRAIN",
            "('own_cfg_train',)",
            "DATASETS.TEST",
            "('own_cfg_val',)",
        ],
    )
    dicts = DatasetCatalog.get("own_cfg_train")
    assert [Path(d["file_name"]).parent for d in dicts] == [tmp_path / "train" / "images"] * 3
    metadata = MetadataCatalog.get("own_cfg_val")
    assert metadata.stuff_classes == CAMVID_NAMES and metadata.unseen_classes == [
        "tree",
        "car",
        "bicyclist",
    ]
    camvid = load_sem_seg(dicts[0]["sem_seg_file_name"], MetadataCatalog.get("camvid_train"))
    assert np.array_equal(
        load_sem_seg(dicts[0]["sem_seg_file_name"], metadata), camvid
    )  # 11 -> ignore
    sample = ZeroShotSemanticDatasetMapper(cfg, is_train=True)(dicts[0])
    assert sample["sem_seg"].shape[-2:] == sample["image"].shape[-2:]
    register_spec_file(spec)  # the same file again: nothing happens


def test_spec_file_from_the_environment_is_registered_on_import(tmp_path, shared_data, run_tool):
    spec = _own_data(tmp_path, shared_data, "own_env")
    code = (
        "import zsseg_d2; from detectron2.data import DatasetCatalog as C; "
        "print(len(C.get('own_env_train')), len(C.get('own_env_val')))"
    )
    result = run_tool("-c", code, env={"ZSSEG_DATASET_SPECS": str(spec)})
    assert result.stdout.split() == ["3", "2"]


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "classes: [a, b]\nunseen: [b]\nsplits: {x: {images: i, labels: l}}\n",
            r"unknown keys \['unseen'\]",
        ),
        (
            "classes: [a, b]\nunseen_classes: [c]\nsplits: {x: {images: i, labels: l}}\n",
            r"unseen_classes \['c'\]",
        ),
        ("classes: [a, a]\nsplits: {x: {images: i, labels: l}}\n", r"duplicates: \['a'\]"),
        ("classes: [a]\nsplits: {x: {images: i}}\n", "split 'x' needs exactly the keys"),
        ("classes: [a]\n", "needs 'splits'"),
        (
            "class_file: names.txt\nsplits: {x: {images: i, labels: l}}\n",
            "names.txt is not UTF-8 text",
        ),
    ],
)
def test_bad_spec_files_name_the_file_and_the_problem(tmp_path, text, message):
    (tmp_path / "names.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with pytest.raises(ValueError, match=message) as error:
        register_spec_file(spec)
    assert str(spec) in str(error.value)


def test_missing_folder_and_taken_name_are_errors_naming_the_spec(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(
        '{"classes": ["a"], "splits": {"own_missing": {"images": "im", "labels": "lab"}}}'
    )
    register_spec_file(spec)
    with pytest.raises(
        FileNotFoundError, match=rf"label folder not found: {tmp_path / 'lab'} .*{spec}"
    ):
        DatasetCatalog.get("own_missing")
    taken = tmp_path / "taken.yaml"
    taken.write_text("classes: [a]\nsplits: {camvid_train: {images: i, labels: l}}\n")
    with pytest.raises(ValueError, match="split name 'camvid_train' is already registered"):
        register_spec_file(taken)


@pytest.mark.slow
def test_spec_file_data_set_trains_and_evaluates_with_two_processes(
    tmp_path, shared_data, run_tool
):
    spec = _own_data(tmp_path / "data", shared_data, "own_ddp", per_split=4)
    out = tmp_path / "run"
    run_tool("tools/train_net.py", "--num-gpus", "2", "--config-file", TINY,
               "DATASETS.SPEC_FILES", f"('{spec}',)", "DATASETS.TRAIN", "('own_ddp_train',)",
               "DATASETS.TEST", "('own_ddp_val',)", "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(out),
               "SOLVER.MAX_ITER", "2", "INPUT.CROP.SIZE", "(64, 64)", "INPUT.SIZE_DIVISIBILITY", "64",
               "INPUT.MIN_SIZE_TEST", "96")  # fmt: skip
    assert (out / "model_final.pth").is_file() and (out / "log.txt.rank1").is_file()
    assert (out / "inference" / "own_ddp_val" / "gzs3_metrics.json").is_file()


def _spoil(spec: Path) -> dict:
    """Spoil three of the four training pairs: truncated label, a value outside the classes, a size mismatch."""
    labels = sorted((spec.parent / "train" / "labels").iterdir())
    labels[0].write_bytes(labels[0].read_bytes()[:100])
    Image.fromarray(np.full((360, 480), 50, dtype=np.uint8)).save(labels[1])
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(labels[2])
    return {"truncated": labels[0], "value": labels[1], "size": labels[2], "good": labels[3]}


def test_check_dataset_lists_every_bad_pair_and_summarises(tmp_path, shared_data, capsys):
    spec = _own_data(tmp_path, shared_data, "own_check", per_split=4)
    spoiled = _spoil(spec)
    check = importlib.util.spec_from_file_location(
        "check_dataset", REPO / "tools" / "check_dataset.py"
    )
    tool = importlib.util.module_from_spec(check)
    check.loader.exec_module(tool)
    assert tool.main(["--spec-file", str(spec), "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert (
        "own_check_train: 4 pairs, 1 good, 3 bad" in out
        and "own_check_val: 2 pairs, 2 good, 0 bad" in out
    )
    assert f"cannot decode label file {spoiled['truncated']}" in out
    assert f"label file {spoiled['value']} holds value 50" in out
    assert f"but its label {spoiled['size']} is 10x10" in out
    assert "images with unseen-class pixels:" in out and "3 bad pairs in 2 data sets" in out
    assert tool.main(["--dataset", "no_such_set"]) == 2


def test_training_can_skip_and_count_unreadable_pairs(tmp_path, shared_data):
    spec = _own_data(tmp_path, shared_data, "own_skip", per_split=4)
    spoiled = _spoil(spec)
    opts = [
        "DATASETS.SPEC_FILES",
        f"('{spec}',)",
        "DATASETS.TRAIN",
        "('own_skip_train',)",
        "DATASETS.TEST",
        "()",
    ]
    strict = ZeroShotSemanticDatasetMapper(load_config(TINY, opts), is_train=True)
    records = DatasetCatalog.get("own_skip_train")
    with pytest.raises(OSError, match="cannot decode label file"):
        strict(records[0])
    mapper = ZeroShotSemanticDatasetMapper(
        load_config(TINY, [*opts, "INPUT.SKIP_UNREADABLE", "True"]), is_train=True
    )
    dataset = MapDataset(DatasetFromList(records, copy=False), mapper)
    samples = [dataset[i] for i in range(4)]
    assert mapper.skipped >= 3  # each spoiled pair once, and again when drawn as a replacement
    assert {s["sem_seg_file_name"] for s in samples} == {str(spoiled["good"])}
