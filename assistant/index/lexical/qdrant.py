"""The Qdrant lexical store: BM25 as a named sparse vector "bm25" with Qdrant's IDF modifier.

A chunk's sparse vector holds, for each distinct analyzed term, BM25's term part
tf / (tf + k1 * (1 - b + b * dl / avgdl)) (k1 1.5, b 0.75) at index blake2b-32(term); a query
is the number of times each term occurs at its index, and Qdrant multiplies by its IDF,
ln(1 + (N - df + 0.5) / (df + 0.5)): Lucene's, as bm25s and `base.idf`. Two limits follow:
 - avgdl is frozen: recorded in the state by the first save that holds documents and kept, since
   stored vectors cannot follow it; `describe` shows the frozen and the current value (a full
   `index build` refreshes it).
 - Qdrant counts N and df over every point holding the vector, including those other
   generations see (removed but not yet pruned, or written by a writer not yet published).
   So Qdrant only ranks candidates: `search` and `score` compute the exact BM25 of the live
   documents client side, from the stored term parts and exact df (`document_frequency`, a
   count on the `terms` keyword payload, cached per store), weights times query repetitions.
Term indices are a 32-bit hash: two terms collide with probability ~V^2 / 2^33 (about 5 pairs
for 200,000 terms); colliding terms of one chunk add up in one index, and a query term then
matches the other term's documents. df stays exact (it counts terms, not indices).
Layout, generations, save and prune: `assistant/index/qdrant_generations.py`.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, ConfigError, IndexMismatchError
from ..dense.base import IdSet
from ..qdrant_generations import GenerationalStore, QdrantLocation
from .base import checked_documents
from .bm25 import K1, B

HASH = "blake2b-32"


def term_index(term: str) -> int:
    """The sparse index of an analyzed term (stable across processes and versions)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def term_parts(counts: Counter[str], dl: int, avgdl: float) -> dict[int, float]:
    """The sparse vector of a document (term counts, length) as {index: BM25 term part}."""
    norm = K1 * (1 - B + B * dl / avgdl)
    out: dict[int, float] = {}
    for term, tf in counts.items():
        j = term_index(term)
        out[j] = out.get(j, 0.0) + float(np.float32(tf / (tf + norm)))
    return out


class QdrantLexicalStore(GenerationalStore):
    """LexicalStore on Qdrant (`assistant/index/lexical/base.py`)."""

    name = "qdrant"
    vector = "bm25"

    def __init__(self, location: QdrantLocation, state: dict[str, Any] | None) -> None:
        super().__init__(location, state)
        avgdl = self._extra.get("avgdl")
        self._avgdl: float | None = float(avgdl) if avgdl is not None else None
        self._total = int(self._extra.get("total_length", 0))  # terms of the live documents
        self._df: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, location: QdrantLocation,
             state: dict[str, Any] | None) -> QdrantLexicalStore:
        if location.kind != "chunks":
            raise ConfigError("Le magasin lexical Qdrant n'indexe que les passages (« chunks »).")
        cls._checked(location, state)
        if state is not None and (state.get("k1"), state.get("b"), state.get("hash")) != (
                K1, B, HASH):
            raise IndexMismatchError(
                f"Index lexical Qdrant écrit avec k1={state.get('k1')}, b={state.get('b')}, "
                f"{state.get('hash')} ; ce code utilise k1={K1}, b={B}, {HASH}. {REBUILD_HINT}")
        return cls(location, state)

    @classmethod
    def open_for(cls, settings: Any, state: dict[str, Any] | None) -> QdrantLexicalStore:
        """The store of the chunks as `Settings` place it."""
        return cls.open(QdrantLocation.of(settings, "chunks"), state)

    # -- changes ------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, terms: list[list[str]]) -> None:
        self.register_add(checked_documents(ids, terms),
                          [(Counter(doc), len(doc)) for doc in terms])

    def _total_now(self) -> int:
        return (self._total + sum(dl for _, dl in self._pending_add.values())
                - sum(int(p.get("dl", 0)) for p in self._pending_remove.values()))

    def _avgdl_now(self) -> float:
        """The avgdl new documents are stored with: the frozen one, else the live average."""
        if self._avgdl is not None:
            return self._avgdl
        total = self._total_now()
        return total / len(self) if total else 1.0

    # -- statistics and scoring ---------------------------------------------------------------

    def _saved_df(self, term: str) -> int:
        from qdrant_client import models

        if self._collection is None:
            return 0
        with self._lock:
            if term in self._df:
                return self._df[term]
        flt = self.visible_filter()  # the term first: local mode stops at the first failure
        flt.must.insert(0, models.FieldCondition(key="terms",
                                                 match=models.MatchValue(value=term)))
        df = int(self.conn.call(self.conn.client.count, self._collection, count_filter=flt,
                                exact=True).count)
        with self._lock:
            self._df[term] = df
        return df

    def _prefetch_df(self, terms: list[str]) -> None:
        """Local mode evaluates payload filters point by point: count several terms in one
        pass (the documents holding any of them) rather than one pass per term."""
        from qdrant_client import models

        with self._lock:
            missing = sorted({t for t in terms if t not in self._df})
        if len(missing) < 2 or not self.conn.local or self._collection is None:
            return
        flt = self.visible_filter()
        flt.must.insert(0, models.FieldCondition(key="terms", match=models.MatchAny(any=missing)))
        found = Counter(t for r in self.scroll(self._collection, flt, payload=["terms"])
                        for t in (r.payload or {}).get("terms", ()))
        with self._lock:
            self._df.update((t, found[t]) for t in missing)

    def document_frequency(self, term: str) -> int:
        return (self._saved_df(term)
                + sum(1 for c, _ in self._pending_add.values() if term in c)
                - sum(1 for p in self._pending_remove.values() if term in p.get("terms", ())))

    def _weights(self, terms: list[str]) -> tuple[dict[int, float], dict[int, float]]:
        """({index: times x idf}, {index: times}) of the query terms found in some live
        document (Lucene idf over the live documents)."""
        self._prefetch_df(terms)
        n = max(len(self), 1)
        weights: dict[int, float] = {}
        times_of: dict[int, float] = {}
        for term, times in Counter(terms).items():
            df = self.document_frequency(term)
            if df > 0:
                j = term_index(term)
                weights[j] = weights.get(j, 0.0) + times * math.log(
                    1.0 + (n - df + 0.5) / (df + 0.5))
                times_of[j] = times_of.get(j, 0.0) + times
        return weights, times_of

    def _pending_parts(self, i: int, avgdl: float) -> dict[int, float]:
        counts, dl = self._pending_add[i]
        return term_parts(counts, dl, avgdl)

    @staticmethod
    def _parts(record: Any) -> dict[int, float]:
        vec = (record.vector or {}).get("bm25")
        return dict(zip(vec.indices, vec.values)) if vec is not None else {}

    def score(self, terms: list[str], ids: np.ndarray) -> np.ndarray:
        id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        out = np.zeros(len(id_list), dtype=np.float32)
        weights = self._weights(terms)[0]
        if not weights:
            return out
        stored = self.saved([i for i in id_list if i not in self._pending_add
                             and i not in self._pending_remove], payload=[], vectors=True)
        avgdl = self._avgdl_now() if self._pending_add else 1.0
        for row, i in enumerate(id_list):
            parts = (self._pending_parts(i, avgdl) if i in self._pending_add
                     else self._parts(stored[i]) if i in stored else {})
            out[row] = sum(w * parts.get(j, 0.0) for j, w in weights.items())
        return out

    def search(self, terms: list[str], k: int,
               allowed: IdSet | None = None) -> tuple[np.ndarray, np.ndarray]:
        from qdrant_client import models

        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        weights, times_of = self._weights(terms)
        if k <= 0 or not weights or (allowed is not None and len(allowed) == 0):
            return empty
        hits = self.local_allowed(allowed)  # local mode: every allowed document, scored here
        if hits is None:
            cond = self.allowed_condition(allowed) if allowed is not None else None
            query = models.SparseVector(indices=list(times_of), values=list(times_of.values()))
            # Qdrant ranks with its own statistics: a margin of candidates, scored exactly here
            hits = self.query(query, k + max(k, 16) + len(self._pending_remove), cond, [],
                              with_vector=True)
        cands = {int(h.id): self._parts(h) for h in hits if int(h.id) not in self._pending_remove}
        members = None if allowed is None else set(allowed.ids.tolist())
        avgdl = self._avgdl_now() if self._pending_add else 1.0
        for i in self._pending_add:
            if members is None or i in members:
                parts = self._pending_parts(i, avgdl)
                if any(j in parts for j in weights):
                    cands[i] = parts
        scored = [(float(np.float32(sum(w * p.get(j, 0.0) for j, w in weights.items()))), i)
                  for i, p in cands.items()]
        scored = sorted((t for t in scored if t[0] > 0), key=lambda t: (-t[0], t[1]))[:k]
        if not scored:
            return empty
        return (np.asarray([i for _, i in scored], dtype=np.int64),
                np.asarray([s for s, _ in scored], dtype=np.float32))

    # -- persistence hooks --------------------------------------------------------------------

    def collection_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from ..qdrant_generations import lexical_config

        return {}, lexical_config()  # the dense store adds "dense" when it first saves here

    def payload_indexes(self) -> dict[str, Any]:
        from qdrant_client import models

        return {**super().payload_indexes(), "terms": models.PayloadSchemaType.KEYWORD}

    def point_vector(self, i: int) -> Any:
        from qdrant_client import models

        parts = self._pending_parts(i, self._avgdl or 1.0)  # frozen by `save` before writing
        return models.SparseVector(indices=list(parts), values=list(parts.values()))

    def point_payload(self, i: int) -> dict[str, Any]:
        counts, dl = self._pending_add[i]
        return {"terms": sorted(counts), "dl": dl}

    def save(self, generation: int) -> dict[str, Any]:
        if self._avgdl is None and self._pending_add and self._total_now() > 0:
            self._avgdl = self._avgdl_now()  # frozen from now on
        return super().save(generation)

    def saved_changes(self) -> None:
        self._total = self._total_now()
        with self._lock:
            self._df = {}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "k1": K1, "b": B, "hash": HASH, "avgdl": self._avgdl,
                "total_length": self._total}

    def describe(self) -> dict[str, Any]:
        n = len(self)
        return {**super().describe(), "documents": n, "avgdl": self._avgdl,
                "avgdl_now": self._total_now() / n if n else None}
