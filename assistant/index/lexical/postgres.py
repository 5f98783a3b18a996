"""The PostgreSQL lexical store: the local store's BM25, over term statistics kept in tables.

The terms are the product's own (`assistant.text.analysis.analyze`, given by the writer), and
the scores those of `bm25.py`, document by document: Lucene idf ln(1 + (N - df + 0.5) /
(df + 0.5)) over the live documents, term part tf / (tf + k1 * (1 - b + b * dl / avgdl)),
k1 1.5, b 0.75, a query term given twice counting twice. PostgreSQL's own `ts_rank` is not
used: it is not BM25.

Tables (one pair per build, rows stamped with generations as in `postgres_generations.py`):
    <prefix>lexical_<G0>           id, added, removed, dl (the document's length in terms)
    <prefix>lexical_<G0>_postings  term, id, tf (deleted with their document)
N and the total length of the live documents are in the state (avgdl = total / N); df is
counted in SQL over the visible documents. `search` ranks in SQL (one aggregate over the
query terms' postings) and `score` computes in numpy from the postings of the ids asked, in
the local store's order of operations; search's candidates are re-scored that way, so the two
agree to the last bit.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, IndexMismatchError
from ..dense.base import IdSet
from ..postgres_generations import PgGenerational, PgLocation, copy_rows, ids_param, visible
from .bm25 import K1, B

DF_KEPT = 50_000  # document frequencies a reader keeps (a generation never changes)


class PostgresLexicalStore(PgGenerational):
    """LexicalStore on PostgreSQL (`assistant/index/lexical/base.py`)."""

    children = ("postings",)
    remove_columns = "id, dl"

    def __init__(self, location: PgLocation, state: dict[str, Any] | None) -> None:
        super().__init__(location, state)
        self._total = int(self._extra.get("total_length", 0))
        self._removed_length = 0
        self._df: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def open_for(cls, settings: Any, state: dict[str, Any] | None) -> PostgresLexicalStore:
        location = PgLocation.of(settings, "lexical")
        cls.checked(location, state)
        if state is not None and (state.get("k1"), state.get("b")) != (K1, B):
            raise IndexMismatchError(
                f"Index lexical PostgreSQL écrit avec k1={state.get('k1')}, b={state.get('b')} ; "
                f"ce code utilise k1={K1}, b={B}. {REBUILD_HINT}")
        return cls(location, state)

    # -- changes ------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, terms: list[list[str]]) -> None:
        id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        if len(id_list) != len(terms):
            raise ValueError(f"{len(id_list)} ids for {len(terms)} term lists")
        if not id_list:
            return
        self.register_add(id_list)
        for i, doc in zip(id_list, terms):
            self._pending_add[i] = (Counter(doc), len(doc))

    def removing(self, rows: list[Any]) -> None:
        self._removed_length += sum(int(dl) for _, dl in rows)

    def _total_now(self) -> int:
        return (self._total + sum(dl for _, dl in self._pending_add.values())
                - self._removed_length)

    # -- statistics and scoring ---------------------------------------------------------------
    def _saved_df(self, terms: list[str]) -> dict[str, int]:
        """df of `terms` over the saved documents the opened generation sees (less those
        removed since open)."""
        with self._lock:  # (a term with NUL is in no text PostgreSQL holds: df 0)
            missing = sorted({t for t in terms if t not in self._df and "\x00" not in t})
        found: dict[str, int] = {}
        if missing and self._table is not None:
            t = self._table
            found = dict(self.reader.rows(
                f'SELECT p.term, count(*) FROM "{t}_postings" p JOIN "{t}" d ON d.id = p.id '
                f"WHERE p.term = ANY(%(terms)s) AND {visible('d')} GROUP BY p.term",
                {**self.params, "terms": missing}))
        with self._lock:
            if len(self._df) > DF_KEPT:
                self._df.clear()
            self._df.update((term, int(found.get(term, 0))) for term in missing)
            out = {term: self._df.get(term, 0) for term in terms}
        if self._pending_remove:  # a writer's view: its removals count already
            gone = self.reader.rows(
                f'SELECT term, count(*) FROM "{self._table}_postings" WHERE term = ANY(%s) '
                "AND id = ANY(%s) GROUP BY term", (sorted(t for t in out if out[t]),
                                                   ids_param(self._pending_remove)))
            for term, n in gone:
                out[term] -= int(n)
        return out

    def document_frequency(self, term: str) -> int:
        return self._saved_df([term])[term] + sum(
            1 for c, _ in self._pending_add.values() if term in c)

    def _weights(self, terms: list[str]) -> dict[str, float]:
        """term -> times x idf, for the query terms some live document holds, in the order
        of their first occurrence (the local store's)."""
        n = len(self)
        saved = self._saved_df(terms)
        weights = {}
        for term, times in Counter(terms).items():
            df = saved[term] + sum(1 for c, _ in self._pending_add.values() if term in c)
            if df > 0:
                weights[term] = times * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return weights

    def _avgdl(self) -> float:
        total = self._total_now()
        return total / len(self) if total else 1.0

    def score(self, terms: list[str], ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        weights = self._weights(terms)
        out = np.zeros(len(ids), dtype=np.float64)
        if not weights or not len(ids):
            return out.astype(np.float32)
        where = {int(i): row for row, i in enumerate(ids.tolist())}
        postings: dict[str, list[tuple[int, int, int]]] = {t: [] for t in weights}
        saved = [i for i in where if i not in self._pending_add and i not in self._pending_remove]
        if saved and self._table is not None:
            t = self._table
            for term, i, tf, dl in self.reader.rows(
                    f'SELECT p.term, p.id, p.tf, d.dl FROM "{t}_postings" p JOIN "{t}" d '
                    f"ON d.id = p.id WHERE p.term = ANY(%(terms)s) AND p.id = ANY(%(ids)s) "
                    f"AND {visible('d')}", {**self.params, "terms": list(weights),
                                            "ids": ids_param(saved)}):
                postings[term].append((int(i), int(tf), int(dl)))
        for i in where:
            if i in self._pending_add:
                counts, dl = self._pending_add[i]
                for term in weights:
                    if counts.get(term):
                        postings[term].append((i, counts[term], dl))
        avgdl = self._avgdl()
        for term, weight in weights.items():  # the local store's order of operations
            if not postings[term]:
                continue
            rows = np.fromiter((where[i] for i, _, _ in postings[term]), dtype=np.int64)
            tf = np.fromiter((tf for _, tf, _ in postings[term]), dtype=np.float64)
            dl = np.fromiter((dl for _, _, dl in postings[term]), dtype=np.float64)
            out[rows] += weight * tf / (tf + K1 * (1 - B + B * dl / avgdl))
        return out.astype(np.float32)

    def search(self, terms: list[str], k: int,
               allowed: IdSet | None = None) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        weights = self._weights(terms)
        if k <= 0 or not weights or (allowed is not None and len(allowed) == 0):
            return empty
        candidates: list[int] = []
        if self._table is not None:
            t = self._table
            params: dict[str, Any] = {
                **self.params, "terms": list(weights), "weights": list(weights.values()),
                "k1": K1, "b": B, "avgdl": self._avgdl(),
                "n": k + max(k, 16) + len(self._pending_remove)}
            where = visible("d")
            if allowed is not None:
                where += " AND p.id = ANY(%(ids)s)"
                params["ids"] = ids_param(allowed.ids.tolist())
            rows = self.reader.rows(
                "SELECT p.id, sum(w.weight * p.tf / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * d.dl "
                f"/ %(avgdl)s))) AS s FROM unnest(%(terms)s::text[], %(weights)s::float8[]) "
                f'AS w(term, weight) JOIN "{t}_postings" p ON p.term = w.term JOIN "{t}" d '
                f"ON d.id = p.id WHERE {where} GROUP BY p.id ORDER BY s DESC, p.id "
                "LIMIT %(n)s", params)
            candidates = [int(i) for i, _ in rows if int(i) not in self._pending_remove]
        members = None if allowed is None else set(allowed.ids.tolist())
        candidates += [i for i, (c, _) in self._pending_add.items()
                       if (members is None or i in members) and any(t in c for t in weights)]
        if not candidates:
            return empty
        ids = np.asarray(candidates, dtype=np.int64)
        scores = self.score(terms, ids)
        keep = scores > 0
        ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return ids[order], scores[order]

    # -- persistence hooks --------------------------------------------------------------------
    def create_tables(self, tx: Any, table: str) -> None:
        tx.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, added integer NOT NULL, '
                   "removed integer, dl integer NOT NULL)")
        tx.execute(f'CREATE TABLE "{table}_postings" (term text NOT NULL, id bigint NOT NULL '
                   f'REFERENCES "{table}" (id) ON DELETE CASCADE, tf integer NOT NULL, '
                   "PRIMARY KEY (term, id))")
        tx.execute(f'CREATE INDEX "{table}_postings_id" ON "{table}_postings" (id)')

    def write_added(self, tx: Any, table: str, generation: int) -> None:
        docs = sorted(self._pending_add.items())
        copy_rows(tx, table, "id, added, dl", ((i, generation, dl) for i, (_, dl) in docs))
        copy_rows(tx, f"{table}_postings", "term, id, tf",
                  ((term, i, tf) for i, (counts, _) in docs for term, tf in counts.items()))

    def save(self, generation: int) -> dict[str, Any]:
        total = self._total_now()
        state = super().save(generation)
        self._total, self._removed_length = total, 0
        with self._lock:
            self._df = {}
        return {**state, "total_length": total}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "k1": K1, "b": B, "total_length": self._total}

    def describe(self) -> dict[str, Any]:
        n = len(self)
        return {**super().describe(), "documents": n,
                "avgdl": self._total_now() / n if n else None}
