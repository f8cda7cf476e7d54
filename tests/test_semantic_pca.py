"""PCA projection of class vectors (SZN, section 5.3, eq. 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zsseg_d2.engine import load_config
from zsseg_d2.modeling.semantic import (
    PCAProjectedSource,
    build_semantic_source,
    read_embedding_file,
)

TABLE = {"a": [2.0, 1.0], "b": [0.0, 1.0], "c": [1.0, 1.0], "d": [1.0, 3.0]}


def _table_source(names):
    return torch.tensor([TABLE[n] for n in names])


def test_hand_derived_projection():
    # mean of a, b, c = (1, 1); centred (1, 0), (-1, 0), (0, 0): the first axis is x, all variance
    pca = PCAProjectedSource(_table_source, ["a", "b", "c"], dim=1, normalize=False)
    got = pca(["a", "b", "c", "d"])[:, 0]
    sign = torch.sign(got[0])
    torch.testing.assert_close(
        got * sign, torch.tensor([1.0, -1.0, 0.0, 0.0])
    )  # d: centred (0, 2) ⟂ x
    assert pca.explained_variance == pytest.approx(1.0)
    assert pca(["a"]).shape == (1, 1)


def test_too_many_dimensions_is_an_error():
    with pytest.raises(ValueError, match=r"PCA_DIM 3: PCA fitted on 3 class names gives at most 2"):
        PCAProjectedSource(_table_source, ["a", "b", "c"], dim=3)


def _voc21_cfg(shared_data, dim, normalize=False):
    return load_config(
        "configs/cel/tiny/Base-Tiny.yaml",
        ["DATASETS.TEST", ("voc21_szn_17-2-2_crops_val",), "DATASETS.TRAIN", (),
         "MODEL.SEMANTIC.SOURCE", "file", "MODEL.SEMANTIC.PCA_DIM", dim, "MODEL.SEMANTIC.NORMALIZE", normalize,
         "MODEL.SEMANTIC.FILES", [str(shared_data / "word_vectors/voc_21.word2vec.npy")]],
    )  # fmt: skip


def test_word2vec_voc21_with_20_dims_keeps_all_centred_geometry(shared_data):
    """21 class vectors span 20 centred dimensions: j = 20 (the thesis's) loses nothing, so the
    projections' inner products equal those of the centred 300-d vectors."""
    source = build_semantic_source(_voc21_cfg(shared_data, 20))
    names, vectors = read_embedding_file(shared_data / "word_vectors/voc_21.word2vec.npy")
    centred = vectors - vectors.mean(axis=0)
    projected = source(["background", *names[1:]]).double().numpy()
    assert projected.shape == (21, 20)
    np.testing.assert_allclose(projected @ projected.T, centred @ centred.T, atol=1e-4)
    assert source.explained_variance == pytest.approx(1.0)


def test_explained_variance_is_eq_12(shared_data):
    source = build_semantic_source(_voc21_cfg(shared_data, 5, normalize=True))
    _, vectors = read_embedding_file(shared_data / "word_vectors/voc_21.word2vec.npy")
    vectors = vectors / np.linalg.norm(
        vectors, axis=1, keepdims=True
    )  # NORMALIZE applies before PCA too
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(vectors.T)))[::-1]
    assert source.explained_variance == pytest.approx(
        eigenvalues[:5].sum() / eigenvalues.sum(), rel=1e-4
    )
    torch.testing.assert_close(source(["cat", "dog"]).norm(dim=1), torch.ones(2))
