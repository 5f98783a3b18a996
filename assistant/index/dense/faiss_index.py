"""FAISS indexes (moved from the catalog module; replaced by dense/faiss.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, IndexCorruptError

FAISS = "dense.faiss"
SENTENCES_FAISS = "sentences.faiss"

# -- FAISS ------------------------------------------------------------------------------------
# Measured by bench/scale.py (README "Benchmarks"), 2 cores, d=384, one query on one thread:
# flat 13-15 ms at 100k, 170-300 ms at 1M; IVF (sqrt(n) cells, 32-62 probed) 1.4-2 ms at 100k
# and 16-21 ms at 1M for recall@10 0.97-0.98, built in 18-46 s at 1M and updated in place;
# HNSW ~0.4 ms at 100k but built at 1,500-2,400 vectors/s and rebuilt on every change
# (about ten minutes per `index update` at 1M).
FLAT_MAX = 200_000  # `auto`: exact search up to here, then IVF
IVF_TRAIN_PER_LIST = 50  # k-means training points per cell (faiss warns below 39)
IVF_NPROBE = 32  # cells visited per query, at least; nlist/16 for large indexes
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64


def choose_index_type(requested: str, n_vectors: int) -> str:
    """`auto`: exact flat search up to `FLAT_MAX` chunks, then IVF, which keeps incremental
    updates cheap (vectors added and removed in place). HNSW answers faster but is rebuilt on
    every change, so it is only used when asked for (see README "Benchmarks")."""
    if requested != "auto":
        return requested
    return "flat" if n_vectors <= FLAT_MAX else "ivf"


def ivf_lists(n: int) -> int:
    """IVF cells for n training vectors: ~sqrt(n), so k-means and adds stay cheap on few cores."""
    return max(1, min(65_536, int(round(float(np.sqrt(max(n, 1)))))))


def new_dense_index(kind: str, dim: int, train: np.ndarray | None = None) -> Any:
    import faiss

    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        hnsw.hnsw.efSearch = HNSW_EF_SEARCH
        return faiss.IndexIDMap2(hnsw)
    if kind == "ivf":
        n = 0 if train is None else len(train)
        nlist = ivf_lists(n)
        if train is None or n < nlist:
            raise ValueError("IVF needs at least nlist training vectors")
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = IVF_TRAIN_PER_LIST * nlist
        if n > sample:  # k-means on a seeded sample: same quality, a fraction of the time
            rows = np.sort(np.random.default_rng(0).choice(n, size=sample, replace=False))
            train = train[rows]
        index.train(np.ascontiguousarray(train, dtype=np.float32))
        index.nprobe = min(nlist, max(IVF_NPROBE, nlist // 16))
        # A hash-table direct map: `reconstruct` works with arbitrary (chunk) ids and removals;
        # the default array map refuses `add_with_ids`.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return index
    raise ValueError(f"unknown FAISS index type {kind!r}")


def index_kind(index: Any) -> str:
    import faiss

    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap2) else index
    if isinstance(inner, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(inner, faiss.IndexIVFFlat):
        return "ivf"
    return "flat"


def write_dense(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def read_dense(path: Path) -> Any:
    """A FAISS index from disk. FAISS is set to one OpenMP thread, process-wide: a query against
    an index of this size is microseconds of work, and on 2 shared cores its thread team waiting
    on each other cost ~4 ms a search (measured); IVF training in the same process (an update
    past 200k chunks) then runs on one thread too."""
    import faiss

    faiss.omp_set_num_threads(1)
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "?"
        raise IndexCorruptError(f"{path} est illisible ({first}). {REBUILD_HINT}") from None
    if index_kind(index) == "ivf":
        ivf = faiss.extract_index_ivf(index)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:  # saved without one (older files)
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def all_vectors(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) stored in an index (used to rebuild it when its type must change)."""
    import faiss

    if index_kind(index) == "ivf":
        invlists = faiss.extract_index_ivf(index).invlists
        parts = [
            faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
            for i in range(invlists.nlist) if invlists.list_size(i)
        ]
        ids = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    else:
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    if len(ids) == 0:
        return ids, np.zeros((0, index.d), dtype=np.float32)
    return ids, index.reconstruct_batch(ids)


#: A filter allowing at most this many vectors scores them all exactly (one matrix product);
#: a larger one is searched in the index with an id selector.
EXACT_MAX = 4096


class IdFilter:
    """A set of allowed vector ids (chunk or sentence ids), to search a FAISS index among them
    only. Built once per filter and shared by threads (each search gets its own parameters)."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = np.unique(np.asarray(ids, dtype=np.int64))
        self._selector: Any = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, index: Any, query: np.ndarray, k: int) -> np.ndarray:
        """Ids of the (at most) `k` allowed vectors closest to `query`, best first."""
        k = min(k, len(self.ids))
        if k <= 0:
            return np.zeros(0, dtype=np.int64)
        if len(self.ids) <= EXACT_MAX:
            scores = index.reconstruct_batch(self.ids) @ query
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(k)
            return self.ids[top[np.lexsort((self.ids[top], -scores[top]))]]
        _, ids = index.search(query.reshape(1, -1), k, params=self._params(index, k))
        return ids[0][ids[0] >= 0]

    def _params(self, index: Any, k: int) -> Any:
        import faiss

        with self._lock:  # shared by the server's threads: one selector, built once
            if self._selector is None:  # a hash set of the ids, built on first use
                self._selector = faiss.IDSelectorBatch(self.ids)
        kind = index_kind(index)
        if kind == "ivf":  # the index's own probe count, not the parameters' default (1)
            ivf = faiss.extract_index_ivf(index)
            return faiss.SearchParametersIVF(sel=self._selector, nprobe=ivf.nprobe)
        if kind == "hnsw":
            hnsw = faiss.downcast_index(index.index).hnsw
            return faiss.SearchParametersHNSW(sel=self._selector, efSearch=max(hnsw.efSearch, k))
        return faiss.SearchParameters(sel=self._selector)
