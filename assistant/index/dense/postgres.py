"""The PostgreSQL dense store: vectors by integer id in a pgvector column, searched by cosine.

One table per build, `<prefix><role>_<G0>` (id, added, removed, embedding vector(d)); rows are
stamped with the generations that added and removed them (`postgres_generations.py`). Below
`Settings.postgres_hnsw_min_rows` live vectors a search is exact (a scan, ordered by distance
then id); from there on `save` builds an HNSW index (cosine, `m` and `ef_construction` from
the settings) and searches walk it (`hnsw.ef_search`, with pgvector's iterative scan so that
the generation and article filters do not starve the result). A filter to a few rows is always
exact. Vectors go in and out as text, whose float4 values round-trip exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..postgres_generations import PgGenerational, PgLocation, copy_rows, ids_param, visible
from .base import IdSet, PendingVectors

EXACT_ALLOWED = 5_000  # a filter to at most this many rows: exact search over them


def vector_text(row: np.ndarray) -> str:
    """A float32 vector as pgvector's text form (each value's shortest exact decimal)."""
    return "[" + ",".join(map(repr, np.asarray(row, dtype=np.float32).tolist())) + "]"


def parse_vector(text: str) -> np.ndarray:
    return np.array(text[1:-1].split(","), dtype=np.float32)


class PostgresDenseStore(PendingVectors, PgGenerational):
    """DenseStore on PostgreSQL + pgvector (`assistant/index/dense/base.py`)."""

    def __init__(self, location: PgLocation, state: dict[str, Any] | None, *,
                 hnsw_min_rows: int = 10_000, hnsw_m: int = 16,
                 hnsw_ef_construction: int = 64) -> None:
        super().__init__(location, state)
        self._dimension = int(self._extra.get("dimension", 0))
        self._hnsw = bool(self._extra.get("hnsw", False))
        self.hnsw_min_rows, self.hnsw_m = hnsw_min_rows, hnsw_m
        self.hnsw_ef_construction = hnsw_ef_construction

    @classmethod
    def open_for(cls, settings: Any, role: str,
                 state: dict[str, Any] | None) -> PostgresDenseStore:
        """The store of `role` ("chunks" or "sentences") as `Settings` place it."""
        location = PgLocation.of(settings, role)
        cls.checked(location, state)
        return cls(location, state, hnsw_min_rows=settings.postgres_hnsw_min_rows,
                   hnsw_m=settings.postgres_hnsw_m,
                   hnsw_ef_construction=settings.postgres_hnsw_ef_construction)

    def search(self, query: np.ndarray, k: int, allowed: IdSet | None = None) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, dtype=np.int64)
        found: list[tuple[float, int]] = []
        if self._table is not None:
            params: dict[str, Any] = {**self.params, "q": vector_text(q),
                                      "k": k + len(self._pending_remove)}
            where = visible()
            if allowed is not None:
                where += " AND id = ANY(%(ids)s)"
                params["ids"] = _allowed_param(allowed)
            exact = not self._hnsw or (allowed is not None and len(allowed) <= EXACT_ALLOWED)
            # a second sort key keeps the planner off the HNSW index: an exact scan
            order = "embedding <=> %(q)s, id" if exact else "embedding <=> %(q)s"
            rows = self.reader.rows(
                f'SELECT id, embedding <=> %(q)s FROM "{self._table}" WHERE {where} '
                f"ORDER BY {order} LIMIT %(k)s", params)
            found = [(float(d), int(i)) for i, d in rows if int(i) not in self._pending_remove]
        pending = list(self._pending_add)
        if allowed is not None:
            members = set(allowed.ids.tolist())
            pending = [i for i in pending if i in members]
        if pending:
            scores = np.stack([self._pending_add[i] for i in pending]) @ q
            found += [(1.0 - float(s), i) for s, i in zip(scores, pending)]
        found.sort()
        return np.asarray([i for _, i in found[:k]], dtype=np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        out = np.zeros((len(id_list), self._dimension), dtype=np.float32)
        wanted = [i for i in id_list if i not in self._pending_add
                  and i not in self._pending_remove]
        stored: dict[int, str] = {}
        if wanted and self._table is not None:
            stored = dict(self.reader.rows(
                f'SELECT id, embedding::text FROM "{self._table}" WHERE id = ANY(%(ids)s) '
                f"AND {visible()}", {**self.params, "ids": ids_param(wanted)}))
        for row, i in enumerate(id_list):
            if i in self._pending_add:
                out[row] = self._pending_add[i]
            elif i in stored:
                out[row] = parse_vector(stored[i])
            else:
                raise KeyError(f"id {i} is not stored")
        return out

    # -- persistence hooks --------------------------------------------------------------------
    def create_tables(self, tx: Any, table: str) -> None:
        tx.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, added integer NOT NULL, '
                   f"removed integer, embedding vector({self._dimension}) NOT NULL)")

    def write_added(self, tx: Any, table: str, generation: int) -> None:
        copy_rows(tx, table, "id, added, embedding",
                  ((i, generation, vector_text(v)) for i, v in sorted(self._pending_add.items())))

    def saved_changes(self, tx: Any, table: str) -> None:
        if not self._hnsw and len(self) >= max(self.hnsw_min_rows, 1):
            tx.execute(f'CREATE INDEX "{table}_hnsw" ON "{table}" USING hnsw '
                       f"(embedding vector_cosine_ops) WITH (m = {int(self.hnsw_m)}, "
                       f"ef_construction = {int(self.hnsw_ef_construction)})")
            self._hnsw = True

    def state(self) -> dict[str, Any]:
        return {**super().state(), "dimension": self._dimension, "hnsw": self._hnsw}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dimension": self._dimension,
                "search": "hnsw" if self._hnsw else "exact"}


def _allowed_param(allowed: IdSet) -> str:
    """The ids of a filter as one bigint[] parameter, made once per filter."""
    with allowed.lock:
        text = allowed.derived.get("postgres")
        if text is None:
            text = allowed.derived["postgres"] = ids_param(allowed.ids.tolist())
        return str(text)
