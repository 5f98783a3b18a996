"""Embedding backends side by side, per model: throughput, question latency, fidelity, quality.

    python bench/embed_speed.py [--quick] [--models NAME ...] [--backends onnx-int8,openvino-int8]
                                [--cache-dir DIR]

For the default embedding model and for all-MiniLM-L6-v2 (the previous default), one after the
other, in one process: the same texts for every candidate, i.e. the seed corpus's texts as the
index embeds them (chunks and sentence rows, title included, the model's passage prompt) mixed
and repeated to ~500 texts (--quick: ~150). Candidates of a model alternate every 32 texts (and
every question), so that a busy machine slows every candidate alike:

- batch throughput (texts/s, and CPU ms per text) with 1 and 2 intra-op threads: bare fp32
  PyTorch `SentenceTransformer.encode` and every exported backend (`embed_passages`);
- warm single-question latency (p50/p95 ms of `embed_query`) with 1 and 2 threads, and for the
  configured backend where a question's time goes (`anatomy`: tokenization, the runtime alone on
  the same input, the rest of the call; the runtime alone at 16, 32 and 64 tokens);
- build throughput: chunks only (the seed corpus's, the longest texts an index embeds), batches
  of the build's size (`embedding_batch_size`) with 2 threads, chunks/s and the ratio to bare
  torch in the same run;
- mean / min cosine of each backend's vectors to the PyTorch ones;
- dev-question quality per backend: hit@1, hit@5, MRR of `answer_pattern` in `Assistant.search`
  (hybrid, default weights) and with the vector legs alone (no BM25), which shows any vector
  difference that the lexical leg would hide.

`builder.build` end to end against bare torch is in bench/speed.py. --quick compares torch with
the configured backend only (no export to make). Writes bench/out/embed_speed.json and .md.
Exports go to the model cache (reused between runs).
"""

from __future__ import annotations

import argparse
import gc
import random
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
    compared_models,
    describe_machine,
    machine,
    md_table,
    model_label,
    ms_stats,
    workdir,
    write_results,
)

from assistant import Assistant, Settings
from assistant.embed.backends import make_embedder
from assistant.embed.base import embedding_identity, resolve_model
from assistant.evaluation import load_questions, score_passages
from assistant.index.builder import build
from assistant.ingest.chunking import corpus_indexed_sentences, corpus_indexed_texts

BACKENDS = ("onnx", "onnx-int8", "openvino", "openvino-int8")
QUESTIONS = (
    "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?",
    "Quelle est la surface de la Serre numérique de Valenciennes ?",
    "Combien d'entreprises le cluster accompagne-t-il ?",
)


def seed_chunks(n: int) -> list[str]:
    """The seed corpus's chunks only, as the indexer embeds them, mixed (seeded), repeated to
    `n`."""
    chunks = list(dict.fromkeys(corpus_indexed_texts(SEED_CORPUS, Settings())))
    random.Random(1).shuffle(chunks)
    return (chunks * (n // len(chunks) + 1))[:n]


def seed_texts(n: int) -> list[str]:
    """The seed corpus's chunks and sentence rows as the indexer embeds them, each once, mixed
    (seeded) and repeated to `n` texts."""
    texts = list(dict.fromkeys(corpus_indexed_texts(SEED_CORPUS, Settings())
                               + corpus_indexed_sentences(SEED_CORPUS)))
    random.Random(0).shuffle(texts)
    return (texts * (n // len(texts) + 1))[:n]


class TorchBare:
    """fp32 PyTorch `SentenceTransformer.encode`, as sentence-transformers users run it (with
    the model's prompts, as the index uses them)."""

    def __init__(self, settings: Settings, threads: int) -> None:
        from sentence_transformers import SentenceTransformer

        self.threads = threads
        target, local = resolve_model(settings)
        self.model = SentenceTransformer(target, device="cpu", local_files_only=local)
        identity = embedding_identity(settings)
        self.query_prompt: str = identity["query_prompt"]
        self.passage_prompt: str = identity["passage_prompt"]

    def _threads(self) -> None:
        import torch

        torch.set_num_threads(self.threads)  # process-wide: set before each measurement

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self._threads()
        return np.asarray(self.model.encode([self.passage_prompt + t for t in texts],
                                            batch_size=32, normalize_embeddings=True,
                                            show_progress_bar=False))

    def embed_query(self, text: str) -> np.ndarray:
        self._threads()
        return np.asarray(self.model.encode([self.query_prompt + text], normalize_embeddings=True,
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
    for embedder in candidates.values():  # warm every runtime once, every question length too
        embedder.embed_passages(texts[:8])
        for question in QUESTIONS:
            embedder.embed_query(question)
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
        "texts_per_s": round(n / wall[key], 1), "cpu_ms_per_text": round(1000 * cpu[key] / n, 2),
        "query_ms": ms_stats(single[key]), "query_cpu_ms": ms_stats(single_cpu[key]),
        "vectors": np.concatenate(parts[key]),
    } for key in candidates}


def build_throughput(candidates: dict[tuple[str, int], Any], chunks: list[str],
                     batch: int) -> dict[str, dict[str, float]]:
    """chunks/s of every 2-thread candidate on `chunks`, `batch` at a time as a build embeds
    them (`embed_passages` sorts a call's texts by length), candidates alternating every batch;
    with the ratio to bare torch measured in the same loop."""
    two = {name: e for (name, threads), e in candidates.items() if threads == 2}
    wall = dict.fromkeys(two, 0.0)
    for start in range(0, len(chunks), batch):
        part = chunks[start:start + batch]
        for name, embedder in two.items():
            t0 = time.perf_counter()
            embedder.embed_passages(part)
            wall[name] += time.perf_counter() - t0
    rates = {name: len(chunks) / seconds for name, seconds in wall.items()}
    return {name: {"chunks_per_s": round(rate, 1), "x_torch": round(rate / rates["torch"], 2)}
            for name, rate in rates.items()}


def anatomy(embedder: Any, queries: int) -> dict[str, Any]:
    """Where a warm `embed_query` spends its time (an exported backend, as configured): the whole
    call, its tokenization (`_tokenize`), the runtime alone on the same input (`_run`), and the
    runtime alone on inputs of 16, 32 and 64 tokens (what a longer question costs). Interleaved
    question by question; the call's own overhead is the whole minus tokenization and runtime."""
    feeds = {q: embedder._tokenize([embedder.query_prompt + q]) for q in QUESTIONS}
    sized = {n: embedder._tokenize([" ".join(["mot"] * (n - 4))]) for n in (16, 32, 64)}
    steps: dict[str, Any] = {
        "embed_query": embedder.embed_query,
        "tokenize": lambda q: embedder._tokenize([embedder.query_prompt + q]),
        "runtime": lambda q: embedder._run(feeds[q]),
    }
    times: dict[str, list[float]] = {name: [] for name in [*steps, *map("runtime_{}".format,
                                                                         sized)]}
    for i in range(max(queries, 30) * 2):
        question = QUESTIONS[i % len(QUESTIONS)]
        for name, step in steps.items():
            t0 = time.perf_counter()
            step(question)
            times[name].append(time.perf_counter() - t0)
    for n, feed in sized.items():  # apart: a change of input shape costs ~2 ms by itself
        for _ in range(max(queries, 30)):
            t0 = time.perf_counter()
            embedder._run(feed)
            times[f"runtime_{n}"].append(time.perf_counter() - t0)
    out: dict[str, Any] = {name: ms_stats(values) for name, values in times.items()}
    out["tokens"] = sorted({int(f["input_ids"].shape[1]) for f in feeds.values()})
    out["overhead_p50_ms"] = round(out["embed_query"]["p50"] - out["tokenize"]["p50"]
                                   - out["runtime"]["p50"], 3)
    return out


def quality(settings: Settings, root: Path) -> dict[str, Any]:
    """hit@1, hit@5, MRR on the dev questions: hybrid (default weights), and vectors only (chunk
    and sentence legs with their default ratio, no BM25)."""
    questions = [q for q in load_questions(DEV_QUESTIONS)
                 if q.kind == "fact" and q.pattern is not None]
    settings = settings.replace(corpus_dir=SEED_CORPUS, index_dir=root / "quality-index")
    embedder = make_embedder(settings)
    build(settings, lambda: embedder, progress=False)
    out: dict[str, Any] = {"questions": len(questions)}
    vectors = settings.dense_weight + settings.sentence_weight
    dense_only = settings.replace(dense_weight=settings.dense_weight / vectors,
                                  sentence_weight=settings.sentence_weight / vectors)
    for label, variant in (("hybrid", settings), ("dense", dense_only)):
        bot = Assistant.load(variant, embedder=embedder)
        ranks = [score_passages(q, bot.search(q.question, k=5), k=5)["rank"] for q in questions]
        out[label] = {
            "hit@1": sum(r == 1 for r in ranks), "hit@5": sum(r is not None for r in ranks),
            "mrr": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
        }
    shutil.rmtree(root / "quality-index", ignore_errors=True)
    return out


def measure_model(model: str, backends: list[str], texts: list[str], rounds: int, queries: int,
                  cache: Path | None, root: Path) -> dict[str, Any]:
    """Every candidate of one model: speed with 1 and 2 threads, fidelity, quality."""
    base = Settings(embedding_model=model, embedding_cache_dir=cache)
    candidates: dict[tuple[str, int], Any] = {}
    exports: dict[str, Any] = {}
    for threads in (1, 2):
        candidates[("torch", threads)] = TorchBare(base, threads)
        for backend in backends:
            settings = base.replace(embedding_backend=backend, embedding_threads=threads)
            t0 = time.perf_counter()
            candidates[(backend, threads)] = embedder = make_embedder(settings, batch=True)
            exports[backend] = {"export_s": embedder.meta.get("seconds"),  # type: ignore[attr-defined]
                                "load_s": round(time.perf_counter() - t0, 2),
                                "directory": str(embedder.directory)}  # type: ignore[attr-defined]
    print(f"{model}: {len(texts)} textes, {rounds} tour(s), backends : torch, "
          f"{', '.join(backends)}", file=sys.stderr)
    measured = speed(candidates, texts, rounds, queries)
    batch = Settings().embedding_batch_size
    chunks = build_throughput(candidates, seed_chunks(len(texts)), batch)
    configured = candidates.get((Settings().embedding_backend, 1))
    parts = anatomy(configured, queries) if hasattr(configured, "_run") else None
    del candidates, configured
    gc.collect()
    reference = measured[("torch", 2)]["vectors"]
    result: dict[str, Any] = {"speed": {}, "anatomy": parts, "build_batch": batch,
                              "chunks": chunks}
    for (name, threads), values in measured.items():
        cos = np.sum(values.pop("vectors") * reference, axis=1)
        entry = result["speed"].setdefault(name, {"cosine_mean": round(float(cos.mean()), 5),
                                                  "cosine_min": round(float(cos.min()), 5),
                                                  **exports.get(name, {})})
        entry[str(threads)] = values
    result["quality"] = {}
    for backend in ["torch", *backends]:
        result["quality"][backend] = quality(base.replace(embedding_backend=backend), root)
        gc.collect()
    return result


def model_table(model: str, data: dict[str, Any]) -> str:
    per_model = data["models"][model]
    rows = []
    base = per_model["speed"]["torch"]["2"]["texts_per_s"]
    for name, per in per_model["speed"].items():
        one, two = per["1"], per["2"]
        q = per_model["quality"].get(name, {})
        build = per_model.get("chunks", {}).get(name, {})
        rows.append([
            name, two["texts_per_s"], round(two["texts_per_s"] / base, 2),
            build.get("chunks_per_s", "–"), build.get("x_torch", "–"), one["texts_per_s"],
            one["cpu_ms_per_text"], one["query_ms"]["p50"], one["query_ms"]["p95"],
            one["query_cpu_ms"]["p50"], two["query_ms"]["p50"], per["cosine_mean"],
            per["cosine_min"],
            "{hit@1}/{hit@5}/{mrr}".format(**q["hybrid"]) if q else "–",
            "{hit@1}/{hit@5}/{mrr}".format(**q["dense"]) if q else "–",
        ])
    n = per_model["quality"].get("torch", {}).get("questions", "?")
    return "\n\n".join([
        f"### Embedding backends ({model_label(model)}, same texts, one run)",
        md_table(["backend", "texts/s 2 thr", "x torch",
                  f"chunks/s 2 thr, batch {per_model.get('build_batch', 32)}", "x torch",
                  "texts/s 1 thr", "CPU ms/text 1 thr",
                  "question p50 ms 1 thr", "p95", "CPU ms p50", "p50 2 thr", "cosine mean",
                  "cosine min", f"hybrid hit@1/hit@5/MRR ({n} q.)", "vectors only"], rows,
                 digits=3),
    ])


def anatomy_table(data: dict[str, Any]) -> str:
    rows = []
    for model, per_model in data["models"].items():
        a = per_model.get("anatomy")
        if a:
            rows.append([model_label(model), "/".join(map(str, a["tokens"])),
                         a["embed_query"]["p50"], a["tokenize"]["p50"], a["runtime"]["p50"],
                         a["overhead_p50_ms"], a["runtime_16"]["p50"], a["runtime_32"]["p50"],
                         a["runtime_64"]["p50"]])
    if not rows:
        return ""
    return "\n\n".join([
        f"### Anatomy of a warm question ({data['default_backend']}, 1 thread, p50 ms)",
        md_table(["model", "tokens (padded)", "`embed_query`", "tokenization", "runtime alone",
                  "rest of the call", "runtime 16 tokens", "32 tokens", "64 tokens"], rows,
                 digits=3),
        "The same three questions, each step in turn; then each size alone (switching input "
        "shape costs ~2 ms by itself). The call's own work around the runtime (prompt, arrays, "
        "lock, copy of the vector) is the rest; the runtime reads every weight once per call, "
        "so 16 tokens cost most of what 32 do.",
    ])


def markdown(data: dict[str, Any]) -> str:
    n = next(iter(data["models"].values()))["quality"].get("torch", {}).get("questions", "?")
    return "\n\n".join([
        *[model_table(model, data) for model in data["models"]],
        f"{data['texts']} texts (the seed corpus's chunks and sentence rows, as indexed) x "
        f"{data['rounds']} round(s), candidates of a model alternating every 32 texts; torch = "
        "bare fp32 `SentenceTransformer.encode` with the model's prompts; cosines against torch "
        f"with 2 threads; chunks/s: the seed corpus's chunks alone (the longest texts a build "
        "embeds), in batches of the build's size, 2 threads, candidates alternating every batch; "
        f"hit counts out of {n} questions. Models are measured one after the "
        "other: compare backends within a table (`bench/speed.py` alternates the models).",
        *[t for t in [anatomy_table(data)] if t],
        f"Machine: {describe_machine(data['machine'])}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="~150 texts, one round, torch and the configured backend only")
    parser.add_argument("--models", nargs="+", default=None,
                        help="embedding models (default: the default model, then "
                             "all-MiniLM-L6-v2)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated (default: all; --quick: the configured one)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="model cache (default: the user cache, as in production)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    default_backend = Settings().embedding_backend
    if args.backends is None:
        args.backends = default_backend if args.quick else ",".join(BACKENDS)
    backends = [b for b in args.backends.split(",") if b and b != "torch"]
    models = args.models or compared_models()
    n, rounds, queries = (150, 1, 15) if args.quick else (500, 2, 30)
    texts = seed_texts(n)
    root = workdir("embed_speed", args.out)
    data: dict[str, Any] = {"machine": machine(), "texts": n, "rounds": rounds,
                            "default_backend": default_backend, "models": {}}
    for model in models:
        data["models"][model] = measure_model(model, backends, texts, rounds, queries,
                                              args.cache_dir, root)
    shutil.rmtree(root, ignore_errors=True)
    md = write_results("embed_speed", data, markdown(data), out=args.out)
    print(md.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
