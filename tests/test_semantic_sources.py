"""Precomputed class vectors from files (MODEL.SEMANTIC.SOURCE "file"), on the real CLIP text
embeddings and word vectors of ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsseg_d2.engine import load_config
from zsseg_d2.modeling.semantic import (
    EmbeddingFileSource,
    build_semantic_source,
    read_embedding_file,
)


@pytest.fixture(scope="module")
def clip_voc(shared_data):
    return shared_data / "clip_text_embeddings" / "voc_20.vitb16.single.npy"


def test_npy_rows_are_looked_up_by_name(clip_voc):
    names, vectors = read_embedding_file(clip_voc)
    assert len(names) == 20 and vectors.shape == (20, 512)
    source = EmbeddingFileSource([clip_voc])
    got = source(["cow", "aeroplane", "sheep"])
    expected = torch.nn.functional.normalize(torch.from_numpy(vectors[[9, 0, 16]]), dim=1)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # Real CLIP geometry: cow is nearer to sheep than to aeroplane.
    assert float(got[0] @ got[2]) > float(got[0] @ got[1])


def test_names_match_across_spaces_case_and_aliases(clip_voc, shared_data):
    source = EmbeddingFileSource([clip_voc])
    torch.testing.assert_close(
        source(["Potted Plant", "tv-monitor"]), source(["pottedplant", "tvmonitor"])
    )
    coco = shared_data / "clip_text_embeddings" / "coco_stuff_171.vitb16.multi.npy"
    aliased = EmbeddingFileSource([coco], aliases={"building": "building-other"})
    torch.testing.assert_close(aliased(["building"]), aliased(["building-other"]))


def test_missing_names_are_listed(clip_voc):
    with pytest.raises(
        KeyError, match=r"2 class names are not in .*voc_20.*\['giraffe', 'zebra'\]"
    ):
        EmbeddingFileSource([clip_voc])(["cow", "giraffe", "zebra"])


def test_concatenated_word_vectors_are_600d_and_normalised(shared_data):
    folder = shared_data / "word_vectors"
    w2v, ft = folder / "voc_21.word2vec.npy", folder / "voc_21.fasttext.npy"
    both = EmbeddingFileSource([w2v, ft])(["cat", "dog"])
    assert both.shape == (2, 600)
    torch.testing.assert_close(both.norm(dim=1), torch.ones(2))
    raw = EmbeddingFileSource([w2v, ft], normalize=False)(["cat"])[0]
    expected = np.concatenate([read_embedding_file(w2v)[1][8], read_embedding_file(ft)[1][8]])
    torch.testing.assert_close(raw, torch.from_numpy(expected))


def test_npz_and_bad_files(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, names=np.array(["a", "b"]), vectors=np.array([[3.0, 4.0], [1.0, 0.0]]))
    torch.testing.assert_close(EmbeddingFileSource([path])(["a"]), torch.tensor([[0.6, 0.8]]))
    np.savez(tmp_path / "bad.npz", vectors=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"bad.npz lacks the arrays \['names'\]"):
        EmbeddingFileSource([tmp_path / "bad.npz"])
    np.save(tmp_path / "orphan.npy", np.zeros((2, 2)))
    with pytest.raises(FileNotFoundError, match="no names file for .*orphan.npy"):
        EmbeddingFileSource([tmp_path / "orphan.npy"])
    with pytest.raises(FileNotFoundError, match="missing.npy does not exist"):
        EmbeddingFileSource([tmp_path / "missing.npy"])


def test_config_selects_the_file_source(shared_data):
    cfg = load_config(
        "configs/cel/tiny/camvid_8-3.yaml",
        [
            "MODEL.SEMANTIC.SOURCE",
            "file",
            "MODEL.SEMANTIC.FILES",
            f"['{shared_data / 'clip_text_embeddings' / 'coco_stuff_171.vitb16.single.npy'}']",
        ],
    )
    source = build_semantic_source(cfg)
    assert source(["tree", "car", "road"]).shape == (3, 512)
    with pytest.raises(
        KeyError, match=r"\['sky', 'pedestrian', 'bicyclist'\]"
    ):  # COCO has "sky-other"
        source(["sky", "pedestrian", "bicyclist"])
