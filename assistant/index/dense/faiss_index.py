"""FAISS itself for the dense store (`faiss.py`): which index kind, how it is built, read,
searched with a filter and taken apart. No state here: functions of an index or of a size,
and the constants, measured, that choose between kinds.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np

from ...errors import REBUILD_HINT, IndexCorruptError
from .base import IdSet

__all__ = ["AUTO_BACK_TO_FLAT", "FLAT_MAX", "HNSW_EF_CONSTRUCTION", "HNSW_EF_SEARCH", "HNSW_M",
           "IVF_NPROBE", "IVF_TRAIN_PER_LIST", "all_vectors", "choose_index_type", "index_ids",
           "index_kind", "ivf_lists", "map_index", "new_dense_index", "read_index", "search_params",
           "without", "write_index"]

# Measured by bench/scale.py (docs/benchmarks.md), 2 cores, d=384, one query on one thread:
# flat 13-15 ms at 100k, 170-300 ms at 1M; IVF (sqrt(n) cells, 32-62 probed) 1.4-2 ms at 100k
# and 16-21 ms at 1M for recall@10 0.97-0.98, built in 18-46 s at 1M and updated in place;
# HNSW ~0.4 ms at 100k but built at 1,500-2,400 vectors/s and rebuilt on every change
# (about ten minutes per `index update` at 1M).
FLAT_MAX = 200_000  # `auto`: exact search up to here, then IVF
AUTO_BACK_TO_FLAT = 0.9  # an `auto` IVF store returns to flat below FLAT_MAX * this
IVF_TRAIN_PER_LIST = 50  # k-means training points per cell (faiss warns below 39)
IVF_NPROBE = 32  # cells visited per query, at least; nlist/16 for large indexes
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64


def choose_index_type(requested: str, n_vectors: int, current: str | None = None) -> str:
    """`auto`: exact flat search up to `FLAT_MAX` vectors, then IVF, which keeps incremental
    updates cheap (vectors added and removed in place). HNSW answers faster but is rebuilt on
    every change, so it is only used when asked for (see docs/benchmarks.md). An `auto` store
    that is IVF (`current`) goes back to flat only below FLAT_MAX * AUTO_BACK_TO_FLAT, so a
    corpus at the boundary does not flip at each update."""
    if requested != "auto":
        return requested
    if current == "ivf" and n_vectors > FLAT_MAX * AUTO_BACK_TO_FLAT:
        return "ivf"
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


def read_index(f: IO[bytes], path: Path) -> Any:
    """A FAISS index from an open file (`path` names it in errors). FAISS is set to one OpenMP
    thread, process-wide: a query against an index of this size is microseconds of work, and on
    2 shared cores its thread team waiting on each other cost ~4 ms a search (measured); IVF
    training in the same process (an update past 200k chunks) then runs on one thread too."""
    import faiss

    faiss.omp_set_num_threads(1)
    return _read(faiss.PyCallbackIOReader(f.read, 1 << 20), 0, path)


def map_index(name: str, path: Path) -> Any:
    """A FAISS index read memory-mapped from the file `name` (`path` names it in errors): its
    vectors stay on disk, read by the page when reconstructed (IO_FLAG_MMAP_IFC: flat codes and
    IVF lists alike, with faiss 1.15; about 5 ms for a 230 MB base). It must not be changed."""
    import faiss

    return _read(name, faiss.IO_FLAG_MMAP_IFC, path)


def write_index(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(index, str(path))


def _read(source: Any, flags: int, path: Path) -> Any:
    import faiss

    try:
        index = faiss.read_index(source, flags)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "?"
        raise IndexCorruptError(f"{path} est illisible ({first}). {REBUILD_HINT}") from None
    if index_kind(index) == "ivf":
        ivf = faiss.extract_index_ivf(index)
        if ivf.direct_map.type == faiss.DirectMap.NoMap:  # saved without one (older files)
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


def index_ids(index: Any) -> np.ndarray:
    """The ids stored in an index, in storage order."""
    import faiss

    if index_kind(index) != "ivf":
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = faiss.extract_index_ivf(index).invlists
    parts = [
        faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
        for i in range(invlists.nlist) if invlists.list_size(i)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def all_vectors(index: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) stored in an index (used to rebuild it when its type must change)."""
    ids = index_ids(index)
    if len(ids) == 0:
        return ids, np.zeros((0, index.d), dtype=np.float32)
    return ids, index.reconstruct_batch(ids)


def without(index: Any, ids: np.ndarray) -> Any:
    """`index` without `ids` (all stored): removed in place, or HNSW rebuilt without them."""
    if index_kind(index) != "hnsw":
        index.remove_ids(ids)
        return index
    old_ids, old_vectors = all_vectors(index)
    keep = ~np.isin(old_ids, ids)
    rebuilt = new_dense_index("hnsw", index.d)
    rebuilt.add_with_ids(old_vectors[keep], old_ids[keep])
    return rebuilt


def search_params(index: Any, allowed: IdSet, k: int) -> Any:
    """Search parameters restricting a search of `index` to `allowed` (its FAISS selector, a
    hash set of the ids, is built on first use and kept in `allowed.derived`)."""
    import faiss

    with allowed.lock:  # shared by the server's threads: one selector, built once
        selector = allowed.derived.get("faiss")
        if selector is None:
            selector = allowed.derived["faiss"] = faiss.IDSelectorBatch(allowed.ids)
    kind = index_kind(index)
    if kind == "ivf":  # the index's own probe count, not the parameters' default (1)
        ivf = faiss.extract_index_ivf(index)
        return faiss.SearchParametersIVF(sel=selector, nprobe=ivf.nprobe)
    if kind == "hnsw":
        hnsw = faiss.downcast_index(index.index).hnsw
        return faiss.SearchParametersHNSW(sel=selector, efSearch=max(hnsw.efSearch, k))
    return faiss.SearchParameters(sel=selector)
