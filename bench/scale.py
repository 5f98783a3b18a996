"""Search at 100k and 1M chunks: FAISS flat vs IVF vs HNSW (as
`assistant/index/dense/faiss.py` builds them) and the BM25 leg (the segmented store of
`assistant/index/lexical/bm25.py`).

Data is synthetic and seeded: unit vectors d=384 from a 64-dimensional latent mixture (graded
similarity, see `vectors`), ids offset like chunk ids; token lists of 50 terms from
a Zipf vocabulary of 50,000. Each (index, size) runs in a fresh child process so its memory is its
own: build time, resident memory added by the index, single-query latency p50/p95 and recall@10
against exact (flat) search, with a sweep of IVF nprobe and HNSW efSearch.

    python bench/scale.py [--sizes 100000 1000000] [--hnsw-max 200000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import OUT, describe_machine, machine, md_table, ms_stats, run_measured, write_results

from assistant.index.dense.faiss import choose_index_type, index_kind, new_dense_index
from assistant.index.lexical.bm25 import BM25Store

DIM = 384
LATENT = 64
CENTRES = 2_000
CENTRE_WEIGHT = 0.7
ISOTROPIC = 0.3
MEAN_WEIGHT = 0.5
VOCAB = 50_000
DOC_TERMS = 50
ID_OFFSET = 1_000  # ids are chunk ids, not row numbers
K = 10


def vectors(n: int, seed: int) -> np.ndarray:
    """n unit vectors (float32), generated in blocks; the space is the same for every seed.

    A 64-dimensional latent mixture (2,000 centres, decaying spectrum) mapped into 384 dimensions,
    plus isotropic noise and a shared mean direction: top-10 neighbours at cosine ~0.65, random
    pairs ~0.05, and IVF recall that grows smoothly with nprobe, as on real embeddings.
    """
    base = np.random.default_rng(12345)
    basis = np.linalg.qr(base.standard_normal((DIM, LATENT)))[0].astype(np.float32)
    spectrum = (1 / np.sqrt(np.arange(1, LATENT + 1))).astype(np.float32)
    mean = base.standard_normal(DIM).astype(np.float32)
    mean /= np.linalg.norm(mean)
    centres = base.standard_normal((CENTRES, LATENT)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        z = CENTRE_WEIGHT * centres[rng.integers(0, CENTRES, m)]
        z += rng.standard_normal((m, LATENT), dtype=np.float32)
        block = (z * spectrum) @ basis.T
        block += ISOTROPIC / np.sqrt(DIM) * rng.standard_normal((m, DIM), dtype=np.float32)
        block += MEAN_WEIGHT * mean
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + m] = block
    return out


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def latency(search: Any, queries: np.ndarray, n_single: int) -> dict[str, Any]:
    search(queries[:1])
    times = []
    for q in queries[:n_single]:
        t0 = time.perf_counter()
        search(q.reshape(1, -1))
        times.append(time.perf_counter() - t0)
    return ms_stats(times)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return round(float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])), 4)


def child_dense(kind: str, n: int, work: Path, n_single: int) -> dict[str, Any]:
    """Build one index type over the saved vectors; time it, weigh it, query it."""
    import faiss

    data = np.load(work / f"vectors-{n}.npy")
    queries = np.load(work / "queries.npy")
    ids = np.arange(ID_OFFSET, ID_OFFSET + n, dtype=np.int64)
    before = rss_mb()
    t0 = time.perf_counter()
    index = new_dense_index(kind, DIM, train=data if kind == "ivf" else None)
    index.add_with_ids(data, ids)
    build_s = time.perf_counter() - t0
    memory = rss_mb() - before
    result: dict[str, Any] = {"kind": index_kind(index), "n": n, "build_s": round(build_s, 2),
                              "memory_mb": round(memory, 1)}
    threads = faiss.omp_get_max_threads()
    result["p50_ms_all_threads"] = latency(lambda q: index.search(q, K), queries, n_single)["p50"]
    faiss.omp_set_num_threads(1)  # one query on one thread: see the note in docs/benchmarks.md
    truth_path = work / f"truth-{n}.npy"
    if kind == "flat":
        _, truth = index.search(queries, K)
        np.save(truth_path, truth)
    truth = np.load(truth_path)
    knobs: list[tuple[str, int | None]] = [("default", None)]
    if kind == "ivf":
        ivf = faiss.extract_index_ivf(index)
        result["nlist"] = int(ivf.nlist)
        default = int(ivf.nprobe)
        knobs = [("nprobe", p) for p in sorted({4, 8, 16, 32, 64, 128, default}) if p <= ivf.nlist]
    elif kind == "hnsw":
        hnsw = faiss.downcast_index(index.index).hnsw
        default = int(hnsw.efSearch)
        knobs = [("efSearch", e) for e in sorted({16, 32, 64, 128, default})]
    result["settings"] = []
    for name, value in knobs:
        if name == "nprobe":
            ivf.nprobe = value
        elif name == "efSearch":
            hnsw.efSearch = value
        _, found = index.search(queries, K)
        row = {"knob": name, "value": value, "default": value == default if value else True,
               "recall@10": recall(found, truth),
               "latency_ms": latency(lambda q: index.search(q, K), queries, n_single)}
        result["settings"].append(row)
    result["threads_build"] = threads
    return result


def zipf_tokens(n: int, seed: int, terms: int = DOC_TERMS) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}" for i in range(VOCAB)], dtype=object)
    ranks = np.minimum(rng.zipf(1.2, size=(n, terms)), VOCAB) - 1
    return [list(row) for row in vocab[ranks]]


def child_lexical(n: int, n_single: int) -> dict[str, Any]:
    """The BM25 store over n synthetic token lists; a query returns its top 50."""
    docs = zipf_tokens(n, seed=7)
    before = rss_mb()
    t0 = time.perf_counter()
    import tempfile

    bm25 = BM25Store.open(Path(tempfile.mkdtemp(prefix="bench-bm25-")), None)
    bm25.add(np.arange(ID_OFFSET, ID_OFFSET + n, dtype=np.int64), docs)
    build_s = time.perf_counter() - t0
    memory = rss_mb() - before  # the token lists are still alive: this is what BM25 adds
    del docs
    rng = np.random.default_rng(99)
    queries = [[f"t{int(r)}" for r in rng.integers(5, 5_000, size=6)] for _ in range(n_single)]

    def search(terms: list[str]) -> np.ndarray:
        return bm25.search(terms, 50)[0]

    search(queries[0])
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - t0)
    return {"kind": "bm25", "n": n, "build_s": round(build_s, 2), "memory_mb": round(memory, 1),
            "latency_ms": ms_stats(times)}


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    r = run_measured([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                     timeout=timeout)
    if r.returncode != 0:
        return {"error": (r.stderr or "killed")[-600:], "args": args, "wall_s": round(r.wall_s)}
    result = json.loads(r.stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(r.max_rss_mb, 1)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    work = args.out / "work" / "scale"
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "queries.npy", vectors(args.queries, seed=1))
    dense, lexical = [], []
    for n in args.sizes:
        t0 = time.perf_counter()
        np.save(work / f"vectors-{n}.npy", vectors(n, seed=n))
        print(f"{n} vectors generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        for kind in ("flat", "ivf", "hnsw"):
            if kind == "hnsw" and n > args.hnsw_max:
                dense.append({"kind": "hnsw", "n": n, "skipped": f"n > --hnsw-max {args.hnsw_max}"})
                continue
            dense.append(run_child(["dense", kind, str(n), str(work), str(args.single)],
                                   args.timeout))
            print(json.dumps(dense[-1])[:300], file=sys.stderr)
        (work / f"vectors-{n}.npy").unlink()
        if n <= args.lexical_max:
            lexical.append(run_child(["lexical", str(n), str(work), str(args.single)],
                                     args.timeout))
            print(json.dumps(lexical[-1])[:300], file=sys.stderr)
    data = {"machine": info, "dim": DIM, "queries": args.queries, "single": args.single,
            "dense": dense, "lexical": lexical,
            "auto": {str(n): choose_index_type("auto", n) for n in
                     (10_000, 100_000, 300_000, 1_000_000, 10_000_000)}}
    write_results("scale", data, markdown(data), args.out)
    return data


def threads_note(d: dict[str, Any]) -> str:
    parts = [f"{r['kind']} {r['n']:,} {r['p50_ms_all_threads']:.1f} ms".replace(",", " ")
             for r in d["dense"] if "p50_ms_all_threads" in r]
    return "p50 " + ", ".join(parts) if parts else "not measured"


def markdown(d: dict[str, Any]) -> str:
    rows = []
    measured = {r["kind"]: r for r in d["dense"] if "build_s" in r}  # the largest of each kind
    for r in d["dense"]:
        if "skipped" in r or "error" in r:
            note = r.get("skipped") or "failed: " + r["error"].splitlines()[-1][:80]
            base = measured.get(r.get("kind", ""))
            estimate = "–"
            if base and "n" in r:  # HNSW insertion is ~log(n) per vector
                growth = r["n"] / base["n"] * np.log(r["n"]) / np.log(base["n"])
                estimate = f"~{base['build_s'] * growth:.0f} (est.)"
                note += f"; build estimated from {base['n']:,} vectors".replace(",", " ")
            rows.append([r.get("kind", "?"), r.get("n", "?"), estimate, "–", "–", "–", "–", note])
            continue
        for s in r["settings"]:
            knob = "" if s["knob"] == "default" else f"{s['knob']}={s['value']}"
            if s["knob"] != "default" and s["default"]:
                knob += " (default)"
            if r["kind"] == "ivf":
                knob = f"nlist={r['nlist']}, {knob}"
            rows.append([r["kind"], r["n"], r["build_s"], r["memory_mb"], s["latency_ms"]["p50"],
                         s["latency_ms"]["p95"], s["recall@10"], knob])
    lex = [[r["n"], r.get("build_s"), r.get("memory_mb"),
            r.get("latency_ms", {}).get("p50"), r.get("latency_ms", {}).get("p95")]
           for r in d["lexical"] if "error" not in r]
    auto = ", ".join(f"{int(n):,} → {k}".replace(",", " ") for n, k in d["auto"].items())
    return "\n".join([
        f"### Dense search at scale (synthetic unit vectors, d={d['dim']}, one query at a time)",
        "",
        md_table(["index", "vectors", "build s", "memory MB", "p50 ms", "p95 ms", "recall@10",
                  "setting"], rows, digits=2),
        "",
        "Memory is the resident memory the index adds (flat stores the raw vectors: "
        "n × 384 × 4 bytes; IVF's includes k-means buffers the allocator keeps). Recall is "
        f"against exact flat search on {d['queries']} queries; latency over {d['single']} "
        "single queries with one faiss thread (with faiss's default threads and other jobs on "
        f"the cores: {threads_note(d)}). Build and memory are per index, not per setting.",
        "",
        "### BM25 leg at scale (our segmented BM25 store, 50 synthetic terms per chunk, "
        "6-term queries)",
        "",
        md_table(["chunks", "build s", "memory MB", "p50 ms", "p95 ms"], lex, digits=2),
        "",
        f"`faiss_index=auto` chooses: {auto}.",
        "",
        f"Machine: {describe_machine(d['machine'])}.",
    ])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        what = sys.argv[2]
        if what == "dense":
            kind, n, work, single = sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]), sys.argv[6]
            print(json.dumps(child_dense(kind, n, work, int(single))))
        else:
            print(json.dumps(child_lexical(int(sys.argv[3]), int(sys.argv[5]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=(100_000, 1_000_000))
    parser.add_argument("--hnsw-max", type=int, default=200_000,
                        help="skip HNSW above this size (its build is the slow one)")
    parser.add_argument("--lexical-max", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="queries for recall")
    parser.add_argument("--single", type=int, default=50, help="single queries for latency")
    parser.add_argument("--timeout", type=float, default=900, help="per child, seconds")
    parser.add_argument("--quick", action="store_true", help="20,000 vectors only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.single = (20_000,), 50, 20
    run(args)
    print((args.out / "scale.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
