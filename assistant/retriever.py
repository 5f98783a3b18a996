"""Hybrid retrieval over one loaded generation: French BM25 + dense, fused by weighted sum.

Each leg proposes its best `candidates` chunks; every candidate gets both scores (the missing one
is computed exactly: BM25 for all rows is one sparse product, a dense score one dot product), each
leg is min-max normalised over the candidates, and the fused score is
`(1 - dense_weight) * bm25 + dense_weight * dense`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .embeddings import Embedder
from .errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from .generations import current_generation, read_manifest, verify_files
from .indexer import check_compatible
from .lexical import BM25Index, analyze
from .records import Passage
from .store import FAISS, SQLITE, Database, read_dense


@dataclass
class LoadedIndex:
    """One generation, opened for reading; everything but SQLite rows is in memory."""

    path: Path
    manifest: dict[str, Any]
    db: Database
    dense: Any
    bm25: BM25Index

    @classmethod
    def open(cls, settings: Settings) -> LoadedIndex:
        path = current_generation(settings.index_dir)
        manifest = read_manifest(path)
        check_compatible(manifest, settings)
        verify_files(path, manifest)
        db = Database(path / SQLITE, readonly=True)
        db.check()
        dense = read_dense(path / FAISS)
        try:
            bm25 = BM25Index.load(path / "bm25")
        except Exception as exc:  # bm25s raises OSError, ValueError, JSONDecodeError...
            raise IndexCorruptError(
                f"Index BM25 illisible dans {path} ({exc.__class__.__name__}). {REBUILD_HINT}"
            ) from None
        _, chunks = db.counts()
        expected = manifest["corpus"].get("chunks")
        if not (dense.ntotal == len(bm25) == chunks == expected):
            raise IndexCorruptError(
                f"Index incohérent dans {path} : {dense.ntotal} vecteurs, {len(bm25)} documents "
                f"BM25, {chunks} passages en base, {expected} annoncés. {REBUILD_HINT}"
            )
        if chunks and dense.d != manifest["embedding"].get("dimension"):
            raise IndexCorruptError(f"Dimension FAISS inattendue dans {path}. {REBUILD_HINT}")
        return cls(path, manifest, db, dense, bm25)

    def close(self) -> None:
        self.db.close()


class HybridRetriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings) -> None:
        if index.dense.ntotal and embedder.dimension != index.dense.d:
            raise IndexMismatchError(
                f"Le modèle donne des vecteurs de dimension {embedder.dimension}, l'index "
                f"{index.dense.d}. {REBUILD_HINT}"
            )
        self.index = index
        self.embedder = embedder
        self.settings = settings

    def idf(self, term: str) -> float:
        return self.index.bm25.idf(term)

    def search(self, question: str, k: int) -> list[Passage]:
        scored = self.score(question, k)
        rows = self.index.db.chunks_by_id(cid for cid, _ in scored)
        return [
            Passage(cid, round(float(s), 6), *rows[cid]) for cid, s in scored if cid in rows
        ]

    def score(self, question: str, k: int) -> list[tuple[int, float]]:
        """The k best (chunk id, fused score), best first."""
        bm25, dense_index = self.index.bm25, self.index.dense
        n = len(bm25)
        if n == 0:
            return []
        depth = min(n, max(self.settings.candidates, k))
        w = self.settings.dense_weight

        lex_all = bm25.scores(analyze(question))
        lex_rows = np.argpartition(-lex_all, depth - 1)[:depth] if depth < n else np.arange(n)
        lex_rows = lex_rows[lex_all[lex_rows] > 0]
        candidates: dict[int, list[float]] = {
            int(bm25.ids[r]): [float(lex_all[r]), np.nan] for r in lex_rows
        }
        if w > 0:
            query = self.embedder.embed_query(question).reshape(1, -1)
            sims, ids = dense_index.search(query, depth)
            for cid, sim in zip(ids[0], sims[0]):
                if cid < 0:
                    continue
                entry = candidates.setdefault(int(cid), [np.nan, 0.0])
                entry[1] = float(sim)
            self._fill_missing(candidates, lex_all, query[0])
        if not candidates:
            return []
        cids = np.fromiter(candidates, dtype=np.int64)
        lex = np.array([candidates[c][0] for c in cids], dtype=np.float64)
        fused = (1 - w) * _minmax(lex)
        if w > 0:
            dense = np.array([candidates[c][1] for c in cids], dtype=np.float64)
            fused += w * _minmax(dense)
        order = np.lexsort((cids, -fused))[:k]  # ties broken by chunk id: deterministic
        return [(int(cids[i]), float(fused[i])) for i in order]

    def _fill_missing(
        self, candidates: dict[int, list[float]], lex_all: np.ndarray, query: np.ndarray
    ) -> None:
        ids = self.index.bm25.ids
        for cid, entry in candidates.items():
            if np.isnan(entry[0]):
                row = int(np.searchsorted(ids, cid))
                entry[0] = float(lex_all[row]) if row < len(ids) and ids[row] == cid else 0.0
            if np.isnan(entry[1]):
                entry[1] = float(self.index.dense.reconstruct(cid) @ query)


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)
