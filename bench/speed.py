"""Speed, each figure side by side in one run.

1. Build throughput: `indexer.build` (what `assistant index build` runs) vs bare
   `SentenceTransformer.encode` on the very same chunk texts; the ratio is the pipeline overhead.
2. Query latency p50/p95 of `search` and `ask` in one warm process, with torch's default thread
   count and with one thread; start-up to first answer (`assistant ask` as a subprocess).
3. Incremental update on synthetic corpora of 5 / 500 / 5,000 short articles (1-2 chunks each):
   no-change update, one article added, one removed; cProfile of the largest add.
4. Peak memory (RSS of the child alone, `os.wait4`) of a build and of a serving process.

    python bench/speed.py [--sizes 5 500 5000] [--reps 3] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    DEV_QUESTIONS,
    OUT,
    SEED_CORPUS,
    assistant_command,
    child_env,
    describe_machine,
    machine,
    md_table,
    ms_stats,
    run_measured,
    workdir,
    write_results,
)
from synthetic import write_corpus

from assistant import Assistant, Settings
from assistant.backends import make_embedder
from assistant.chunking import chunk_article, indexed_text, make_splitter
from assistant.corpus import read_article, scan_corpus
from assistant.embeddings import SentenceTransformerEmbedder, packaged_model_path
from assistant.evaluation import load_questions
from assistant.indexer import build, update

SHORT = (2, 3)  # sentences per synthetic article: one ~300-character chunk, sometimes two


def build_throughput(corpus: Path, work: Path, embedders: dict[str, Any],
                     reps: int) -> dict[str, Any]:
    """Alternate, in each rep: a build per backend, then bare encode (same texts, batch size)."""
    from sentence_transformers import SentenceTransformer

    settings = Settings(corpus_dir=corpus, index_dir=work / "tp-index")
    splitter = make_splitter(settings)
    texts = []
    for f in scan_corpus(corpus):
        article = read_article(f.path, f.source)
        texts += [indexed_text(article.title, c.text) for c in chunk_article(article, splitter)]
    bare = SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True)
    bare.encode(texts[:8])
    times: dict[str, list[float]] = {}
    for embedder in embedders.values():
        embedder.embed_passages(texts[:8])
    for rep in range(reps):
        for backend, embedder in embedders.items():
            index_dir = work / f"tp-index-{backend}-{rep}"  # fresh: no embedding cache
            t0 = time.perf_counter()
            report = build(settings.replace(index_dir=index_dir, embedding_backend=backend),
                           lambda e=embedder: e, progress=False)
            times.setdefault(backend, []).append(time.perf_counter() - t0)
            assert report.chunks_embedded == len(set(texts)), "the build must embed every chunk"
            shutil.rmtree(index_dir)
        t0 = time.perf_counter()
        bare.encode(texts, batch_size=settings.embedding_batch_size, normalize_embeddings=True)
        times.setdefault("bare", []).append(time.perf_counter() - t0)
    best = {key: min(values) for key, values in times.items()}
    return {"chunks": len(texts), "seconds": times,
            "chunks_per_s": {key: round(len(texts) / v, 1) for key, v in best.items()},
            "overhead_ratio": round(best["torch"] / best["bare"], 3)}


def query_latency(bots: dict[str, tuple[Any, int]], questions: list[str],
                  reps: int) -> dict[str, Any]:
    """search and ask in one warm process for each (assistant, torch threads), alternated pass
    by pass so that other jobs on the machine weigh on every configuration alike."""
    import torch

    default_threads = torch.get_num_threads()
    for bot, _ in bots.values():
        bot.ask(questions[0])
    times: dict[str, list[float]] = {}
    for _ in range(reps):
        for name, (bot, threads) in bots.items():
            torch.set_num_threads(threads or default_threads)
            for q in questions:
                for call in ("search", "ask"):
                    t0 = time.perf_counter()
                    getattr(bot, call)(q)
                    times.setdefault(f"{call}|{name}", []).append(time.perf_counter() - t0)
    torch.set_num_threads(default_threads)
    return {"default_threads": default_threads, "configs": list(bots),
            **{key: ms_stats(values) for key, values in times.items()}}


def startup(settings: Settings, question: str, reps: int) -> dict[str, Any]:
    """Wall time and peak RSS of `assistant ask QUESTION` (a fresh process each time)."""
    cmd = [*assistant_command(), "ask", question, "--json", "--index", str(settings.index_dir),
           "--corpus", str(settings.corpus_dir)]
    runs = [run_measured(cmd, env=child_env()) for _ in range(reps)]
    for r in runs:
        if r.returncode != 0:
            raise RuntimeError(f"assistant ask failed: {r.stderr[-800:]}")
    return {"wall_s": [round(r.wall_s, 3) for r in runs],
            "median_s": round(statistics.median(r.wall_s for r in runs), 3),
            "max_rss_mb": round(max(r.max_rss_mb for r in runs), 1)}


SERVE = """
import json, sys, time
from assistant import Assistant, Settings
bot = Assistant.load(Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2]))
for q in json.loads(sys.argv[3]):
    bot.ask(q)
"""


def serving_memory(settings: Settings, questions: list[str]) -> dict[str, Any]:
    """Peak RSS of a process that loads the assistant and answers a few questions."""
    r = run_measured([sys.executable, "-c", SERVE, str(settings.corpus_dir),
                      str(settings.index_dir), json.dumps(questions)], env=child_env())
    if r.returncode != 0:
        raise RuntimeError(f"serving process failed: {r.stderr[-800:]}")
    return {"questions": len(questions), "wall_s": round(r.wall_s, 2),
            "max_rss_mb": round(r.max_rss_mb, 1)}


def cli_build(settings: Settings) -> dict[str, Any]:
    """`assistant index build --json` as a child process: wall time, peak RSS, its report."""
    r = run_measured([*assistant_command(), "index", "build", "--json", "--corpus",
                      str(settings.corpus_dir), "--index", str(settings.index_dir)],
                     env=child_env(), timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"assistant index build failed: {r.stderr[-800:]}")
    report = json.loads(r.stdout)
    return {"wall_s": round(r.wall_s, 2), "max_rss_mb": round(r.max_rss_mb, 1),
            "articles": report["articles"], "chunks": report["chunks"],
            "build_s": round(report["seconds"], 2)}


def _timed(settings: Settings, embedder: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    report = update(settings, lambda: embedder, progress=False)
    return time.perf_counter() - t0, report


def incremental(size: int, work: Path, embedder: Any, reps: int, profile: bool,
                child: bool = True) -> dict[str, Any]:
    """Build a synthetic corpus once (a child process, for its peak memory, unless `child` is
    False), then time updates in this process."""
    corpus = work / f"corpus-{size}"
    write_corpus(corpus, size, sentences=SHORT)
    settings = Settings.from_env(corpus_dir=corpus, index_dir=work / f"index-{size}")
    if child:
        built = cli_build(settings)
    else:
        report = build(settings, lambda: embedder, progress=False)
        built = {"wall_s": None, "max_rss_mb": None, "articles": report.articles,
                 "chunks": report.chunks, "build_s": round(report.seconds, 2)}
    result: dict[str, Any] = {"articles": size, "build": built}
    no_change = []
    for _ in range(reps):
        seconds, report = _timed(settings, embedder)
        assert report.generation is None, "nothing changed: no new generation expected"
        no_change.append(seconds)
    add, remove = [], []
    for rep in range(reps):
        new = write_corpus(corpus, 1, start=size + rep, sentences=SHORT)[0]
        seconds, report = _timed(settings, embedder)
        assert len(report.added) == 1 and report.chunks_embedded >= 1
        add.append(seconds)
        new.unlink()
        seconds, report = _timed(settings, embedder)
        assert len(report.removed) == 1
        remove.append(seconds)
    result.update({
        "chunks": result["build"]["chunks"],
        "no_change_s": _round(no_change), "add_one_s": _round(add), "remove_one_s": _round(remove),
    })
    if profile:
        write_corpus(corpus, 1, start=size + reps + 1, sentences=SHORT)
        profiler = cProfile.Profile()
        profiler.enable()
        update(settings, lambda: embedder, progress=False)
        profiler.disable()
        result["add_one_profile"] = top_functions(profiler)
    return result


#: The steps of an update worth naming (file:function), whatever calls them.
STEPS = (
    "corpus.py:scan_corpus", "indexer.py:_diff", "store.py:check", "store.py:article_states",
    "store.py:copy_database", "store.py:read_dense", "store.py:remove_article",
    "store.py:add_article", "embeddings.py:embed_passages", "store.py:cached_vectors",
    "store.py:all_tokens", "lexical.py:load_tokens", "indexer.py:_updated_dense",
    "store.py:write_dense", "lexical.py:build", "lexical.py:save", "store.py:commit",
    "generations.py:publish", "generations.py:_fsync_tree", "generations.py:_prune",
    "store.py:counts", "generations.py:clean_abandoned",
)


def top_functions(profiler: cProfile.Profile) -> list[dict[str, Any]]:
    """Cumulative time of the named steps of one update (cProfile adds some overhead)."""
    stats = pstats.Stats(profiler)
    rows = [{"step": f"{Path(file).name}:{func}", "calls": calls, "cumulative_s": round(cum, 4)}
            for (file, _, func), (_, calls, _, cum, _) in stats.stats.items()  # type: ignore
            if f"{Path(file).name}:{func}" in STEPS and "assistant" in file]
    total = max((cum for *_, cum, _ in stats.stats.values()), default=0.0)  # type: ignore
    rows.sort(key=lambda r: -r["cumulative_s"])
    return [{"step": "total", "calls": 1, "cumulative_s": round(total, 4)}, *rows]


def _round(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "all": [round(v, 3) for v in values]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    work = workdir("speed", args.out)
    seed = Settings(corpus_dir=args.corpus, index_dir=work / "seed-index",
                    embedding_backend=args.backend or Settings().embedding_backend)
    backend = seed.embedding_backend
    os.environ["ASSISTANT_EMBEDDING_BACKEND"] = backend  # the same backend in every child
    builder = make_embedder(seed, batch=True)  # what `assistant index build/update` uses
    embedders = {"torch": SentenceTransformerEmbedder(seed.replace(embedding_backend="torch"))}
    if backend != "torch":
        embedders = {backend: builder, **embedders, "serving": make_embedder(seed)}
    questions = [q.question for q in load_questions(DEV_QUESTIONS)][: args.questions]
    data: dict[str, Any] = {"machine": info, "corpus": str(args.corpus), "quick": args.quick,
                            "backend": backend}
    data["seed_build"] = cli_build(seed)
    data["throughput"] = build_throughput(
        args.corpus, work, {k: v for k, v in embedders.items() if k != "serving"}, args.reps)
    torch_seed = seed.replace(embedding_backend="torch", index_dir=work / "seed-index-torch")
    if backend != "torch":
        build(torch_seed, lambda: embedders["torch"], progress=False)
    bots = {"torch": (Assistant.load(torch_seed, embedder=embedders["torch"]), 0),
            "torch-1-thread": (Assistant.load(torch_seed, embedder=embedders["torch"]), 1)}
    if backend != "torch":
        bots = {backend: (Assistant.load(seed, embedder=embedders["serving"]), 0), **bots}
    data["latency"] = query_latency(bots, questions, args.reps)
    data["startup"] = startup(seed, questions[0], args.reps)
    data["serving"] = serving_memory(seed, questions[:5])
    data["incremental"] = [
        incremental(size, work, builder, args.reps, profile=size == max(args.sizes),
                    child=not args.tiny)
        for size in args.sizes
    ]
    big = data["incremental"][-1]
    if not args.quick:
        big_settings = Settings.from_env(corpus_dir=work / f"corpus-{big['articles']}",
                                         index_dir=work / f"index-{big['articles']}")
        data["serving_large"] = serving_memory(big_settings, questions[:5])
    md = markdown(data)
    write_results("speed", data, md, args.out)
    return data


def threads_note(lat: dict[str, Any]) -> str:
    """One sentence comparing torch's default thread count with one thread, from the data."""
    n = lat["default_threads"]
    if n == 1:
        return "torch uses one thread here."
    many, one = lat["search|torch"]["p50"], lat["search|torch-1-thread"]["p50"]
    ratio = many / one if one else float("nan")
    text = (f"Torch with its default {n} intra-op threads vs one thread, alternated within the "
            f"same run: search p50 {many:.1f} vs {one:.1f} ms (×{ratio:.1f}). ")
    if ratio > 1.2:
        return text + ("Other processes held the cores: the threads of one small query wait on "
                       "each other, and one thread per request is faster.")
    return text + ("With free cores, splitting one query helps a little; with other processes "
                   "on the cores it reverses sharply (×8 to ×30 slower with 4-7 other runnable "
                   "processes on this machine), hence one thread per request when serving.")


def markdown(d: dict[str, Any]) -> str:
    tp, lat, st = d["throughput"], d["latency"], d["startup"]
    backend = d["backend"]
    names = {backend: f"{backend} (configured)", "torch-1-thread": "torch, 1 thread",
             "torch": f"torch, {lat['default_threads']} threads"}
    lat_rows = [[f"{call}, {names[c]}", lat[f"{call}|{c}"]["p50"], lat[f"{call}|{c}"]["p95"],
                 lat[f"{call}|{c}"]["n"]] for c in lat["configs"] for call in ("search", "ask")]
    tp_rows = [[f"`indexer.build`, backend {b}" + (" (configured)" if b == backend else ""),
                tp["chunks"], tp["chunks_per_s"][b]] for b in tp["chunks_per_s"] if b != "bare"]
    tp_rows.append(["bare `SentenceTransformer.encode` (torch)", tp["chunks"],
                    tp["chunks_per_s"]["bare"]])
    speedup = tp["chunks_per_s"].get(backend, 0) / tp["chunks_per_s"]["bare"]
    inc_rows = [[r["articles"], r["chunks"], r["build"]["build_s"], r["build"]["max_rss_mb"],
                 r["no_change_s"]["median"], r["add_one_s"]["median"],
                 r["remove_one_s"]["median"]] for r in d["incremental"]]
    profile = d["incremental"][-1].get("add_one_profile", [])
    top = ", ".join(f"`{p['step'].split(':')[-1]}` {p['cumulative_s']:.2f} s"
                    for p in profile[1:7])
    big = d["incremental"][-1]
    return "\n".join([
        "### Build throughput (same chunk texts, one process, best of "
        f"{len(tp['seconds']['bare'])})",
        "",
        md_table(["what", "chunks", "chunks/s"], tp_rows, digits=1),
        "",
        f"Pipeline overhead with the same torch model: **×{tp['overhead_ratio']:.2f}** (build "
        "time / bare encode time: reading, chunking, analysis, SQLite, BM25, FAISS, fsync)."
        + (f" The configured backend ({backend}) builds ×{speedup:.1f} faster than bare torch."
           if backend != "torch" else ""),
        "",
        "### Query latency (one warm process, seed index)",
        "",
        md_table(["call", "p50 ms", "p95 ms", "n"], lat_rows, digits=1),
        "",
        threads_note(lat),
        "",
        f"Start-up to first answer (`assistant ask …`, fresh process, median of "
        f"{len(st['wall_s'])}): **{st['median_s']:.2f} s**, peak RSS {st['max_rss_mb']:.0f} MB. "
        f"Serving process (load + {d['serving']['questions']} answers): peak RSS "
        f"{d['serving']['max_rss_mb']:.0f} MB on the seed index"
        + (f", {d['serving_large']['max_rss_mb']:.0f} MB on the {big['articles']}-article index"
           if "serving_large" in d else "") + ". "
        f"`assistant index build` of the seed corpus: {d['seed_build']['wall_s']:.1f} s wall, "
        f"peak RSS {d['seed_build']['max_rss_mb']:.0f} MB.",
        "",
        "### Incremental update (synthetic short articles, 1-2 chunks each)",
        "",
        md_table(["articles", "chunks", "full build s", "build peak RSS MB", "no-change update s",
                  "add 1 article s", "remove 1 article s"], inc_rows, digits=2),
        "",
        "Corpora are synthetic French articles (`bench/synthetic.py`, seeded), kept short (one "
        f"~300-character chunk, sometimes two) so that the {big['articles']}-article index "
        f"embeds within the benchmark's time ({big['build']['build_s']:.0f} s here); what an "
        "update costs besides embedding the new article grows with the number of chunks, not "
        "with their length, and real articles give ~10-20 chunks each. Medians of "
        f"{len(big['add_one_s']['all'])} runs. Costliest steps of one add-one update at "
        f"{big['chunks']} chunks (cProfile, cumulative, total {profile[0]['cumulative_s']:.2f} s"
        f" with profiling overhead): {top or '–'}.",
        "",
        f"Machine: {describe_machine(d['machine'])}.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=SEED_CORPUS)
    parser.add_argument("--sizes", type=int, nargs="+", default=(5, 500, 5000))
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--backend", default=None, help="embedding backend (default: setting)")
    parser.add_argument("--questions", type=int, default=16, help="dev questions timed")
    parser.add_argument("--quick", action="store_true", help="sizes 5 50, 1 rep, 4 questions")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: 8 synthetic articles as corpus, sizes 3 10")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick or args.tiny:
        args.quick, args.sizes, args.reps, args.questions = True, (5, 50), 1, 4
    if args.tiny:
        args.sizes, args.questions = (3, 10), 2
        args.corpus = args.out / "work" / "tiny-corpus"
        write_corpus(args.corpus, 8)
    args.sizes = sorted(args.sizes)
    run(args)
    print((args.out / "speed.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
