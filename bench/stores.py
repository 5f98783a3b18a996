"""The index's stores side by side: local files (FAISS + our BM25) vs Qdrant's local mode.

For each size (chunks) and each backend, one child process (its memory its own) builds the
chunk stores exactly as the builder places them and times what an index does with them:
- `local`: `FaissStore` (`faiss_index=auto`: flat up to 200k vectors) and `BM25Store`, files in
  a directory;
- `qdrant-memory`: `QdrantDenseStore` + `QdrantLexicalStore` sharing one collection, in
  qdrant-client's local mode `":memory:"`;
- `qdrant-dir`: the same in local mode on a directory (what `ASSISTANT_QDRANT_PATH` runs).
Measures: first build (add every vector and term list, save generation 1); reopening the saved
stores in a fresh client and answering one dense and one BM25 query; dense search k=10; BM25
search k=10 on new terms (the first query holding them: Qdrant counts their document frequency)
and on terms seen before; `add 15 chunks + save` and `remove 15 chunks + save`, each on stores
opened at the last saved state, as an update does. The top 10 of each backend are compared with
the local stores' (exact search on both sides: they should agree).

Data is synthetic and seeded (`scale.py`'s generators): unit vectors d=384 with graded
similarity, 50 terms per chunk from a Zipf vocabulary of 50,000, 6-term queries.

    python bench/stores.py [--sizes 10000 100000] [--queries 30] [--cold-queries 5]
                           [--reps 3] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from common import OUT, describe_machine, machine, md_table, ms_stats, run_measured, write_results
from scale import ID_OFFSET, vectors, zipf_tokens

BACKENDS = ("local", "qdrant-memory", "qdrant-dir")
LABELS = {"local": "local (FAISS + BM25 files)", "qdrant-memory": "Qdrant `:memory:`",
          "qdrant-dir": "Qdrant directory"}
K = 10
CHANGE = 15  # chunks added, then removed, by each update (about one article)
QUERY_TERMS = 6


class Stores:
    """The chunk stores of one backend (dense + lexical), opened at saved states."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend, self.root = backend, root
        self.conn: Any = None
        self.states: dict[str, Any] = {"dense": None, "lexical": None}
        self.dense: Any = None
        self.lexical: Any = None

    def connect(self) -> None:
        if self.backend == "local":
            return
        from assistant.index.qdrant_connection import connect

        if self.conn is not None:
            self.conn.close()
        path = ":memory:" if self.backend == "qdrant-memory" else str(self.root / "qdrant")
        self.conn = connect(path=path)

    def open(self) -> None:
        """Fresh store objects at the saved states (what an update or a reader does)."""
        if self.backend == "local":
            from assistant.index.dense.faiss import FaissStore
            from assistant.index.lexical.bm25 import BM25Store

            self.dense = FaissStore.open(self.root / "chunks", self.states["dense"])
            self.lexical = BM25Store.open(self.root / "lexical", self.states["lexical"])
            return
        from assistant.index.dense.qdrant import QdrantDenseStore
        from assistant.index.lexical.qdrant import QdrantLexicalStore
        from assistant.index.qdrant_generations import QdrantLocation

        location = QdrantLocation(self.conn, "bench_", "chunks")
        self.dense = QdrantDenseStore.open(location, self.states["dense"])
        self.lexical = QdrantLexicalStore.open(location, self.states["lexical"])

    def save(self, generation: int) -> None:
        self.states = {"dense": self.dense.save(generation),
                       "lexical": self.lexical.save(generation)}

    def dense_top(self, query: np.ndarray) -> list[int]:
        return [int(i) for i in self.dense.search(query, K)]

    def bm25_top(self, terms: list[str]) -> list[float]:
        """The scores of the 10 best chunks, best first (ids are left out: with many equal
        scores, backends may list tied chunks in another order)."""
        return [round(float(x), 4) for x in self.lexical.search(terms, K)[1]]


def update(stores: Stores, generation: int, ids: np.ndarray,
           vectors: np.ndarray | None = None, docs: list[list[str]] | None = None) -> None:
    """One update as the builder makes it: stores opened at the last saved state, `ids` added
    (with their vectors and terms) or, without them, removed; saved as `generation`."""
    stores.open()
    if vectors is None or docs is None:
        stores.dense.remove(ids)
        stores.lexical.remove(ids)
    else:
        stores.dense.add(ids, vectors)
        stores.lexical.add(ids, docs)
    stores.save(generation)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def bm25_queries(n: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[f"t{int(r)}" for r in rng.integers(5, 5_000, size=QUERY_TERMS)] for _ in range(n)]


def child(backend: str, n: int, work: Path, queries: int, cold: int, reps: int) -> dict[str, Any]:
    """Everything measured for one backend at one size, in this (child) process."""
    warnings.filterwarnings("ignore", message="Local mode is not recommended",
                            category=UserWarning)  # qdrant-client's own note past 20,000 points
    data = np.load(work / f"vectors-{n}.npy")
    dense_queries = np.load(work / "queries.npy")[:queries]
    ids = np.arange(ID_OFFSET, ID_OFFSET + n, dtype=np.int64)
    docs = zipf_tokens(n, seed=7)
    root = work / f"{backend}-{n}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    stores = Stores(backend, root)
    out: dict[str, Any] = {"backend": backend, "n": n}

    def first_build(docs: list[list[str]]) -> None:
        stores.connect()
        stores.open()
        stores.dense.add(ids, data)
        stores.lexical.add(ids, docs)
        stores.save(1)

    out["build_s"] = round(timed(first_build, docs)[0], 3)
    del docs
    probe = bm25_queries(1, seed=5)[0]

    def reopen() -> None:  # a new client (local mode reads the directory again) and stores
        stores.connect()
        stores.open()
        stores.dense.load()
        stores.dense.search(dense_queries[0], K)
        stores.lexical.search(probe, K)

    if backend != "qdrant-memory":  # a memory-only engine cannot be reopened
        out["reopen_s"] = round(timed(reopen)[0], 3)
    else:
        stores.open()
        stores.dense_top(dense_queries[0])
    if backend == "local":
        out["faiss_kind"] = stores.dense.describe().get("kind")

    times, tops = [], []
    for q in dense_queries:
        seconds, top = timed(stores.dense_top, q)
        times.append(seconds)
        tops.append(top)
    out["dense_ms"], out["dense_top"] = ms_stats(times), tops
    cold_times, warm_times, bm25_tops = [], [], []
    for terms in bm25_queries(cold, seed=11):
        seconds, top = timed(stores.bm25_top, terms)
        cold_times.append(seconds)
        bm25_tops.append(top)
        for _ in range(max(1, queries // max(cold, 1))):
            warm_times.append(timed(stores.bm25_top, terms)[0])
    out["bm25_cold_ms"], out["bm25_warm_ms"] = ms_stats(cold_times), ms_stats(warm_times)
    out["bm25_top"] = bm25_tops

    rng = np.random.default_rng(3)
    live = set(ids.tolist())
    next_id, generation = ID_OFFSET + n, 1
    add_s, remove_s = [], []
    for rep in range(reps):
        new_ids = np.arange(next_id, next_id + CHANGE, dtype=np.int64)
        new_vectors = vectors(CHANGE, seed=1000 + rep)
        new_docs = zipf_tokens(CHANGE, seed=2000 + rep)
        next_id += CHANGE
        generation += 1

        add_s.append(timed(update, stores, generation, new_ids, new_vectors, new_docs)[0])
        live |= set(new_ids.tolist())
        gone = rng.choice(np.fromiter(sorted(live), dtype=np.int64), size=CHANGE, replace=False)
        live -= set(gone.tolist())
        generation += 1
        remove_s.append(timed(update, stores, generation, gone)[0])
    stores.open()
    assert len(stores.dense) == len(stores.lexical) == len(live), "counts after the updates"
    out["add_s"] = {"median": round(statistics.median(add_s), 4),
                    "all": [round(s, 4) for s in add_s]}
    out["remove_s"] = {"median": round(statistics.median(remove_s), 4),
                       "all": [round(s, 4) for s in remove_s]}
    if stores.conn is not None:
        stores.conn.close()
    return out


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    r = run_measured([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                     timeout=timeout)
    if r.returncode != 0:
        return {"error": (r.stderr or "killed")[-600:], "args": args, "wall_s": round(r.wall_s)}
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(r.max_rss_mb, 1)
    result["wall_s"] = round(r.wall_s, 1)
    return result


def agreement(tops: list[list[Any]], reference: list[list[Any]]) -> float | None:
    """Share of queries whose top 10 equals the reference backend's: the same ids (dense), the
    same scores rank by rank within 1e-4 (BM25)."""
    if not tops or len(tops) != len(reference):
        return None
    same = [set(a) == set(b) if a and isinstance(a[0], int) else
            len(a) == len(b) and bool(np.allclose(a, b, atol=1e-4))
            for a, b in zip(tops, reference)]
    return round(sum(same) / len(same), 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    work = args.out / "work" / "stores"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    np.save(work / "queries.npy", vectors(args.queries, seed=1))
    results: dict[str, dict[str, Any]] = {}
    for n in args.sizes:
        np.save(work / f"vectors-{n}.npy", vectors(n, seed=n))
        per: dict[str, Any] = {}
        for backend in BACKENDS:
            per[backend] = run_child([backend, str(n), str(work), str(args.queries),
                                      str(args.cold_queries), str(args.reps)], args.timeout)
            shutil.rmtree(work / f"{backend}-{n}", ignore_errors=True)
            print(json.dumps({k: v for k, v in per[backend].items()
                              if not k.endswith("_top")})[:400], file=sys.stderr)
        local = per["local"]
        for backend in BACKENDS[1:]:
            r = per[backend]
            if "error" in r or "error" in local:
                continue
            r["same_dense_top"] = agreement(r["dense_top"], local["dense_top"])
            r["same_bm25_top"] = agreement(r["bm25_top"], local["bm25_top"])
            r["ratios"] = ratios(r, local)
        for r in per.values():
            r.pop("dense_top", None)
            r.pop("bm25_top", None)
        results[str(n)] = per
        (work / f"vectors-{n}.npy").unlink()
    data = {"machine": info, "qdrant_client": metadata.version("qdrant-client"),
            "sizes": list(args.sizes), "queries": args.queries,
            "cold_queries": args.cold_queries, "reps": args.reps, "change": CHANGE, "k": K,
            "results": results}
    write_results("stores", data, markdown(data), args.out)
    return data


#: (label, how to read the value of one backend's result), in table order.
MEASURES: tuple[tuple[str, Any], ...] = (
    ("first build (dense + BM25, saved), s", lambda r: r.get("build_s")),
    ("reopen + first dense and BM25 query, s", lambda r: r.get("reopen_s")),
    ("dense search k=10, p50 ms", lambda r: r.get("dense_ms", {}).get("p50")),
    ("BM25 search k=10, terms seen before, p50 ms",
     lambda r: r.get("bm25_warm_ms", {}).get("p50")),
    ("BM25 search k=10, new terms, p50 ms", lambda r: r.get("bm25_cold_ms", {}).get("p50")),
    (f"add {CHANGE} chunks + save, s (median)", lambda r: r.get("add_s", {}).get("median")),
    (f"remove {CHANGE} chunks + save, s (median)",
     lambda r: r.get("remove_s", {}).get("median")),
    ("peak memory of the process, MB",
     lambda r: None if r.get("peak_rss_mb") is None else round(r["peak_rss_mb"])),
)


def ratios(r: dict[str, Any], local: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for label, get in MEASURES:
        a, b = get(r), get(local)
        out[label] = round(a / b, 2) if a is not None and b else None
    return out


def _ratio(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 100:
        return f"×{value:,.0f}".replace(",", " ")
    return f"×{value:.1f}" if value >= 10 else f"×{value:.2f}"


def markdown(d: dict[str, Any]) -> str:
    rows = []
    for n, per in d["results"].items():
        failed = [b for b in BACKENDS if "error" in per.get(b, {"error": "missing"})]
        for label, get in MEASURES:
            values = [None if b in failed else get(per[b]) for b in BACKENDS]
            ratio = [_ratio(per[b].get("ratios", {}).get(label)) for b in BACKENDS[1:]]
            rows.append([int(n), label, *values, *ratio])
        same = [f"{per[b].get('same_dense_top', 0):.2f} / {per[b].get('same_bm25_top', 0):.2f}"
                if b not in failed and "same_dense_top" in per[b] else "–" for b in BACKENDS[1:]]
        rows.append([int(n), "same top 10 as local, share of queries (dense / BM25)", "–",
                     *same, "", ""])
        for b in failed:
            rows.append([int(n), f"**{b} failed**", per.get(b, {}).get("error", "")[-120:]
                         .replace("\n", " ").replace("|", "/"), "", "", "", ""])
    headers = ["chunks", "measure", *(LABELS[b] for b in BACKENDS), "`:memory:` ÷ local",
               "directory ÷ local"]
    return "\n".join([
        "### Stores side by side: local files vs Qdrant local mode (synthetic chunks, d=384)",
        "",
        md_table(headers, rows, digits=3),
        "",
        "One process per backend and size: the chunk stores as the builder places them "
        "(local: `FaissStore` with `faiss_index=auto`, flat here, and our `BM25Store`, files; "
        "Qdrant: `QdrantDenseStore` and `QdrantLexicalStore` sharing one collection, named dense "
        "and sparse vectors) over the same seeded data: unit vectors (d=384), 50 terms a chunk "
        "from a Zipf vocabulary of 50 000, 6-term queries. Sentence vectors (a second dense "
        "store, ~2.7 rows a chunk) are left out. Dense: "
        f"{d['queries']} queries; BM25: {d['cold_queries']} queries on new terms, each then "
        f"repeated (terms seen before: Qdrant's document frequencies are cached per store). "
        f"Updates: {d['reps']} × (open at the last state, add or remove {d['change']} chunks "
        "with their terms, save a new generation), the builder's other steps (catalog, "
        "manifest, prune) left out. Reopen: a new client and new stores at the saved state "
        "(local mode reads the whole directory into memory), then one query of each kind; "
        "`:memory:` cannot be reopened. A directory's first build is slow: qdrant-client's "
        "local mode commits every point write to SQLite on its own, and a new chunk's point is "
        "written twice (the dense store's upsert, then the BM25 store's upsert of the whole "
        "point). Same top 10: the queries whose 10 best chunks "
        "are the local stores' (dense: the same ids; BM25: the same scores rank by rank, tied "
        "chunks may come in another order: every synthetic chunk has 50 terms, so ties are "
        f"many); both search exactly. Local mode is qdrant-client "
        f"{d['qdrant_client']}'s in-process engine (what the tests run); a Qdrant server or "
        "cluster indexes vectors (HNSW) and payloads and was not measured here.",
        "",
        f"Machine: {describe_machine(d['machine'])}.",
    ])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        backend, n, work, queries, cold, reps = sys.argv[2:8]
        print(json.dumps(child(backend, int(n), Path(work), int(queries), int(cold),
                               int(reps))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=(10_000, 100_000))
    parser.add_argument("--queries", type=int, default=30, help="dense queries (latency)")
    parser.add_argument("--cold-queries", type=int, default=5,
                        help="BM25 queries on new terms (each repeated for the warm latency)")
    parser.add_argument("--reps", type=int, default=3, help="updates of each kind")
    parser.add_argument("--timeout", type=float, default=3600, help="per child, seconds")
    parser.add_argument("--quick", action="store_true", help="2,000 chunks, fewer queries")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.cold_queries, args.reps = (2_000,), 10, 3, 2
    run(args)
    print((args.out / "stores.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
