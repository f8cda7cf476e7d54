"""Issue #24, what a new user hit: every case is now right or a clear error naming the file, the
key and the value. Cases (issue section: test):

Silent wrong results
- test vocabulary not matched to the data set: ``test_evaluation_vocabulary_is_matched_by_name``
  (any order gives the same numbers; missing, extra or repeated names are errors), all methods,
  and ``test_evaluator_reads_scores_in_vocabulary_order`` (GZS3 and ZLSS);
- checkpoints with other templates or another CLIP: ``test_text_record_mismatch_is_refused``,
  all methods;
- a 12-bit image in a 16-bit file: ``test_image_bit_depth_is_read_from_the_data``;
- images without labels: ``test_images_without_labels_are_counted``;
- blank lines in a class file: ``test_blank_line_in_a_class_file_is_an_error_naming_it``;
- names equal up to case and spaces: ``test_names_equal_up_to_case_and_spaces_are_errors``.

Crashes and misleading errors
- spec values of the wrong type, no class names: ``test_spec_values_of_the_wrong_type``;
- another method's checkpoint: ``test_checkpoint_of_another_method_says_so_first``, all methods,
  and ``test_demo_names_another_methods_checkpoint_on_one_line``;
- missing word vectors: ``test_every_missing_word_vector_is_listed``, all methods;
- check-dataset hint for spec data sets: ``test_check_dataset_hint_works_for_spec_data_sets``;
- the CPU fallback: ``test_cpu_fallback_is_logged_in_log_txt``.

Lost or overwritten
- a run into an existing OUTPUT_DIR: ``test_new_run_into_a_used_output_dir_refuses``,
  ``test_failed_run_keeps_the_config_of_its_checkpoints``, ``test_evaluation_never_overwrites``;
- ``tools/demo.py`` into a folder with results: ``test_demo_refuses_to_overwrite_results``.

Docs a newcomer followed: ``test_docs_give_the_commands_a_user_runs``; ``label_offset`` without
``ignore_ids``: ``test_label_offset_needs_ignore_ids_and_says_so``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from method_reference import REPO, seeded_init, write_fixture_images
from PIL import Image

from zsseg_d2.data import build_dataset_mapper, load_sem_seg, register_spec_file
from zsseg_d2.data.class_lists import load_class_list
from zsseg_d2.data.sem_seg_io import read_image
from zsseg_d2.engine import Trainer, argument_parser, load_config, setup
from zsseg_d2.engine.checkpoint import Checkpointer, load_trained_weights
from zsseg_d2.engine.output_dir import evaluation_folder
from zsseg_d2.evaluation import GZS3Evaluator
from zsseg_d2.modeling.clip import create_clip_model
from zsseg_d2.modeling.semantic import validate_class_names

# The first stage of each method that reads class vectors in training (ZS3Net's first stage
# trains DeepLab alone; its generator stage is the first to read them).
METHODS = {
    "CEL": "cel/tiny/Base-Tiny.yaml",
    "SZN": "szn/tiny/camvid_step1.yaml",
    "ZS3Net": "zs3net/tiny/camvid_2_zs3net.yaml",
    "SIGN": "sign/tiny/camvid.yaml",
    "RelationNet": "relation_net/tiny/camvid.yaml",
}
NAMES = list(load_class_list("camvid_11").prompts)
UNSEEN = ["tree", "car", "bicyclist"]
NO_VECTORS = ["pole", "fence", "bicyclist"]  # left out of the short word-vector file


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _spec(root: Path, prefix: str, **keys) -> Path:
    """A spec file of the fixture images (CamVid's classes and split) in ``root``."""
    spec = {
        "classes": NAMES,
        "unseen_classes": UNSEEN,
        "ignore_ids": [11],
        "splits": {
            f"{prefix}_train": {"images": "train/images", "labels": "train/labels"},
            f"{prefix}_val": {"images": "val/images", "labels": "val/labels"},
        },
        **keys,
    }
    path = root / f"{prefix}.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """Two spec-file splits of two fixture pairs each (no ../shared needed), a word-vector file of
    every class name and one lacking three, and a CLIP weights file other than the default."""
    root = tmp_path_factory.mktemp("new_user")
    for split in ("train", "val"):
        for record in write_fixture_images(root / split):
            for kind, key in (("images", "file_name"), ("labels", "sem_seg_file_name")):
                (root / split / kind).mkdir(exist_ok=True)
                Path(record[key]).rename(root / split / kind / f"{record['image_id']}.png")
    spec = _spec(root, "newuser")
    vectors = np.random.default_rng(0).normal(size=(len(NAMES), 16)).astype(np.float32)
    np.savez(root / "all.npz", names=np.array(NAMES), vectors=vectors)
    kept = [i for i, name in enumerate(NAMES) if name not in NO_VECTORS]
    np.savez(root / "short.npz", names=np.array(NAMES)[kept], vectors=vectors[kept])
    clip, _ = create_clip_model("ZSSeg-Tiny", "")
    with torch.no_grad():
        clip.text_projection.mul_(2)
    torch.save(clip.state_dict(), root / "other_clip.pt")
    opts = [
        "DATASETS.SPEC_FILES", f"('{spec}',)",
        "DATASETS.TRAIN", "('newuser_train',)", "DATASETS.TEST", "('newuser_val',)",
        "SOLVER.IMS_PER_BATCH", 2, "DATALOADER.NUM_WORKERS", 0, "MODEL.DEVICE", "cpu",
        "MODEL.WEIGHTS", "", "INPUT.MIN_SIZE_TEST", 64,
    ]  # fmt: skip
    return {"root": root, "spec": spec, "opts": opts, "cache": root / "cache"}


@pytest.fixture(autouse=True)
def _text_cache(data, monkeypatch):
    monkeypatch.setenv("ZSSEG_CACHE", str(data["cache"]))


@pytest.fixture(autouse=True)
def _loggers_as_they_were():
    """``setup`` gives these loggers file handlers and stops their propagation (Detectron2's
    ``setup_logger``); later tests' ``caplog`` needs them as they were."""
    loggers = [logging.getLogger(name) for name in ("zsseg_d2", "detectron2", "fvcore")]
    saved = [(logger.handlers[:], logger.propagate, logger.level) for logger in loggers]
    yield
    for logger, (handlers, propagate, level) in zip(loggers, saved):
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()
        logger.handlers[:], logger.propagate, logger.level = handlers, propagate, level


def _config(method: str, data: dict, *opts):
    return load_config(str(REPO / "configs" / METHODS[method]), [*data["opts"], *opts])


def _file_source(data: dict, name: str) -> list:
    return ["MODEL.SEMANTIC.SOURCE", "file", "MODEL.SEMANTIC.FILES", f"('{data['root'] / name}',)"]


@pytest.fixture(scope="module")
def checkpoints(data) -> dict[str, Path]:
    """One checkpoint per method, random weights, its config's text settings."""
    paths = {}
    for method in METHODS:
        folder = data["root"] / "checkpoints" / method
        Checkpointer(Trainer.build_model(_config(method, data)), str(folder)).save("model")
        paths[method] = folder / "model.pth"
    return paths


def _break_ties_by_name(model) -> None:
    """Adds 1e-4 x (the class name's rank in sorted order) to each score map."""
    inference = model.inference

    def inference_by_name(batched_inputs: list[dict]) -> list[dict]:
        names = model.test_vocabulary
        rank = torch.tensor([sorted(names).index(n) for n in names], dtype=torch.float32)
        outputs = inference(batched_inputs)
        for output in outputs:
            output["sem_seg"] = output["sem_seg"] + 1e-4 * rank[:, None, None]
        return outputs

    model.inference = inference_by_name


# ------------------------------------------------------------------ every method
@pytest.mark.parametrize("method", METHODS)
def test_evaluation_vocabulary_is_matched_by_name(method, data, tmp_path):
    """Predicted ids index the evaluation vocabulary, labels the data set's classes: the names in
    another order give the same numbers; a missing, extra or repeated name is an error listing
    them. (Seeded weights and a word-vector file. Near-ties, which argmax breaks by position and
    float rounding, are broken by name: the seeded Relation Network's U-Net scores every class
    within 1e-5 of the best at every pixel, its class features enter at pool5 only.)"""
    opts = [*_file_source(data, "all.npz"), "OUTPUT_DIR", str(tmp_path)]
    model = Trainer.build_model(_config(method, data, *opts))
    seeded_init(model)
    _break_ties_by_name(model)
    own = Trainer.test(_config(method, data, *opts), model)["newuser_val"]["sem_seg"]
    rotated = NAMES[1:] + NAMES[:1]  # every name moves
    reordered = _config(method, data, *opts, "MODEL.VOCABULARY.TEST", str(rotated))
    assert json.dumps(Trainer.test(reordered, model)["newuser_val"]["sem_seg"]) == json.dumps(own)
    assert model.test_vocabulary == rotated
    ious = [own[f"IoU-{name}"] for name in NAMES]
    assert json.dumps(ious) != json.dumps(ious[1:] + ious[:1])  # ids read unmatched would show
    for vocabulary, problem in (
        (NAMES[:5], f"its classes missing: {NAMES[5:]}"),
        ([*NAMES, "giraffe"], "not classes of the data set: ['giraffe']"),
        ([*NAMES[:-1], "sky"], "its classes missing: ['bicyclist']"),
    ):
        cfg = _config(method, data, *opts, "MODEL.VOCABULARY.TEST", str(vocabulary))
        with pytest.raises(ValueError) as error:
            Trainer.test(cfg, model)
        message = str(error.value)
        assert "MODEL.VOCABULARY.TEST" in message and "'newuser_val'" in message
        assert problem in message


def test_evaluator_reads_scores_in_vocabulary_order(data):
    """Scores whose channels follow a reversed vocabulary: both label spaces read each channel as
    the class it names (the ground truth as scores gives 100)."""
    metadata = MetadataCatalog.get("newuser_val")
    inputs, outputs = [], []
    for record in DatasetCatalog.get("newuser_val"):
        gt = torch.from_numpy(load_sem_seg(record["sem_seg_file_name"], metadata).astype(np.int64))
        one_hot = torch.nn.functional.one_hot(torch.where(gt == 255, 0, gt), len(NAMES))
        inputs.append({"file_name": record["file_name"]})
        scores = one_hot.permute(2, 0, 1).flip(0).float()  # channel k: class NAMES[10 - k]
        outputs.append({"sem_seg": scores})
    for space, key in (("all", "mIoU"), ("unseen", "mIoU(U)")):
        evaluator = GZS3Evaluator("newuser_val", False, label_space=space, vocabulary=NAMES[::-1])
        evaluator.process(inputs, outputs)
        assert evaluator.evaluate()["sem_seg"][key] == pytest.approx(100), space


@pytest.mark.parametrize("method", METHODS)
def test_text_record_mismatch_is_refused(method, data, checkpoints):
    """Every method's checkpoint carries the full text record, and every setting is checked."""
    path = str(checkpoints[method])
    record = torch.load(path, weights_only=True)["text_settings"]
    assert set(record) == {
        "MODEL.SEMANTIC.SOURCE",
        "MODEL.CLIP.MODEL_NAME",
        "MODEL.CLIP.PRETRAINED",
        "MODEL.CLIP.PROMPT_TEMPLATES",
        "training vocabulary",
    }
    other_clip = str(data["root"] / "other_clip.pt")
    for key, value, expected in (
        ("MODEL.CLIP.PROMPT_TEMPLATES", "imagenet", "checkpoint 'single', config 'imagenet'"),
        ("MODEL.CLIP.PRETRAINED", other_clip, f"checkpoint '', config '{other_clip}'"),
    ):
        model = Trainer.build_model(_config(method, data, key, value))
        with pytest.raises(ValueError) as error:
            load_trained_weights(model, path)
        assert f"{key}: {expected}" in str(error.value) and path in str(error.value)


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_of_another_method_says_so_first(method, data, checkpoints, tmp_path):
    """Reported as another method's checkpoint, also when text mismatches are accepted. A
    checkpoint written before the model class was recorded, whose text settings differ too, is
    reported by its parameters first, not by its text settings."""
    methods = list(METHODS)
    other = methods[(methods.index(method) + 1) % len(methods)]
    model = Trainer.build_model(_config(other, data))
    path = str(checkpoints[method])
    expected = f"checkpoint {path} holds a {method} model (MODEL.META_ARCHITECTURE '{method}')"
    for accept in (False, True):
        with pytest.raises(ValueError) as error:
            load_trained_weights(model, path, accept_text_mismatch=accept)
        assert str(error.value).startswith(expected) and f"builds {other}" in str(error.value)
    with pytest.raises(ValueError, match="holds a"):  # fine-tuning and --resume
        Checkpointer(model).load(path)
    saved = torch.load(path, weights_only=True)
    other_source = {"MODEL.SEMANTIC.SOURCE": {"value": "file", "identity": "file"}}
    old = tmp_path / "old.pth"
    torch.save({"model": saved["model"], "text_settings": other_source}, old)
    with pytest.raises(ValueError) as error:
        load_trained_weights(model, str(old))
    assert "does not fit this model's architecture" in str(error.value)
    assert "text settings" not in str(error.value)


@pytest.mark.parametrize("method", METHODS)
def test_every_missing_word_vector_is_listed(method, data):
    """The first training step of each method, with a word-vector file that lacks three names."""
    small = ["INPUT.MIN_SIZE_TRAIN", "(64,)", "INPUT.CROP.SIZE", "(64, 64)"]
    small += ["INPUT.SIZE_DIVISIBILITY", 64] if method == "CEL" else []
    cfg = _config(method, data, *_file_source(data, "short.npz"), *small)
    mapper = build_dataset_mapper(cfg, is_train=True)
    batch = [mapper(record) for record in DatasetCatalog.get("newuser_train")]
    with pytest.raises(KeyError) as error:
        Trainer.build_model(cfg).train()(batch)
    assert f"3 class names are not in {data['root'] / 'short.npz'}: {NO_VECTORS}" in str(
        error.value
    )


# ------------------------------------------------------------------ spec files and class lists
@pytest.mark.parametrize(
    "keys, message",
    [
        ({"ignore_ids": 11}, "'ignore_ids' must be a list of integers 0..65535, got 11 (int)"),
        ({"ignore_ids": [-1]}, "'ignore_ids' must be a list of integers 0..65535, got [-1]"),
        ({"unseen_classes": "tree"}, "'unseen_classes' must be a list of names, got 'tree' (str)"),
        ({"label_offset": "1"}, "'label_offset' must be an integer >= 0, got '1' (str)"),
        ({"label_offset": True}, "'label_offset' must be an integer >= 0, got True (bool)"),
        ({"image_ext": "jpg"}, "'image_ext' must be a file suffix such as '.jpg', got 'jpg'"),
        ({"classes": [*NAMES[:-1], False]}, "[False] are not strings"),
        ({"splits": ["a", "b"]}, "'splits' must be a mapping"),
        ({"classes": None, "class_file": None}, "not both"),
    ],
)
def test_spec_values_of_the_wrong_type(tmp_path, keys, message):
    spec = _spec(tmp_path, "typed", **keys)
    with pytest.raises(ValueError) as error:
        register_spec_file(spec)
    assert message in str(error.value) and str(spec) in str(error.value)
    neither = _spec(tmp_path, "neither")
    text = json.loads(neither.read_text())
    del text["classes"]
    neither.write_text(json.dumps(text))
    with pytest.raises(ValueError, match="either as 'classes' .* or as 'class_file'.*not neither"):
        register_spec_file(neither)


def test_names_equal_up_to_case_and_spaces_are_errors(tmp_path, data):
    for names, duplicates in ((["car", "Car"], "['Car', 'car']"), (["wall", " Wall"], "['Wall', 'wall']")):  # fmt: skip
        spec = _spec(tmp_path, "dup", classes=[*NAMES[:-1], *names])
        with pytest.raises(ValueError) as error:
            register_spec_file(spec)
        assert f"unique up to case and spaces (duplicates: {duplicates})" in str(error.value)
    with pytest.raises(ValueError, match=r"duplicate class names \['Sky', 'sky'\] in --vocab"):
        validate_class_names(["sky", "road", "Sky"], "--vocab")
    vocabulary = [*NAMES[:-1], "bi cyclist", "Bicyclist"]
    cfg = _config("CEL", data, "MODEL.VOCABULARY.TEST", str(vocabulary))
    with pytest.raises(ValueError, match="duplicate class names"):
        Trainer.build_model(cfg)


def test_blank_line_in_a_class_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "classes.txt").write_text("sky\nroad\n\ncar\n\n\n", encoding="utf-8")
    spec = tmp_path / "blank.yaml"
    spec.write_text("class_file: classes.txt\nsplits: {blank_x: {images: i, labels: l}}\n")
    with pytest.raises(ValueError) as error:
        register_spec_file(spec)
    assert f"class-name file {tmp_path / 'classes.txt'} has blank lines [3]" in str(error.value)
    assert str(spec) in str(error.value)
    (tmp_path / "classes.txt").write_text("sky\nroad\ncar\n\n", encoding="utf-8")  # trailing: fine
    register_spec_file(spec)
    assert MetadataCatalog.get("blank_x").stuff_classes == ["sky", "road", "car"]


def test_images_without_labels_are_counted(tmp_path, data, caplog, capsys, monkeypatch):
    root = tmp_path / "own"
    shutil.copytree(data["root"] / "val", root / "val")
    shutil.copytree(data["root"] / "val", root / "train")
    for extra in ("extra_a", "extra_b", "extra_c"):
        Image.new("RGB", (8, 8)).save(root / "train" / "images" / f"{extra}.jpg")
    spec = _spec(root, "unlabelled")
    register_spec_file(spec)
    # off when an earlier test logged to files (Detectron2's setup_logger)
    monkeypatch.setattr(logging.getLogger("zsseg_d2"), "propagate", True)
    with caplog.at_level(logging.WARNING):
        assert len(DatasetCatalog.get("unlabelled_train")) == 2
    assert f"3 images in {root / 'train' / 'images'} have no label file" in caplog.text
    assert f"--spec-file {spec}" in caplog.text
    assert _tool("check_dataset").main(["--spec-file", str(spec), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "unlabelled_train: 2 pairs, 2 good, 0 bad" in out
    assert "images without a label file (left out of the split): 3 in" in out
    assert "extra_a.jpg, extra_b.jpg, extra_c.jpg" in out


def test_label_offset_needs_ignore_ids_and_says_so(tmp_path):
    """ADE20K style: raw 0 = "other", classes from 1."""
    label = tmp_path / "label.png"
    Image.fromarray(np.array([[0, 1, 2]], dtype=np.uint8)).save(label)
    spec = tmp_path / "ade.yaml"
    spec.write_text(
        "classes: [wall, floor]\nlabel_offset: 1\nsplits: {ade_x: {images: i, labels: l}}"
    )
    register_spec_file(spec)
    with pytest.raises(ValueError) as error:
        load_sem_seg(label, MetadataCatalog.get("ade_x"))
    message = str(error.value)
    assert "holds value 0" in message and "list them in ignore_ids (e.g. ignore_ids: [0]" in message
    spec.write_text(spec.read_text().replace("ade_x", "ade_y") + "\nignore_ids: [0]\n")
    register_spec_file(spec)
    assert load_sem_seg(label, MetadataCatalog.get("ade_y")).tolist() == [[255, 0, 1]]


def test_check_dataset_hint_works_for_spec_data_sets(tmp_path, data, capsys):
    root = tmp_path / "hint"
    shutil.copytree(data["root"] / "val", root / "train")
    shutil.copytree(data["root"] / "val", root / "val")
    for label in (root / "train" / "labels").iterdir():  # a value outside the 11 classes
        Image.fromarray(np.full_like(np.asarray(Image.open(label)), 50)).save(label)
    spec = _spec(root, "hint")
    cfg = load_config(
        str(REPO / "configs" / METHODS["CEL"]),
        ["DATASETS.SPEC_FILES", f"('{spec}',)", "DATASETS.TRAIN", "('hint_train',)",
         "INPUT.SKIP_UNREADABLE", "True"],
    )  # fmt: skip
    mapper = build_dataset_mapper(cfg, is_train=True)
    with pytest.raises(RuntimeError) as error:
        mapper(DatasetCatalog.get("hint_train")[0])
    command = f"python tools/check_dataset.py --spec-file {spec}"
    assert command in str(error.value)
    assert _tool("check_dataset").main(command.split()[2:]) == 1  # the hint runs
    assert "hint_train: 2 pairs, 0 good, 2 bad" in capsys.readouterr().out
    assert _tool("check_dataset").main(["--dataset", "hint_nowhere"]) == 2
    assert "--spec-file FILE" in capsys.readouterr().err


# ------------------------------------------------------------------ images
def test_image_bit_depth_is_read_from_the_data(tmp_path):
    """12-bit samples in 16-bit files: scaled by 255/4095, grey and colour (PIL alone keeps a
    colour file's high bytes: 4095 would read 15)."""
    samples = np.array([[0, 1000, 2048, 4095]], dtype=np.uint16)
    Image.fromarray(samples).save(tmp_path / "grey12.png")
    expected = np.round(samples / 4095 * 255).astype(np.uint8)
    assert np.array_equal(read_image(tmp_path / "grey12.png", "RGB")[..., 0], expected)
    colour = np.stack([samples, samples[:, ::-1], samples // 2], axis=-1)
    import cv2

    cv2.imwrite(str(tmp_path / "colour12.png"), colour[..., ::-1])  # OpenCV writes BGR
    read = read_image(tmp_path / "colour12.png", "RGB")
    assert np.array_equal(read, np.round(colour / 4095 * 255).astype(np.uint8))
    full = np.array([[0, 65535, 30000]], dtype=np.uint16)  # uses 16 bits: 255/65535
    Image.fromarray(full).save(tmp_path / "grey16.png")
    assert read_image(tmp_path / "grey16.png", "RGB")[0, :, 0].tolist() == [0, 255, 117]


# ------------------------------------------------------------------ runs and their folders
def _args(*argv: str):
    return argument_parser().parse_args([str(a) for a in argv])


def test_new_run_into_a_used_output_dir_refuses(tmp_path, data):
    out = tmp_path / "run"
    out.mkdir()
    for name in ("model_final.pth", "config.yaml", "notes.txt"):
        (out / name).write_text("earlier run")
    (out / "inference" / "newuser_val").mkdir(parents=True)
    config = str(REPO / "configs" / METHODS["CEL"])
    opts = [*data["opts"], "OUTPUT_DIR", out]
    with pytest.raises(FileExistsError) as error:
        setup(_args("--config-file", config, *opts))
    message = str(error.value)
    assert f"OUTPUT_DIR {out} is not empty (config.yaml, inference, model_final.pth" in message
    assert "--resume" in message and "--overwrite" in message
    assert (out / "model_final.pth").read_text() == "earlier run"
    setup(_args("--config-file", config, "--overwrite", *opts))
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "notes.txt"]  # notes: the user's
    setup(_args("--config-file", config, "--resume", *opts))  # continuing a run: allowed


def test_failed_run_keeps_the_config_of_its_checkpoints(tmp_path, data, checkpoints):
    """A resumed run whose weights do not load leaves config.yaml as it was."""
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(checkpoints["CEL"], out / "model_0000009.pth")
    (out / "last_checkpoint").write_text("model_0000009.pth")
    (out / "config.yaml").write_text("the config of model_0000009.pth\n")
    train_net = _tool("train_net")
    args = _args("--config-file", REPO / "configs" / METHODS["CEL"], "--resume", *data["opts"],
                 "OUTPUT_DIR", out, "MODEL.CLIP.PROMPT_TEMPLATES", "imagenet")  # fmt: skip
    with pytest.raises(ValueError, match="PROMPT_TEMPLATES"):
        train_net.main(args)
    assert (out / "config.yaml").read_text() == "the config of model_0000009.pth\n"


def test_evaluation_never_overwrites(tmp_path):
    assert evaluation_folder(str(tmp_path), overwrite=False) == tmp_path / "inference"
    (tmp_path / "inference" / "x").mkdir(parents=True)
    (tmp_path / "inference_2").mkdir()  # empty: free
    assert evaluation_folder(str(tmp_path), overwrite=False) == tmp_path / "inference_2"
    (tmp_path / "inference_2" / "y").mkdir()
    assert evaluation_folder(str(tmp_path), overwrite=False) == tmp_path / "inference_3"
    assert evaluation_folder(str(tmp_path), overwrite=True) == tmp_path / "inference"
    assert not (tmp_path / "inference").exists()  # emptied for the new results


def test_cpu_fallback_is_logged_in_log_txt(tmp_path, data, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "run"
    cfg = setup(_args("--config-file", REPO / "configs" / METHODS["CEL"], *data["opts"],
                      "MODEL.DEVICE", "cuda", "OUTPUT_DIR", out))  # fmt: skip
    assert cfg.MODEL.DEVICE == "cpu"
    log = (out / "log.txt").read_text()
    assert "MODEL.DEVICE cuda asked for, but PyTorch sees no GPU" in log
    assert "running on the cpu instead" in log and "DEVICE: cpu" in log  # the config as run


# ------------------------------------------------------------------ tools/demo.py
def test_demo_refuses_to_overwrite_results(tmp_path, data, capsys):
    demo = _tool("demo")
    image = data["root"] / "val" / "images" / "img0.png"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "img0_label.png").write_bytes(b"an earlier result")
    common = ["--config-file", str(REPO / "configs" / METHODS["CEL"]), "--input", str(image),
              "--vocab", "sky, road", "--output", str(tmp_path / "out")]  # fmt: skip
    assert demo.main(common) == 2
    err = capsys.readouterr().err
    assert f"holds results of an earlier run: {tmp_path / 'out' / 'img0_label.png'}" in err
    assert "--overwrite" in err
    assert (tmp_path / "out" / "img0_label.png").read_bytes() == b"an earlier result"
    demo.check_not_overwriting(tmp_path / "out", ["img0"], overwrite=True)
    demo.check_not_overwriting(tmp_path / "out", ["img1"], overwrite=False)


def test_demo_names_another_methods_checkpoint_on_one_line(tmp_path, data, checkpoints, capsys):
    demo = _tool("demo")
    image = data["root"] / "val" / "images" / "img0.png"
    status = demo.main(["--config-file", str(REPO / "configs" / METHODS["CEL"]), "--input", str(image),
                        "--vocab", "sky, road", "--output", str(tmp_path / "out"), *map(str, data["opts"]),
                        "MODEL.WEIGHTS", str(checkpoints["SZN"])])  # fmt: skip
    assert status == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert err == [
        f"error: checkpoint {checkpoints['SZN']} holds a SZN model (MODEL.META_ARCHITECTURE "
        f"'SZN'), but this config builds CEL: use the config file the checkpoint was trained "
        f"with (the config.yaml beside it)"
    ]


# ------------------------------------------------------------------ docs
def test_docs_give_the_commands_a_user_runs():
    started = (REPO / "docs" / "getting_started.md").read_text()
    own_images = started[started.index("## Your own images") : started.index("## Your own data")]
    assert "MODEL.CLIP.PRETRAINED output/demo/clip/clip.pt" in own_images
    assert "MODEL.WEIGHTS output/demo/stage3/model_final.pth" in own_images
    spec_keys = (REPO / "datasets" / "README.md").read_text()
    assert "label_offset: 1" in spec_keys and "ignore_ids: [0]" in spec_keys
    for key in ("ignore_ids", "label_offset", "unseen_classes", "image_ext", "label_ext"):
        assert f"| `{key}` |" in spec_keys, key  # the table of keys and their types
    memory = (REPO / "docs" / "benchmarks.md").read_text()
    assert "configs/cel/tiny/shapes.yaml" in memory and "100 queries" in memory
