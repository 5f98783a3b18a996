"""The Qdrant dense store: vectors by integer id in the named vector "dense" (cosine).

Layout and generations: `assistant/index/qdrant_generations.py` (one collection per build, points
stamped with the generation that added / removed them, nothing copied on update; `save` writes
only the changed points, `prune` deletes the removed ones once no kept state needs them). The
chunk collection is shared with the lexical store (named sparse vector "bm25" on the same
points); sentences have their own collection. Changes wait in memory until `save`; searches see
them (the pending vectors are scored in numpy and merged).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..qdrant_generations import GenerationalStore, QdrantLocation, lexical_config
from .base import IdSet, PendingVectors


class QdrantDenseStore(PendingVectors, GenerationalStore):
    """DenseStore on Qdrant (`assistant/index/dense/base.py`)."""

    name = "qdrant"
    vector = "dense"

    def __init__(self, location: QdrantLocation, state: dict[str, Any] | None) -> None:
        super().__init__(location, state)
        self._dimension = int(self._extra.get("dimension", 0))

    @classmethod
    def open(cls, location: QdrantLocation, state: dict[str, Any] | None) -> QdrantDenseStore:
        cls._checked(location, state)
        return cls(location, state)

    @classmethod
    def open_for(cls, settings: Any, role: str, state: dict[str, Any] | None) -> QdrantDenseStore:
        """The store of `role` ("chunks" or "sentences") as `Settings` place it."""
        return cls.open(QdrantLocation.of(settings, role), state)

    def search(self, query: np.ndarray, k: int, allowed: IdSet | None = None) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, dtype=np.int64)
        records = self.local_allowed(allowed)
        if records is not None:  # local mode: score the allowed vectors here
            found = [(float(np.dot(np.asarray(r.vector[self.vector], dtype=np.float32), q)),
                      int(r.id)) for r in records if int(r.id) not in self._pending_remove]
        else:
            cond = self.allowed_condition(allowed) if allowed is not None else None
            hits = self.query(q.tolist(), k + len(self._pending_remove), cond, [])
            found = [(float(h.score), int(h.id)) for h in hits
                     if int(h.id) not in self._pending_remove]
        pending = list(self._pending_add)
        if allowed is not None:
            pending = [i for i in pending if i in _members(allowed)]
        if pending:
            scores = np.stack([self._pending_add[i] for i in pending]) @ q
            found += [(float(s), i) for s, i in zip(scores, pending)]
        found.sort(key=lambda t: (-t[0], t[1]))
        return np.asarray([i for _, i in found[:k]], dtype=np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        id_list = [int(i) for i in np.asarray(ids, dtype=np.int64).reshape(-1)]
        out = np.zeros((len(id_list), self._dimension), dtype=np.float32)
        stored = self.saved([i for i in id_list if i not in self._pending_add
                             and i not in self._pending_remove], payload=[], vectors=True)
        for row, i in enumerate(id_list):
            if i in self._pending_add:
                out[row] = self._pending_add[i]
            elif i in stored:
                out[row] = np.asarray(stored[i].vector[self.vector], dtype=np.float32)
            else:
                raise KeyError(f"id {i} is not stored")
        return out

    # -- persistence hooks --------------------------------------------------------------------

    def collection_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from qdrant_client import models

        dense = {self.vector: models.VectorParams(size=self._dimension,
                                                  distance=models.Distance.COSINE)}
        # the chunk collection makes room for the lexical store's vector on the same points
        return dense, (lexical_config() if self.location.kind == "chunks" else {})

    def point_vector(self, i: int) -> Any:
        return self._pending_add[i].tolist()

    def state(self) -> dict[str, Any]:
        return {**super().state(), "dimension": self._dimension}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "dimension": self._dimension}


def _members(allowed: IdSet) -> set[int]:
    with allowed.lock:
        members = allowed.derived.get("qdrant-set")
        if members is None:
            members = allowed.derived["qdrant-set"] = {int(i) for i in allowed.ids}
        return members  # type: ignore[no-any-return]
