"""The contract of a lexical store: BM25 over the analyzed terms of chunks, by chunk id.

Terms come from `assistant.text.analysis.analyze` (the store never analyses text itself).
Opened at a published state, changed with `add` / `remove`, made durable with `save` exactly as
a dense store (`assistant/index/dense/base.py`). Implementations: `bm25.py` (embedded default,
segmented: an update writes only the new rows), `qdrant.py` (sparse vectors, IDF by Qdrant).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from ..dense.base import IdSet


class LexicalStore(Protocol):
    name: str

    def __len__(self) -> int: ...  # live documents

    def add(self, ids: np.ndarray, terms: list[list[str]]) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, terms: list[str], k: int,
               allowed: IdSet | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the (at most) k best documents with a score > 0 (among `allowed`),
        best first."""
        ...

    def score(self, terms: list[str], ids: np.ndarray) -> np.ndarray:
        """BM25 score of each of `ids` (0 for a document without any of the terms)."""
        ...

    def document_frequency(self, term: str) -> int: ...  # live documents holding `term`

    def save(self, generation: int) -> dict[str, Any]: ...

    def prune(self, keep: list[dict[str, Any]]) -> None: ...

    def describe(self) -> dict[str, Any]: ...


def idf(store: LexicalStore, term: str) -> float:
    """BM25's (Lucene) inverse document frequency of an analyzed term: high for unseen terms."""
    n = max(len(store), 1)
    df = store.document_frequency(term)
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def checked_documents(ids: np.ndarray, terms: list[list[str]]) -> list[int]:
    """The ids of an `add` as ints, one per term list (ValueError otherwise)."""
    id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
    if len(id_list) != len(terms):
        raise ValueError(f"{len(id_list)} ids for {len(terms)} term lists")
    return id_list


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (ids, scores) by (-score, id): every store breaks ties the same way."""
    if k <= 0:
        return ids[:0], scores[:0]
    if len(ids) > k:  # keep everything tied with the k-th score, then order by (-score, id)
        kth = np.partition(scores, len(ids) - k)[len(ids) - k]
        keep = scores >= kth
        ids, scores = ids[keep], scores[keep]
    order = np.lexsort((ids, -scores))[:k]
    return ids[order], scores[order]
