"""The embedded default dense store: FAISS, saved as segments so an update writes its change.

FAISS is imported here and in `faiss_index.py` (the index kinds, built, read, searched with a
filter) alone. Ids are chunk or sentence ids. Index kinds: `flat` (exact,
IndexIDMap2 over IndexFlatIP), `ivf` (IndexIVFFlat, inner product, removal in place), `hnsw`
(IndexIDMap2 over IndexHNSWFlat: no removal, so a removal rebuilds it).

On disk, in the store's own directory (file names carry the generation that wrote them; the
state lists each one with its size, sha256 and rows):
    base-<gen>.faiss    immutable FAISS index: everything live when it was written
    base-<gen>.ids.npy  immutable sorted ids of that base (8 bytes a vector): what a writer reads
                        to know which ids are stored, instead of the vectors
    delta-<gen>.npz     immutable `ids` + `vectors` (sorted by id) added by one saved
                        generation and present when it was saved, or merged from the deltas
                        before it (nothing is written for a generation that added none)
    tomb-<gen>.npy      the ids removed from base/deltas since the base was written (small,
                        rewritten only when it changes)
Opening is lazy. `open` reads the state, opens each listed file and checks its size (the open
descriptors keep what was checked readable even if a later prune deletes it). The ids (base
sidecar, deltas' `ids`, tombstones) are read on the first `add` / `remove`; base + deltas are
loaded into ONE FAISS index, tombstones removed, every file's sha256 verified, only on the first
search, `load` or compaction (once, under a lock), so searching is plain FAISS and an update that
adds an article writes its delta without reading the base. `vectors` on a store not loaded reads
only the vectors asked for: from the rows added, the deltas' rows, and the base mapped in memory;
so a writer reading a few vectors back (an article changed) does not hash the whole base: the
sizes checked at `open` are its integrity check there (a full load, servers and compaction,
still verifies every sha256). The files themselves (open, check, read, write durably: `.tmp`,
fsync'ed, renamed, then the directory fsync'ed) are `segments.py`'s.

Merge policy (decided on counts alone), in tiers. A save writes the rows added since the last
one as a delta, and the tombstones if they changed. When there would be more than
DELTA_MAX_FILES deltas, it merges the deltas instead: their live rows and the new ones into one
delta, the tombstones of the merged rows dropped, read from the deltas alone (the base is not
opened). It compacts (a new base from everything live, no delta, no tombstone) only when the
deltas hold more than DELTA_MAX_RATIO of the base's rows, when tombstones exceed TOMB_MAX_RATIO of
the rows in files, when the kind must change (`auto`: see `choose_index_type`), when an id
already in files is added again, and on any change of an HNSW store (HNSW cannot remove in
place, so it is rewritten whole). Amortised: the base is rewritten once per ~10% of growth, a
delta merge (at most ~10% of the base) comes once per DELTA_MAX_FILES updates, every other
update writes its own rows only.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from ..files import fsync_path
from .base import IdSet
from .faiss_index import (
    FLAT_MAX,
    all_vectors,
    choose_index_type,
    index_ids,
    index_kind,
    ivf_lists,
    map_index,
    new_dense_index,
    read_index,
    search_params,
    without,
    write_index,
)
from .segments import Segments, npy_bytes

# The index helpers live in faiss_index.py; the ones other modules import from here stay here.
__all__ = ["FLAT_MAX", "FaissStore", "choose_index_type", "index_kind", "ivf_lists",
           "new_dense_index"]

#: A filter allowing at most this many vectors scores them all exactly (one matrix product);
#: a larger one is searched in the index with an id selector.
EXACT_MAX = 4096

DELTA_MAX_RATIO = 0.10  # delta rows beyond this share of the base's rows: compact
DELTA_MAX_FILES = 16  # more delta files than this: merge the deltas into one
TOMB_MAX_RATIO = 0.10  # tombstones beyond this share of the rows in files: compact

_EMPTY = np.zeros(0, dtype=np.int64)


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of `ids` are in `sorted_ids` (sorted, unique): a boolean mask."""
    pos = np.searchsorted(sorted_ids, ids)
    found = pos < len(sorted_ids)
    found[found] = sorted_ids[pos[found]] == ids[found]
    return found


def _merged(sorted_ids: np.ndarray, more: np.ndarray) -> np.ndarray:
    """Sorted `sorted_ids` with the sorted `more` (none of them in it) inserted: O(n), where a
    union would sort a million ids again."""
    return np.insert(sorted_ids, np.searchsorted(sorted_ids, more), more) if len(more) \
        else sorted_ids


class FaissStore:
    """Vectors by id in one FAISS index, saved as base + deltas + tombstones, loaded lazily."""

    name = "faiss"

    def __init__(self, root: Path, index_type: str) -> None:
        if index_type not in ("auto", "flat", "ivf", "hnsw"):
            raise ValueError(f"unknown FAISS index type {index_type!r}")
        self.root = root
        self.index_type = index_type
        self._lock = threading.Lock()  # the first search may come from several threads at once
        self._loaded = True  # False: opened at a state whose files are not read into _index yet
        self._index: Any = None
        self._dim = 0
        self._count = 0  # live vectors
        self._kind: str | None = None  # of the saved base (None: no base yet)
        self._generation = -1  # of the state this store is at (-1: none saved yet)
        self._base: dict[str, Any] | None = None  # segment entries, as the state lists them
        self._base_ids: dict[str, Any] | None = None
        self._deltas: list[dict[str, Any]] = []
        self._tomb: dict[str, Any] | None = None
        # sorted ids in base + deltas (tombstoned ones included), and of the file rows removed
        # since the base was written; None: not read yet (both are read together)
        self._file_ids: np.ndarray | None = _EMPTY
        self._tombs: np.ndarray | None = _EMPTY
        self._pending = _EMPTY  # sorted: ids added since the last save, still present
        # the vectors of `_pending` while not loaded (once loaded, they are in `_index`)
        self._buf_ids, self._buf_vectors = _EMPTY, np.zeros((0, 0), dtype=np.float32)
        self._tombs_changed = False
        self._must_compact = False
        self._files = Segments(root)  # opened (size checked) at `open`, closed once loaded

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, state: dict[str, Any] | None, *, index_type: str = "auto"
             ) -> FaissStore:
        root.mkdir(parents=True, exist_ok=True)
        store = cls(root, index_type)
        if state is not None:
            if state.get("backend") != cls.name:
                raise IndexMismatchError(
                    f"L'index dense de {root} a été écrit par « {state.get('backend')} », "
                    f"pas par « faiss ». {REBUILD_HINT}")
            try:
                store._open_state(state)
            except (KeyError, TypeError, ValueError) as exc:
                store._files.close_all()
                raise IndexCorruptError(
                    f"L'état de l'index dense de {root} est invalide ({exc}). {REBUILD_HINT}"
                ) from None
            except BaseException:
                store._files.close_all()
                raise
        return store

    def _open_state(self, state: dict[str, Any]) -> None:
        """The state's numbers, its files opened and their sizes checked: nothing read."""
        self._generation = int(state["generation"])
        self._dim = int(state["dimension"])
        self._base, self._deltas = state["base"], list(state["deltas"])
        self._base_ids = state.get("base_ids")  # absent from states written before it existed
        self._tomb, self._kind = state["tombstones"], state["kind"]
        self._count = int(state["count"])
        self._buf_vectors = np.zeros((0, self._dim), dtype=np.float32)
        if self._base is None:
            if self._deltas or self._tomb or self._base_ids or self._count:
                raise ValueError("segments sans base")
            return
        if self._kind not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"type d'index inconnu {self._kind!r}")
        for entry in [self._base, self._base_ids, *self._deltas, self._tomb]:
            if entry is not None:
                self._files.open(entry)
        rows = (int(self._base["rows"]) + sum(int(d["rows"]) for d in self._deltas)
                - (int(self._tomb["rows"]) if self._tomb else 0))
        if rows != self._count:
            raise IndexCorruptError(f"L'index dense de {self.root} compte {self._count} "
                                    f"vecteurs, ses segments {rows}. {REBUILD_HINT}")
        self._loaded, self._file_ids, self._tombs = False, None, None

    def _delta(self, entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of a delta, verified."""
        ids, vectors = self._files.arrays(entry, "ids", "vectors")
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if ids.ndim != 1 or vectors.shape != (len(ids), self._dim):
            raise IndexCorruptError(f"{self.root / entry['file']} a une forme inattendue. "
                                    f"{REBUILD_HINT}")
        return ids, vectors

    def _know_ids(self) -> None:
        """Read which ids the files hold and which are tombstoned (not the vectors)."""
        if self._file_ids is None:
            with self._lock:
                if self._file_ids is None:
                    self._read_ids()

    def _read_ids(self) -> None:  # under the lock
        assert self._base is not None
        if self._base_ids is None:  # a state from before the sidecar: the ids are in the index
            self._load()
            return
        parts = [self._files.arrays(self._base_ids)[0]]
        parts += [np.sort(self._files.arrays(d, "ids", verify=False)[0]) for d in self._deltas]
        tombs = np.unique(self._files.arrays(self._tomb)[0]) if self._tomb else _EMPTY
        expected = [self._base["rows"], *(d["rows"] for d in self._deltas)]
        if [len(p) for p in parts] != [int(r) for r in expected] or (
                self._tomb and len(tombs) != int(self._tomb["rows"])):
            raise IndexCorruptError(f"Les identifiants de l'index dense de {self.root} ne "
                                    f"correspondent pas à l'état enregistré. {REBUILD_HINT}")
        file_ids = parts[0].astype(np.int64)
        for ids in parts[1:]:
            file_ids = _merged(file_ids, ids.astype(np.int64))
        self._tombs, self._file_ids = tombs.astype(np.int64), file_ids

    def load(self) -> None:
        """Read and verify everything into memory now (else done on first need); once."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._load()

    def _load(self) -> None:  # under the lock
        assert self._base is not None
        if self._file_ids is None and self._base_ids is not None:
            self._read_ids()
        self._files.verify(self._base)
        with self._files.file(self._base) as f:
            index = read_index(f, self.root / self._base["file"])
        if index_kind(index) != self._kind or index.d != self._dim:
            raise IndexCorruptError(f"{self.root / self._base['file']} ne correspond pas à "
                                    f"l'état enregistré. {REBUILD_HINT}")
        fallback = self._file_ids is None  # an older state (no sidecar), not changed yet
        parts = [index_ids(index)] if fallback else []
        for entry in self._deltas:
            ids, vectors = self._delta(entry)
            index.add_with_ids(vectors, ids)
            parts.append(ids)
        if fallback:
            self._file_ids = np.unique(np.concatenate(parts))
            self._tombs = np.unique(self._files.arrays(self._tomb)[0]).astype(np.int64) \
                if self._tomb else _EMPTY
        assert self._tombs is not None
        if len(self._tombs):
            index = without(index, self._tombs)
        if len(self._buf_ids):  # added since `open`
            index.add_with_ids(self._buf_vectors, self._buf_ids)
        if index.ntotal != self._count:
            raise IndexCorruptError(f"L'index dense de {self.root} compte {index.ntotal} "
                                    f"vecteurs au lieu de {self._count}. {REBUILD_HINT}")
        self._buf_ids, self._buf_vectors = _EMPTY, np.zeros((0, self._dim), dtype=np.float32)
        self._index = index
        self._loaded = True
        self._files.close_all()  # all in memory now

    # -- the contract --------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return self._dim

    def __len__(self) -> int:
        return self._count

    def _live(self, ids: np.ndarray) -> np.ndarray:
        """Which of `ids` are stored now: a boolean mask (the ids must be known)."""
        assert self._file_ids is not None and self._tombs is not None
        in_files = _member(self._file_ids, ids) & ~_member(self._tombs, ids)
        return in_files | _member(self._pending, ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(ids), -1)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        if self._dim and vectors.shape[1] != self._dim:
            raise ValueError(f"vectors of dimension {vectors.shape[1]}, store has {self._dim}")
        self._know_ids()
        assert self._file_ids is not None
        self.remove(ids[self._live(ids)])  # adding a stored id replaces its vector
        if _member(self._file_ids, ids).any():  # a tombstone would hide the new copy on load
            self._must_compact = True
        if not self._loaded:  # kept aside: the next save writes them without the base
            self._buf_ids = np.concatenate([self._buf_ids, ids])
            self._buf_vectors = np.concatenate([self._buf_vectors, vectors])
        else:
            if self._index is None:
                kind = self._target_kind(len(ids))
                self._index = new_dense_index(kind, vectors.shape[1],
                                              train=vectors if kind == "ivf" else None)
                self._dim = vectors.shape[1]
            self._index.add_with_ids(vectors, ids)
        self._pending = np.union1d(self._pending, ids)
        self._count += len(ids)

    def remove(self, ids: np.ndarray) -> None:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        if len(ids) == 0 or self._count == 0:
            return
        self._know_ids()
        assert self._file_ids is not None and self._tombs is not None
        in_pending = _member(self._pending, ids)
        in_files = _member(self._file_ids, ids) & ~_member(self._tombs, ids) & ~in_pending
        gone = ids[in_pending | in_files]
        if len(gone) == 0:
            return
        if not self._loaded:
            keep = ~_member(ids[in_pending], self._buf_ids)
            self._buf_ids, self._buf_vectors = self._buf_ids[keep], self._buf_vectors[keep]
        else:
            self._index = without(self._index, gone)
        self._pending = np.setdiff1d(self._pending, ids[in_pending], assume_unique=True)
        self._count -= len(gone)
        if in_files.any():
            self._tombs = np.union1d(self._tombs, ids[in_files])
            self._tombs_changed = True

    def search(self, query: np.ndarray, k: int, allowed: IdSet | None = None) -> np.ndarray:
        """Ids of the (at most) k stored vectors closest to `query` (among `allowed`), best
        first: a small `allowed` is scored exactly, a large one searched with a selector."""
        if k <= 0 or self._count == 0:
            return np.zeros(0, dtype=np.int64)
        self.load()
        query = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        if allowed is None:
            _, found = self._index.search(query.reshape(1, -1), k)
            return found[0][found[0] >= 0].astype(np.int64)
        if len(allowed) <= EXACT_MAX:
            ids = allowed.ids
            try:
                vectors = self._index.reconstruct_batch(ids)
            except RuntimeError:  # ids the store lacks: score the present ones
                ids = ids[self._live(ids)]
                vectors = self._index.reconstruct_batch(ids)
            k = min(k, len(ids))
            if k == 0:
                return np.zeros(0, dtype=np.int64)
            scores = vectors @ query
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(k)
            return ids[top[np.lexsort((ids[top], -scores[top]))]]
        k = min(k, len(allowed))
        params = search_params(self._index, allowed, k)
        _, found = self._index.search(query.reshape(1, -1), k, params=params)
        return found[0][found[0] >= 0].astype(np.int64)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) == 0:
            return np.zeros((0, self._dim), dtype=np.float32)
        self._know_ids()
        if not self._live(ids).all():
            raise KeyError(f"ids absents de l'index dense : {ids[~self._live(ids)][:5]}")
        if not self._loaded:
            return self._read_vectors(ids)
        return np.asarray(self._index.reconstruct_batch(ids), dtype=np.float32)

    def _read_vectors(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of `ids` (all live) without loading: the added ones from the buffer,
        the others read where they are, from the deltas (their `ids`, then those rows) and
        from the base mapped in memory. Sizes were checked at `open`; no file is hashed here
        (a writer reading a few vectors back does not read the whole base); `load` does."""
        assert self._base is not None
        out = np.empty((len(ids), self._dim), dtype=np.float32)
        todo = np.ones(len(ids), dtype=bool)
        if len(self._buf_ids):
            order = np.argsort(self._buf_ids)
            found = _member(self._buf_ids[order], ids)
            out[found] = self._buf_vectors[order[np.searchsorted(self._buf_ids[order],
                                                                 ids[found])]]
            todo &= ~found
        for entry in self._deltas:
            if not todo.any():
                break
            stored = np.asarray(self._files.arrays(entry, "ids", verify=False)[0], np.int64)
            order = np.argsort(stored)
            found = todo & _member(stored[order], ids)
            if found.any():
                rows = order[np.searchsorted(stored[order], ids[found])]
                got = self._files.rows(entry, "vectors", rows)
                if got.shape != (len(rows), self._dim):
                    raise IndexCorruptError(f"{self.root / entry['file']} a une forme "
                                            f"inattendue. {REBUILD_HINT}")
                out[found] = got
                todo &= ~found
        if todo.any():
            path = self.root / self._base["file"]
            index = map_index(self._files.mapped_path(self._base), path)
            if (index_kind(index) != self._kind or index.d != self._dim
                    or index.ntotal != int(self._base["rows"])):
                raise IndexCorruptError(f"{path} ne correspond pas à l'état enregistré. "
                                        f"{REBUILD_HINT}")
            try:
                out[todo] = index.reconstruct_batch(ids[todo])
            except RuntimeError:  # listed by the ids sidecar, absent from the base
                raise IndexCorruptError(f"{path} ne correspond pas à ses identifiants. "
                                        f"{REBUILD_HINT}") from None
        return out

    # -- saving --------------------------------------------------------------------------------

    def _current_kind(self) -> str | None:
        if self._index is not None:
            return index_kind(self._index)
        return None if self._loaded else self._kind

    def _target_kind(self, n: int) -> str:
        current = self._current_kind()
        if current is not None and n == 0:
            return current  # nothing to train a new kind on, nothing to move
        return choose_index_type(self.index_type, n, current)

    def _must_compact_now(self, kind: str) -> bool:
        """The merge policy of the module's docstring: on counts, no vector read."""
        if self._base is None or self._must_compact or kind == "hnsw" or kind != self._kind:
            return True
        delta_rows = sum(int(d["rows"]) for d in self._deltas)
        file_rows = int(self._base["rows"]) + delta_rows  # no id is in two files
        tombs = len(self._tombs) if self._tombs is not None else \
            int(self._tomb["rows"]) if self._tomb else 0
        return (delta_rows + len(self._pending) > DELTA_MAX_RATIO * int(self._base["rows"])
                or tombs > TOMB_MAX_RATIO * file_rows)

    def save(self, generation: int) -> dict[str, Any]:
        if generation <= self._generation:
            raise ValueError(f"generation {generation} after {self._generation}")
        changed = bool(len(self._pending)) or self._tombs_changed or self._must_compact
        kind = self._target_kind(len(self))
        stored = self._index is not None or not self._loaded
        if stored and (changed or self._base is None or kind != self._current_kind()):
            if self._must_compact_now(kind):
                self.load()
                self._compact(generation, kind)
            elif len(self._deltas) + (1 if len(self._pending) else 0) > DELTA_MAX_FILES:
                self._merge_deltas(generation)
            else:
                self._write_changes(generation)
            fsync_path(self.root)
        self._pending = _EMPTY
        self._tombs_changed = self._must_compact = False
        self._generation = generation
        return self._state()

    def _compact(self, generation: int, kind: str) -> None:
        """A new base from everything live (in the new kind if it changes) and its ids; no
        delta, no tombstone."""
        if kind != index_kind(self._index):
            ids, vectors = all_vectors(self._index)
            self._index = new_dense_index(kind, self._dim, vectors if kind == "ivf" else None)
            self._index.add_with_ids(vectors, ids)
        self._file_ids = np.unique(index_ids(self._index))
        self._base = self._files.write(f"base-{generation}.faiss", len(self),
                                       lambda path: write_index(self._index, path))
        self._base_ids = self._files.write(f"base-{generation}.ids.npy", len(self._file_ids),
                                           npy_bytes(self._file_ids))
        self._deltas, self._tomb, self._kind = [], None, kind
        self._tombs = _EMPTY

    def _pending_vectors(self) -> np.ndarray:
        """The vectors of `_pending`, in its (sorted) order, taken out of the buffer."""
        if not len(self._pending):
            return np.zeros((0, self._dim), dtype=np.float32)
        if self._loaded:
            return np.asarray(self._index.reconstruct_batch(self._pending), dtype=np.float32)
        vectors = self._buf_vectors[np.argsort(self._buf_ids)]
        self._buf_ids, self._buf_vectors = _EMPTY, vectors[:0]
        return vectors

    def _write_delta(self, generation: int, ids: np.ndarray, vectors: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, vectors=vectors)
        self._deltas.append(self._files.write(f"delta-{generation}.npz", len(ids),
                                              buffer.getvalue()))

    def _write_tombs(self, generation: int) -> None:
        assert self._tombs is not None
        self._tomb = self._files.write(f"tomb-{generation}.npy", len(self._tombs),
                                       npy_bytes(self._tombs)) \
            if len(self._tombs) else None

    def _write_changes(self, generation: int) -> None:
        """A delta of the vectors added since the last save, the tombstones if they changed."""
        assert self._file_ids is not None
        if len(self._pending):
            self._write_delta(generation, self._pending, self._pending_vectors())
            self._file_ids = _merged(self._file_ids, self._pending)
        if self._tombs_changed:
            self._write_tombs(generation)

    def _merge_deltas(self, generation: int) -> None:
        """One delta from the live rows of every delta and the rows added since the last save,
        read from the deltas alone (not the base); the tombstones of merged rows are dropped."""
        assert self._file_ids is not None and self._tombs is not None
        old = self._deltas
        parts = [(_EMPTY, np.zeros((0, self._dim), np.float32)), *map(self._delta, old)]
        merged_ids = np.concatenate([ids for ids, _ in parts])
        merged_vectors = np.concatenate([vectors for _, vectors in parts])
        live = ~_member(self._tombs, merged_ids)
        dropped = np.sort(merged_ids[~live])
        new_ids = np.concatenate([merged_ids[live], self._pending])
        new_vectors = np.concatenate([merged_vectors[live], self._pending_vectors()])
        order = np.argsort(new_ids)
        self._deltas = []
        if len(new_ids):
            self._write_delta(generation, new_ids[order], new_vectors[order])
        if len(dropped) or self._tombs_changed:
            self._tombs = np.setdiff1d(self._tombs, dropped, assume_unique=True)
            self._write_tombs(generation)
        self._file_ids = _merged(self._file_ids[~_member(dropped, self._file_ids)], self._pending)
        for entry in old:  # this store reads them no more (readers of older states still may)
            self._files.close(entry["file"])

    def _state(self) -> dict[str, Any]:
        return {"backend": self.name, "generation": self._generation,
                "kind": self._kind, "dimension": self._dim, "count": len(self),
                "base": self._base, "base_ids": self._base_ids, "deltas": list(self._deltas),
                "tombstones": self._tomb}

    def prune(self, keep: list[dict[str, Any]]) -> None:
        listed = {entry["file"] for state in keep if state and state.get("backend") == self.name
                  for entry in [state["base"], state.get("base_ids"), *state["deltas"],
                                state["tombstones"]] if entry}
        for path in self.root.iterdir():
            if path.is_file() and path.name not in listed:
                self._files.close(path.name)  # its disk space is freed with the name
                path.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "kind": self._current_kind(),
                "index_type": self.index_type, "count": len(self), "dimension": self._dim,
                "base_rows": 0 if self._base is None else int(self._base["rows"]),
                "delta_files": len(self._deltas),
                "delta_rows": sum(int(d["rows"]) for d in self._deltas),
                "tombstones": len(self._tombs) if self._tombs is not None else
                int(self._tomb["rows"]) if self._tomb else 0}
