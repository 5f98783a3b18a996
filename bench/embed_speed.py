"""Embedding backends side by side: throughput, question latency, fidelity, dev-set quality.

    python bench/embed_speed.py [--quick] [--backends onnx-int8,openvino-int8] [--cache-dir DIR]

One process, the same texts for everyone: the seed corpus's chunks (as indexed, title included)
repeated to ~500 texts (--quick: ~150). Candidates alternate every 32 texts (and every
question), so that a busy machine slows every candidate alike:

- batch throughput (chunks/s, and CPU ms per chunk) with 1 and 2 intra-op threads: bare fp32 PyTorch
  `SentenceTransformer.encode` and every exported backend (`embed_passages`);
- warm single-question latency (p50/p95 ms of `embed_query`) with 1 and 2 threads;
- mean / min cosine of each backend's vectors to the PyTorch ones;
- `assistant.indexer.build` end to end (chunks/s) with the default backend and with torch,
  on a copy of the seed corpus repeated to ~500 chunks;
- dev-question quality per backend: hit@1, hit@5, MRR of `answer_pattern` in `Assistant.search`
  (hybrid, default dense weight) and with the dense leg alone (dense_weight=1), which shows any
  vector difference that the lexical leg would hide.

Writes bench/out/embed_speed.json and .md. Exports go to the model cache (reused between runs).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (  # type: ignore[import-not-found]
    DEV_QUESTIONS,
    OUT,
    SEED_CORPUS,
    describe_machine,
    machine,
    md_table,
    ms_stats,
    workdir,
    write_results,
)

from assistant import Assistant, Settings
from assistant.backends import make_embedder
from assistant.chunking import corpus_indexed_texts
from assistant.corpus import read_article
from assistant.embeddings import packaged_model_path
from assistant.evaluation import load_questions, score_passages
from assistant.indexer import build

BACKENDS = ("onnx", "onnx-int8", "openvino", "openvino-int8")
QUESTIONS = (
    "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?",
    "Quelle est la surface de la Serre numérique de Valenciennes ?",
    "Combien d'entreprises le cluster accompagne-t-il ?",
)


def seed_texts(n: int) -> list[str]:
    """The seed corpus's chunks as the indexer embeds them, repeated to `n` texts."""
    chunks = corpus_indexed_texts(SEED_CORPUS, Settings())
    return (chunks * (n // len(chunks) + 1))[:n]


class TorchBare:
    """fp32 PyTorch `SentenceTransformer.encode`, as sentence-transformers users run it."""

    def __init__(self, threads: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.threads = threads
        self.model = SentenceTransformer(str(packaged_model_path()), device="cpu",
                                         local_files_only=True)

    def _threads(self) -> None:
        import torch

        torch.set_num_threads(self.threads)  # process-wide: set before each measurement

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self._threads()
        return np.asarray(self.model.encode(texts, batch_size=32, normalize_embeddings=True,
                                            show_progress_bar=False))

    def embed_query(self, text: str) -> np.ndarray:
        self._threads()
        return np.asarray(self.model.encode([text], normalize_embeddings=True,
                                            show_progress_bar=False)[0])


def speed(candidates: dict[tuple[str, int], Any], texts: list[str], rounds: int,
          queries: int) -> dict[tuple[str, int], dict[str, Any]]:
    """Finely interleaved: every candidate embeds the same 32-text slice (or question) in turn.

    On a shared machine the load changes from second to second; alternating at this grain gives
    every candidate the same conditions, so the ratios hold even when the absolute numbers move.
    Wall time is what a user waits; CPU time (all threads of the process) is also kept, since on
    one thread it is close to what an idle machine would show.
    """
    texts = sorted(texts, key=len)  # slices of similar length, as a build's batches are
    wall = {key: 0.0 for key in candidates}
    cpu = {key: 0.0 for key in candidates}
    single: dict[tuple[str, int], list[float]] = {key: [] for key in candidates}
    single_cpu: dict[tuple[str, int], list[float]] = {key: [] for key in candidates}
    parts: dict[tuple[str, int], list[np.ndarray]] = {key: [] for key in candidates}
    for embedder in candidates.values():  # warm every runtime once
        embedder.embed_passages(texts[:8])
        embedder.embed_query(QUESTIONS[0])
    for r in range(rounds):
        for start in range(0, len(texts), 32):
            chunk = texts[start:start + 32]
            for key, embedder in candidates.items():
                t0, c0 = time.perf_counter(), time.process_time()
                vectors = embedder.embed_passages(chunk)
                wall[key] += time.perf_counter() - t0
                cpu[key] += time.process_time() - c0
                if r == 0:
                    parts[key].append(vectors)
        for i in range(queries):
            for key, embedder in candidates.items():
                t0, c0 = time.perf_counter(), time.process_time()
                embedder.embed_query(QUESTIONS[i % len(QUESTIONS)])
                single[key].append(time.perf_counter() - t0)
                single_cpu[key].append(time.process_time() - c0)
    n = len(texts) * rounds
    return {key: {
        "chunks_per_s": round(n / wall[key], 1), "cpu_ms_per_chunk": round(1000 * cpu[key] / n, 2),
        "query_ms": ms_stats(single[key]), "query_cpu_ms": ms_stats(single_cpu[key]),
        "vectors": np.concatenate(parts[key]),
    } for key in candidates}


def copy_corpus(target: Path, copies: int) -> None:
    """The seed articles `copies` times, each copy with its own title (so its own chunks)."""
    target.mkdir(parents=True)
    for n in range(copies):
        for f in sorted(SEED_CORPUS.glob("*.txt")):
            article = read_article(f, f.name)
            (target / f"{f.stem}-{n}.md").write_text(
                f"---\ntitle: \"{article.title} ({n})\"\n---\n{article.text}\n", encoding="utf-8")


def build_speed(backend: str, corpus: Path, root: Path, cache: Path | None) -> dict[str, Any]:
    settings = Settings(corpus_dir=corpus, index_dir=root / f"index-{backend}",
                        embedding_backend=backend, embedding_cache_dir=cache)
    report = build(settings, progress=False)
    return {"backend": backend, "chunks": report.chunks_embedded,
            "seconds": round(report.seconds, 2),
            "chunks_per_s": round(report.chunks_embedded / report.seconds, 1)}


def quality(backend: str, root: Path, cache: Path | None) -> dict[str, Any]:
    """hit@1, hit@5, MRR on the dev questions: hybrid (default weight) and dense only."""
    questions = [q for q in load_questions(DEV_QUESTIONS)
                 if q.kind == "fact" and q.pattern is not None]
    settings = Settings(corpus_dir=SEED_CORPUS, index_dir=root / f"quality-{backend}",
                        embedding_backend=backend, embedding_cache_dir=cache)
    embedder = make_embedder(settings)
    build(settings, lambda: embedder, progress=False)
    out: dict[str, Any] = {"questions": len(questions)}
    for label, weight in (("hybrid", settings.dense_weight), ("dense", 1.0)):
        bot = Assistant.load(settings.replace(dense_weight=weight), embedder=embedder)
        ranks = [score_passages(q, bot.search(q.question, k=5), k=5)["rank"] for q in questions]
        out[label] = {
            "hit@1": sum(r == 1 for r in ranks), "hit@5": sum(r is not None for r in ranks),
            "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
        }
    return out


def markdown(data: dict[str, Any]) -> str:
    rows = []
    base = data["speed"]["torch"]["2"]["chunks_per_s"]
    for name, per in data["speed"].items():
        one, two = per["1"], per["2"]
        q = data["quality"].get(name, {})
        rows.append([
            name, two["chunks_per_s"], round(two["chunks_per_s"] / base, 2), one["chunks_per_s"],
            one["cpu_ms_per_chunk"], one["query_ms"]["p50"], one["query_ms"]["p95"],
            one["query_cpu_ms"]["p50"], two["query_ms"]["p50"], per["cosine_mean"],
            per["cosine_min"],
            "{hit@1}/{hit@5}/{mrr}".format(**q["hybrid"]) if q else "–",
            "{hit@1}/{hit@5}/{mrr}".format(**q["dense"]) if q else "–",
        ])
    n = data["quality"].get("torch", {}).get("questions", "?")
    builds = [[b["backend"], b["chunks"], b["seconds"], b["chunks_per_s"]]
              for b in data["builds"]]
    return "\n\n".join([
        "### Embedding backends (all-MiniLM-L6-v2, same texts, one run)",
        md_table(["backend", "chunks/s 2 thr", "x torch", "chunks/s 1 thr", "CPU ms/chunk 1 thr",
                  "question p50 ms 1 thr", "p95", "CPU ms p50", "p50 2 thr", "cosine mean",
                  "cosine min", f"hybrid hit@1/hit@5/MRR ({n} q.)", "dense only"], rows, digits=3),
        f"{data['texts']} chunk texts x {data['rounds']} round(s), candidates alternating every "
        "32 texts; torch = bare fp32 `SentenceTransformer.encode`; hit counts out of "
        f"{n} questions.",
        "### `assistant.indexer.build` end to end",
        md_table(["backend", "chunks embedded", "seconds", "chunks/s"], builds),
        f"Machine: {describe_machine(data['machine'])}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="~150 texts, one round")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="model cache (default: the user cache, as in production)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    n, rounds, queries = (150, 1, 15) if args.quick else (500, 2, 30)
    texts = seed_texts(n)
    root = workdir("embed_speed")
    data: dict[str, Any] = {"machine": machine(), "texts": n, "rounds": rounds,
                            "default_backend": Settings().embedding_backend}

    candidates: dict[tuple[str, int], Any] = {}
    exports: dict[str, Any] = {}
    for threads in (1, 2):
        candidates[("torch", threads)] = TorchBare(threads)
        for backend in backends:
            settings = Settings(embedding_backend=backend, embedding_threads=threads,
                                embedding_cache_dir=args.cache_dir)
            t0 = time.perf_counter()
            candidates[(backend, threads)] = embedder = make_embedder(settings, batch=True)
            exports[backend] = {"export_s": embedder.meta.get("seconds"),
                                "load_s": round(time.perf_counter() - t0, 2),
                                "directory": str(embedder.directory)}
    print(f"{n} textes, {rounds} tour(s), backends : torch, {', '.join(backends)}",
          file=sys.stderr)
    measured = speed(candidates, texts, rounds, queries)
    reference = measured[("torch", 2)]["vectors"]
    data["speed"] = {}
    for (name, threads), result in measured.items():
        cos = np.sum(result.pop("vectors") * reference, axis=1)
        entry = data["speed"].setdefault(name, {"cosine_mean": round(float(cos.mean()), 5),
                                                "cosine_min": round(float(cos.min()), 5),
                                                **exports.get(name, {})})
        entry[str(threads)] = result
    del candidates

    corpus = root / "corpus"
    copy_corpus(corpus, 2 if args.quick else 5)
    default = data["default_backend"]
    data["builds"] = [build_speed(b, corpus, root, args.cache_dir)
                      for b in dict.fromkeys([default, "torch"])]
    data["quality"] = {b: quality(b, root, args.cache_dir) for b in ["torch", *backends]}
    shutil.rmtree(root, ignore_errors=True)
    md = write_results("embed_speed", data, markdown(data), out=args.out)
    print(md.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
