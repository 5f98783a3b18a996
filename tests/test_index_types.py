"""FAISS index types of the dense store (`assistant/index/dense/faiss.py`): `auto` thresholds,
IVF parameters, an IVF index through the builder (the store's own mechanics: test_dense_store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from assistant import Assistant, Settings
from assistant.index.builder import build, update
from assistant.index.dense.faiss import FLAT_MAX, choose_index_type, ivf_lists, new_dense_index


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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
