"""datasets/prepare_word_vectors.py on tiny word2vec / fastText / GloVe files with known vectors,
and the class embeddings shipped in zsseg_d2/data/embeddings/."""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from zsseg_d2.data.class_lists import load_class_list
from zsseg_d2.modeling.semantic import EmbeddingFileSource, read_embedding_file

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "datasets" / "prepare_word_vectors.py"
EMBEDDINGS = REPO / "zsseg_d2" / "data" / "embeddings"
SHIPPED = {
    "word_vectors": [
        f"{s}.{k}.npy"
        for s in ("voc_21", "coco_stuff_182")
        for k in ("word2vec", "fasttext", "glove")
    ]
    + ["voc_21.names.txt", "coco_stuff_182.names.txt"],
    "clip_text_embeddings": [
        "coco_stuff_171.vitb16.single.npy",
        "coco_stuff_171.vitb16.multi.npy",
        "coco_stuff_171.names.txt",
        "voc_20.vitb16.single.npy",
        "voc_20.names.txt",
    ],
}

# 4-d vectors with different norms, so that averaging raw and unit vectors differ
WORDS = {
    "traffic_light": [0, 0, 0, 2],
    "traffic": [1, 0, 0, 0],
    "light": [0, 1, 0, 0],
    "potted": [3, 0, 0, 0],
    "plant": [0, 1, 0, 0],
    "sky": [0, 0, 5, 0],
    "Apple": [1, 1, 0, 0],
    "apple": [0, 0, 1, 1],
    "zebra": [0, 0, -2, 0],
    "wall": [1, -1, 0, 0],
}


def _load_script():
    spec = importlib.util.spec_from_file_location("prepare_word_vectors", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


pwv = _load_script()


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def write_word2vec_bin(path: Path, words=WORDS, newline: bool = True) -> Path:
    dim = len(next(iter(words.values())))
    with open(path, "wb") as f:
        f.write(f"{len(words)} {dim}\n".encode())
        for word, vector in words.items():
            f.write(
                word.encode()
                + b" "
                + np.asarray(vector, dtype="<f4").tobytes()
                + (b"\n" if newline else b"")
            )
    return path


def write_text(path: Path, words=WORDS, header: bool = True) -> Path:
    """fastText .vec (header, trailing space as fastText writes) or GloVe .txt (no header)."""
    dim = len(next(iter(words.values())))
    lines = [f"{len(words)} {dim}\n"] if header else []
    lines += [
        f"{w} {' '.join(str(float(x)) for x in v)}{' ' if header else ''}\n"
        for w, v in words.items()
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def write_classes(path: Path, names) -> Path:
    path.write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    return path


def run_main(tmp_path, vectors, classes, *extra, kind="w2v", prefix="out/vec"):
    if not isinstance(classes, str):
        classes = str(write_classes(tmp_path / "classes.txt", classes))
    out = tmp_path / prefix
    rc = pwv.main(
        [
            "--vectors",
            str(vectors),
            "--classes",
            classes,
            "--kind",
            kind,
            "--output",
            str(out),
            *extra,
        ]
    )
    return rc, out


def load_output(out: Path, kind="w2v"):
    names = Path(f"{out}.names.txt").read_text(encoding="utf-8").splitlines()
    return names, np.load(f"{out}.{kind}.npy")


@pytest.fixture
def w2v_bin(tmp_path):
    return write_word2vec_bin(tmp_path / "vectors.bin")


def test_multi_word_name_is_the_average_of_its_raw_word_vectors(tmp_path, w2v_bin):
    table = {w: np.asarray(v, dtype=np.float32) for w, v in WORDS.items()}
    result = pwv.class_vector("potted plant", "potted plant", table)
    assert result.tokens == ["potted", "plant"] and result.missing == []
    np.testing.assert_allclose(
        result.vector, [1.5, 0.5, 0, 0]
    )  # the mean, not the sum [3, 1, 0, 0]
    # every separator: space, "-", "_", "/"
    result = pwv.class_vector("x", "wall-sky/plant", table)
    np.testing.assert_allclose(result.vector, [1 / 3, 0, 5 / 3, 0], rtol=1e-6)

    rc, out = run_main(tmp_path, w2v_bin, ["potted plant", "wall-sky/plant", "potted_plant"])
    assert rc == 0
    _, vectors = load_output(out)
    # raw vectors averaged then normalised: [3, 1] / sqrt(10), not the mean of unit vectors [1, 1] / sqrt(2)
    np.testing.assert_allclose(vectors[0], [3 / 10**0.5, 1 / 10**0.5, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(vectors[1], _unit([1, 0, 5, 0]), rtol=1e-6)
    np.testing.assert_allclose(vectors[2], vectors[0])


def test_phrase_token_is_preferred_to_its_words(tmp_path, w2v_bin):
    rc, out = run_main(tmp_path, w2v_bin, ["traffic light", "traffic-light"])
    assert rc == 0
    _, vectors = load_output(out)
    np.testing.assert_allclose(
        vectors, [[0, 0, 0, 1], [0, 0, 0, 1]]
    )  # not the mean of traffic and light


def test_exact_case_first_then_lower_case(tmp_path, w2v_bin):
    rc, out = run_main(tmp_path, w2v_bin, ["Sky", "Apple", "Potted Plant"])
    assert rc == 0
    names, vectors = load_output(out)
    assert names == ["Sky", "Apple", "Potted Plant"]
    np.testing.assert_allclose(vectors[0], [0, 0, 1, 0])
    np.testing.assert_allclose(vectors[1], _unit([1, 1, 0, 0]), rtol=1e-6)  # "Apple" as written
    np.testing.assert_allclose(vectors[2], _unit([3, 1, 0, 0]), rtol=1e-6)
    # one class list cannot hold both (names equal up to case are one class): a second list
    rc, out = run_main(tmp_path, w2v_bin, ["APPLE"], prefix="out/upper")
    assert rc == 0
    np.testing.assert_allclose(load_output(out)[1][0], _unit([0, 0, 1, 1]), rtol=1e-6)  # -> "apple"


def test_rows_are_unit_float32_in_the_class_list_order(tmp_path, w2v_bin):
    order = ["zebra", "sky", "wall", "traffic", "potted plant"]  # not the vector file's order
    rc, out = run_main(tmp_path, w2v_bin, order)
    assert rc == 0
    names, vectors = load_output(out)
    assert names == order
    assert vectors.dtype == np.float32 and vectors.shape == (5, 4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-6)
    expected = [
        [0, 0, -1, 0],
        [0, 0, 1, 0],
        _unit([1, -1, 0, 0]),
        [1, 0, 0, 0],
        _unit([3, 1, 0, 0]),
    ]
    np.testing.assert_allclose(vectors, expected, rtol=1e-6, atol=1e-7)


def test_missing_words_list_every_class_and_write_nothing(tmp_path, w2v_bin, capsys):
    classes = ["unicorn", "potted plant", "zebra crossing", "narwhal", "sky", "blue whale-shark"]
    for extra in ([], ["--allow-missing"]):
        rc, out = run_main(tmp_path, w2v_bin, classes, *extra)
        err = capsys.readouterr().err
        assert rc == 2
        assert (
            "classes with none of their words in the vector file (3): ['unicorn', 'narwhal', 'blue whale-shark']"
            in err
        )
        assert "words missing inside multi-word names (1): 'crossing' in 'zebra crossing'" in err
        assert not out.parent.exists()
    rc, out = run_main(
        tmp_path, w2v_bin, ["zebra crossing", "sky"]
    )  # a word missing inside a name alone
    assert rc == 2 and "'crossing' in 'zebra crossing'" in capsys.readouterr().err
    assert not out.parent.exists()


def test_fill_random_gives_seeded_unit_vectors_and_reports_them(tmp_path, w2v_bin, capsys):
    classes = ["unicorn", "zebra crossing", "sky"]
    rc, out = run_main(tmp_path, w2v_bin, classes, "--allow-missing", "--fill", "random")
    report = capsys.readouterr().out
    assert rc == 0
    assert "unicorn: no word found, random unit vector" in report
    assert "zebra crossing: missing ['crossing'], average of ['zebra']" in report
    _, vectors = load_output(out)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(vectors[1:], [[0, 0, -1, 0], [0, 0, 1, 0]])
    rc, again = run_main(
        tmp_path, w2v_bin, ["sky", "unicorn"], "--allow-missing", "--fill", "random", prefix="b/v"
    )
    np.testing.assert_array_equal(
        load_output(again)[1][1], vectors[0]
    )  # same seed, same name, same vector
    with pytest.raises(SystemExit) as exit_info:
        run_main(tmp_path, w2v_bin, classes, "--fill", "random")
    assert exit_info.value.code == 2


def test_binary_and_text_readers_agree(tmp_path, monkeypatch):
    classes = ["potted plant", "traffic light", "Sky", "wall"]
    files = {
        "word2vec-bin": write_word2vec_bin(tmp_path / "a.bin"),
        "word2vec-bin ": write_word2vec_bin(tmp_path / "b.bin", newline=False),
        "text": write_text(tmp_path / "c.vec", header=True),
        "text ": write_text(tmp_path / "d.txt", header=False),
    }
    gz = tmp_path / "e.bin.gz"
    gz.write_bytes(gzip.compress(files["word2vec-bin"].read_bytes()))
    files["word2vec-bin  "] = gz
    monkeypatch.setattr(pwv, "CHUNK", 7)  # refills cut words and vectors
    outputs = []
    for i, (fmt, path) in enumerate(files.items()):
        assert pwv.detect_format(path) == fmt.strip()
        rc, out = run_main(tmp_path, path, classes, prefix=f"out{i}/v")
        assert rc == 0
        outputs.append(load_output(out)[1])
    rc, out = run_main(tmp_path, files["text "], classes, "--format", "text", prefix="forced/v")
    outputs.append(load_output(out)[1])
    expected = [_unit([3, 1, 0, 0]), [0, 0, 0, 1], [0, 0, 1, 0], _unit([1, -1, 0, 0])]
    for vectors in outputs:
        np.testing.assert_allclose(vectors, expected, rtol=1e-6, atol=1e-7)


def test_truncated_binary_file_is_an_error(tmp_path, capsys):
    path = write_word2vec_bin(tmp_path / "v.bin")
    path.write_bytes(path.read_bytes()[:-9])
    rc, _ = run_main(tmp_path, path, ["unicorn"], "--format", "word2vec-bin")
    assert rc == 2 and "ends early" in capsys.readouterr().err


def test_output_loads_through_embedding_file_source(tmp_path, w2v_bin):
    rc, out = run_main(tmp_path, w2v_bin, ["potted plant", "traffic light", "sky"], kind="word2vec")
    assert rc == 0
    source = EmbeddingFileSource([f"{out}.word2vec.npy"])
    vectors = source(["sky", "pottedplant", "traffic light"]).numpy()
    np.testing.assert_allclose(
        vectors, [[0, 0, 1, 0], _unit([3, 1, 0, 0]), [0, 0, 0, 1]], rtol=1e-6, atol=1e-7
    )


def test_shipped_class_list_uses_prompts_for_vectors_and_names_for_rows(tmp_path):
    camvid = load_class_list("camvid_11")
    rng = np.random.default_rng(0)
    words = {w: rng.standard_normal(8) for p in camvid.prompts for w in p.split()}
    path = write_text(tmp_path / "glove.txt", words, header=False)
    rc, out = run_main(tmp_path, path, "camvid_11", kind="glove")
    assert rc == 0
    names, vectors = load_output(out, "glove")
    assert names == list(camvid.names)  # "SignSymbol", the data set's own name
    i = names.index("SignSymbol")
    np.testing.assert_allclose(vectors[i], _unit((words["sign"] + words["symbol"]) / 2), rtol=1e-5)
    source = EmbeddingFileSource([f"{out}.glove.npy"])
    np.testing.assert_allclose(source(list(camvid.prompts)).numpy(), vectors, rtol=1e-6)


def test_refuses_a_names_file_of_other_classes(tmp_path, w2v_bin, capsys):
    assert run_main(tmp_path, w2v_bin, ["sky", "wall"])[0] == 0
    rc, out = run_main(tmp_path, w2v_bin, ["wall", "sky"], kind="ft")
    assert rc == 2 and "already lists other class names" in capsys.readouterr().err
    assert load_output(out)[0] == ["sky", "wall"] and not Path(f"{out}.ft.npy").exists()


def test_shipped_embeddings_are_byte_identical_to_shared(shared_data):
    for folder, files in SHIPPED.items():
        for name in files:
            assert (EMBEDDINGS / name).read_bytes() == (shared_data / folder / name).read_bytes(), (
                name
            )


def test_shipped_embeddings_have_one_unit_row_per_name():
    shipped = sorted(p.name for p in EMBEDDINGS.iterdir() if p.suffix in (".npy", ".txt"))
    assert shipped == sorted(SHIPPED["word_vectors"] + SHIPPED["clip_text_embeddings"])
    for path in sorted(EMBEDDINGS.glob("*.npy")):
        names, vectors = read_embedding_file(path)  # raises unless rows == names
        assert len(names) == len(vectors) == len(set(names)), path.name
        # the CLIP rows were float16 at the source: unit to ~1e-3
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=2e-3, err_msg=path.name)


def test_command_line(tmp_path, run_tool):
    shown = run_tool(SCRIPT, "--help")
    assert "--vectors" in shown.stdout and "--allow-missing" in shown.stdout
    vectors = write_text(tmp_path / "v.vec")
    classes = write_classes(tmp_path / "c.txt", ["traffic light", "potted plant"])
    out = tmp_path / "wv" / "mine"
    done = run_tool(
        SCRIPT, "--vectors", vectors, "--classes", classes, "--kind", "fasttext", "--output", out
    )
    assert "potted plant <- mean of ['potted', 'plant']" in done.stdout
    names, rows = read_embedding_file(tmp_path / "wv" / "mine.fasttext.npy")
    assert names == ["traffic light", "potted plant"]
    np.testing.assert_allclose(rows, [[0, 0, 0, 1], _unit([3, 1, 0, 0])], rtol=1e-6, atol=1e-7)
