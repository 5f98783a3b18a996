"""The contract of a dense store: vectors by integer id, searched by inner product.

Ids are the catalog's chunk ids or sentence ids (one store each). Vectors are normalised, so the
inner product is the cosine. A store is opened at one published state (what a generation's
manifest recorded, or None for an empty store), changed in memory with `add` / `remove`, and
`save` makes the changes durable under a new generation name and returns the state to record.
What `save` writes never overwrites what an earlier state refers to: a reader of the previous
generation keeps working, and a writer killed half-way leaves only unreferenced files, removed
by `prune`. Implementations: `faiss.py` (embedded default), `qdrant.py`; `factory.py` picks one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np


class IdSet:
    """Ids a search is restricted to (the rows of the articles a filter lets through), sorted
    and unique. Built once per filter and shared by threads: a backend may keep what it derives
    from them (a FAISS selector, a Qdrant filter) in `derived`, under `lock`."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))
        self.derived: dict[str, Any] = {}
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)


class DenseStore(Protocol):
    name: str  # the factory name that opens it ("faiss", "qdrant")

    @property
    def dimension(self) -> int: ...  # 0 while empty and never given a vector

    def __len__(self) -> int: ...  # live vectors

    def load(self) -> None:
        """Read and verify everything now (a store may defer it to the first search, so that a
        writer adding a few rows never reads the rest); readers call it at start, so a damaged
        file is refused at once. IndexCorruptError on damage."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...  # unknown ids are ignored

    def search(self, query: np.ndarray, k: int, allowed: IdSet | None = None) -> np.ndarray:
        """Ids of the (at most) k stored vectors closest to `query` (among `allowed`), best
        first, as int64."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` (all present), shape (len(ids), dimension), float32."""
        ...

    def save(self, generation: int) -> dict[str, Any]:
        """Make the changes durable as generation number `generation` (strictly increasing in
        one index); the JSON-able state a manifest records to reopen them (it names the
        backend: `{"backend": name, ...}`)."""
        ...

    def prune(self, keep: list[dict[str, Any]]) -> None:
        """Delete what none of the states `keep` (the generations still served) refers to:
        files of older generations, or of writers killed half-way."""
        ...

    def describe(self) -> dict[str, Any]: ...  # backend, kind, counts: for `index info`


def checked_rows(ids: np.ndarray, vectors: np.ndarray,
                 dimension: int) -> tuple[list[int], np.ndarray]:
    """The ids of an `add` as ints and its vectors as float32 rows, checked: one vector per id,
    of the store's `dimension` (0: not known yet). ValueError otherwise."""
    id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
    rows = np.asarray(vectors, dtype=np.float32)
    if rows.ndim != 2 or len(rows) != len(id_list):
        raise ValueError(f"{len(id_list)} ids for vectors of shape {rows.shape}")
    if id_list and dimension and rows.shape[1] != dimension:
        raise ValueError(f"vectors of dimension {rows.shape[1]}, store holds {dimension}")
    return id_list, rows


class PendingVectors:
    """`dimension` and `add` of a store that keeps the vectors added since its last save until
    `save` writes them (the Qdrant and PostgreSQL stores: their generational base provides
    `register_add`)."""

    _dimension: int
    register_add: Callable[[list[int], Sequence[Any]], None]

    @property
    def dimension(self) -> int:
        return self._dimension

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        id_list, rows = checked_rows(ids, vectors, self._dimension)
        if id_list:
            self.register_add(id_list, [row.copy() for row in rows])
            self._dimension = int(rows.shape[1])
