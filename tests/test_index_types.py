"""FAISS index types of `assistant/index/dense/faiss_index.py`: chunk ids, removal, save/load,
`auto` thresholds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import Assistant, Settings
from assistant.index.builder import build, update
from assistant.index.dense.faiss_index import (
    FLAT_MAX,
    all_vectors,
    choose_index_type,
    index_kind,
    ivf_lists,
    new_dense_index,
    read_dense,
    write_dense,
)


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_chunk_ids_survive_save_load_and_reconstruct(kind: str, tmp_path: Path) -> None:
    x = unit_vectors(600)
    ids = np.arange(5_000, 5_600, dtype=np.int64)  # chunk ids, not row numbers
    index = new_dense_index(kind, 16, train=x if kind == "ivf" else None)
    index.add_with_ids(x, ids)
    write_dense(index, tmp_path / "dense.faiss")
    loaded = read_dense(tmp_path / "dense.faiss")
    assert index_kind(loaded) == kind and loaded.ntotal == 600
    np.testing.assert_allclose(loaded.reconstruct(5_123), x[123], atol=1e-6)
    _, found = loaded.search(x[:5], 1)
    assert list(found[:, 0]) == [5_000, 5_001, 5_002, 5_003, 5_004]
    got_ids, got_vectors = all_vectors(loaded)
    order = np.argsort(got_ids)
    assert np.array_equal(got_ids[order], ids)
    np.testing.assert_allclose(got_vectors[order], x, atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_removal_in_place(kind: str, tmp_path: Path) -> None:
    x = unit_vectors(400, seed=1)
    index = new_dense_index(kind, 16, train=x if kind == "ivf" else None)
    index.add_with_ids(x, np.arange(100, 500, dtype=np.int64))
    index.remove_ids(np.array([100, 101], dtype=np.int64))
    write_dense(index, tmp_path / "d.faiss")
    loaded = read_dense(tmp_path / "d.faiss")
    assert loaded.ntotal == 398
    _, found = loaded.search(x[:2], 3)
    assert 100 not in found and 101 not in found
    loaded.add_with_ids(x[:1], np.array([900], dtype=np.int64))  # add after load, new id
    np.testing.assert_allclose(loaded.reconstruct(900), x[0], atol=1e-6)


def test_ivf_parameters_scale_with_size() -> None:
    assert ivf_lists(100) == 10 and ivf_lists(1_000_000) == 1_000
    small = new_dense_index("ivf", 16, train=unit_vectors(100))
    assert small.nlist == 10 and small.nprobe == 10  # small: every cell is visited (exact)


def test_auto_is_flat_then_ivf() -> None:
    assert choose_index_type("auto", 100) == "flat"
    assert choose_index_type("auto", FLAT_MAX) == "flat"
    assert choose_index_type("auto", FLAT_MAX + 1) == "ivf"
    assert choose_index_type("hnsw", 10) == "hnsw"


def test_ivf_index_through_the_indexer(
    make_corpus: Callable[..., Settings], embedder: Any
) -> None:
    settings = make_corpus().replace(faiss_index="ivf")
    report = build(settings, lambda: embedder, progress=False)
    assert report.chunks > 0
    (settings.corpus_dir / "serre-numerique-valenciennes.txt").unlink()
    removed = update(settings, lambda: embedder, progress=False)
    assert removed.removed == ["serre-numerique-valenciennes.txt"]
    bot = Assistant.load(settings, embedder=embedder)
    assert bot.status()["faiss_index"] == "ivf"
    passages = bot.search("Qui dirige la Louvre Lens Vallée ?", k=5)
    assert passages and all(p.source != "serre-numerique-valenciennes.txt" for p in passages)
