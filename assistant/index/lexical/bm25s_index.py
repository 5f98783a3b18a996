"""The BM25 index over chunks (bm25s); replaced by bm25.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class BM25Index:
    """bm25s over analyzed chunk texts; row i of the index is chunk `ids[i]`."""

    def __init__(self, bm25: Any, ids: np.ndarray) -> None:
        self._bm25 = bm25  # None for an empty corpus (bm25s cannot index zero documents)
        self.ids = ids
        self._vocab: dict[str, int] = bm25.vocab_dict if bm25 is not None else {}
        indptr = bm25.scores["indptr"] if bm25 is not None else np.zeros(1)
        self._df = np.diff(indptr)  # documents per vocabulary term (CSC columns are terms)

    @classmethod
    def build(cls, ids: list[int], token_lists: list[list[str]]) -> BM25Index:
        import bm25s

        if not ids:
            return cls(None, np.zeros(0, dtype=np.int64))
        bm25 = bm25s.BM25()
        bm25.index([toks or [""] for toks in token_lists], show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def save(self, directory: Path) -> None:
        if self._bm25 is not None:
            self._bm25.save(str(directory), show_progress=False)
        np.save(directory / "chunk_ids.npy", self.ids, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        import bm25s

        ids = np.load(directory / "chunk_ids.npy", allow_pickle=False)
        if len(ids) == 0:
            return cls(None, ids)
        bm25 = bm25s.BM25.load(str(directory), mmap=False, allow_pickle=False, show_progress=False)
        return cls(bm25, ids)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every row for the query terms (unknown terms count for nothing)."""
        known = [t for t in terms if t in self._vocab]
        if not known or len(self.ids) == 0:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def idf(self, term: str) -> float:
        """Inverse document frequency of an analyzed term (high for unseen terms)."""
        n = max(len(self.ids), 1)
        df = int(self._df[self._vocab[term]]) if term in self._vocab else 0
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

    def describe(self) -> dict[str, Any]:
        return {"documents": len(self.ids), "vocabulary": len(self._vocab)}
