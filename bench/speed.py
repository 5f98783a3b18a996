"""Speed, each figure side by side in one run, for the default embedding model and for
all-MiniLM-L6-v2 (the previous default), both through the configured backend.

1. Build throughput: `builder.build` (what `assistant index build` runs: chunks and sentence
   rows) vs bare fp32 PyTorch `SentenceTransformer.encode` of the same model on the very same
   texts, alternated rep by rep; their ratio, and the backend's own embedding time.
2. Query latency p50/p95 of `search` and `ask` in one warm process on the seed index: with cold
   questions (distinct texts, so the question vector is computed) and repeated ones (the
   retriever's question-vector cache answers).
3. Fresh processes: `import assistant`, `assistant search --json` and `assistant ask --json`
   (wall time to the JSON, peak RSS); peak RSS of a serving process (load + answers).
4. Incremental update on synthetic corpora of 5 / 500 / 5,000 short articles (1-2 chunks each):
   no-change update, one article added, one removed; cProfile of the largest add.

    python bench/speed.py [--sizes 5 500 5000] [--reps 2] [--quick | --tiny]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
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
    OUT,
    SEED_CORPUS,
    assistant_command,
    child_env,
    compared_models,
    describe_machine,
    machine,
    md_table,
    model_label,
    ms_stats,
    question_pool,
    run_measured,
    tree_bytes,
    workdir,
    write_results,
)
from synthetic import write_corpus

from assistant import Assistant, Settings
from assistant.embed.backends import make_embedder
from assistant.embed.base import Embedder, embedding_identity, resolve_model
from assistant.index.builder import build, update
from assistant.ingest.chunking import corpus_indexed_sentences, corpus_indexed_texts

SHORT = (2, 3)  # sentences per synthetic article: one ~300-character chunk, sometimes two
#: Targets (issue, docs/benchmarks.md): default model, warm process, cold questions; serving RSS.
TARGETS = {"build_vs_bare": 2.0, "ask_p50_ms": 20.0, "search_p50_ms": 8.0, "serving_mb": 1024.0}


def slug(model: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in Path(model).name.lower())


def model_env(settings: Settings) -> dict[str, str]:
    """A child's environment that selects this model and backend."""
    return child_env(ASSISTANT_EMBEDDING_MODEL=settings.embedding_model,
                     ASSISTANT_EMBEDDING_BACKEND=settings.embedding_backend)


def build_throughput(work: Path, seeds: dict[str, Settings], builders: dict[str, Embedder],
                     reps: int) -> dict[str, Any]:
    """Per model and rep, alternated: a fresh `builder.build` (configured backend, warm model),
    the backend's `embed_passages` alone, and bare fp32 torch `encode`, on the same texts."""
    from sentence_transformers import SentenceTransformer

    any_seed = next(iter(seeds.values()))
    chunks = corpus_indexed_texts(any_seed.corpus_dir, any_seed)
    sentences = corpus_indexed_sentences(any_seed.corpus_dir)
    texts = list(dict.fromkeys(chunks + sentences))  # what a build embeds: each text once
    bare: dict[str, Any] = {}
    prompts: dict[str, str] = {}
    for model, settings in seeds.items():
        target, local = resolve_model(settings)
        bare[model] = SentenceTransformer(target, device="cpu", local_files_only=local)
        prompts[model] = embedding_identity(settings)["passage_prompt"]
        bare[model].encode([prompts[model] + t for t in texts[:8]])
        builders[model].embed_passages(texts[:8])
    times: dict[str, dict[str, list[float]]] = {m: {} for m in seeds}
    for rep in range(reps):
        for model, settings in seeds.items():
            index_dir = work / f"tp-{slug(model)}-{rep}"  # fresh: no embedding cache
            t0 = time.perf_counter()
            report = build(settings.replace(index_dir=index_dir),
                           lambda e=builders[model]: e, progress=False)
            times[model].setdefault("build", []).append(time.perf_counter() - t0)
            embedded = report.chunks_embedded + report.sentences_embedded
            assert embedded == len(texts), f"build embedded {embedded} texts, {len(texts)} known"
            shutil.rmtree(index_dir)
            t0 = time.perf_counter()
            builders[model].embed_passages(texts)
            times[model].setdefault("embed", []).append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bare[model].encode([prompts[model] + t for t in texts],
                               batch_size=settings.embedding_batch_size,
                               normalize_embeddings=True, show_progress_bar=False)
            times[model].setdefault("bare", []).append(time.perf_counter() - t0)
    del bare
    gc.collect()
    per_model = {}
    for model, measured in times.items():
        best = {key: min(values) for key, values in measured.items()}
        per_model[model] = {
            "seconds": {key: [round(v, 3) for v in values] for key, values in measured.items()},
            "texts_per_s": {key: round(len(texts) / v, 1) for key, v in best.items()},
            "build_vs_bare": round(best["bare"] / best["build"], 2),
            "embed_share": round(best["embed"] / best["build"], 3),
        }
    return {"texts": len(texts), "chunks": len(chunks), "sentences": len(sentences),
            "reps": reps, "models": per_model}


class EmbedCounter:
    """An `Assistant` observer: each embedding call's duration ("embed" stage)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def stage(self, name: str, seconds: float) -> None:
        if name == "embed":
            self.calls.append(seconds)

    def answered(self, answer: Any) -> None:
        pass


#: Question lengths met before timing: "mot " repeated 1..WARM_WORDS times (~1 token each).
WARM_WORDS = 96


def warm_lengths(embedder: Embedder) -> float:
    """Embed a question of every length up to ~WARM_WORDS tokens; returns the seconds spent.

    OpenVINO prepares its kernels for each new input shape: the first question of a token
    length it has not met yet costs several times the usual (measured apart, see
    `query_latency`). A server that has run a while has met them all."""
    t0 = time.perf_counter()
    for words in range(1, WARM_WORDS + 1):
        embedder.embed_query(" ".join(["mot"] * words))
    return time.perf_counter() - t0


def query_latency(seeds: dict[str, Settings], serving: dict[str, Embedder],
                  first: list[str], questions: list[str], repeats: int) -> dict[str, Any]:
    """`search` and `ask`, per model, in this warm process, question by question alternated
    between models so that other jobs on the machine weigh on every model alike.

    First: `embed_query` alone on the `first` questions, before any other question reached the
    serving embedder (new input lengths included). Then every length is met (`warm_lengths`).
    Cold: each of `questions` reaches each assistant once (one assistant for `search`, another
    for `ask`, sharing the model and index), so its vector is computed. Repeated: the same texts
    again, their vectors now in the retriever's cache. The serving embedder (one thread per
    request) is what `assistant serve` uses.
    """
    times: dict[str, list[float]] = {}
    for q in first:
        for model, embedder in serving.items():
            t0 = time.perf_counter()
            embedder.embed_query(q)
            times.setdefault(f"embed|first|{model}", []).append(time.perf_counter() - t0)
    warm_s = {model: round(warm_lengths(embedder), 2) for model, embedder in serving.items()}
    bots: dict[tuple[str, str], tuple[Assistant, EmbedCounter]] = {}
    for model, settings in seeds.items():
        for call in ("search", "ask"):
            bot = Assistant.load(settings, embedder=serving[model])
            counter = EmbedCounter()
            bot.add_observer(counter)
            bot.ask("Bonjour, de quoi parlent ces articles ?")  # warm: lazy imports, first run
            bots[(model, call)] = (bot, counter)
    embeds: dict[str, list[int]] = {}
    embed_ms: dict[str, list[float]] = {}
    for phase, rounds in (("cold", 1), ("repeated", repeats)):
        for _ in range(rounds):
            for q in questions:
                for (model, call), (bot, counter) in bots.items():
                    key = f"{call}|{phase}|{model}"
                    before = len(counter.calls)
                    t0 = time.perf_counter()
                    getattr(bot, call)(q)
                    times.setdefault(key, []).append(time.perf_counter() - t0)
                    embeds.setdefault(key, []).append(len(counter.calls) - before)
                    embed_ms.setdefault(key, []).extend(counter.calls[before:])
    for key, values in times.items():
        if key.startswith("embed|"):
            embeds[key], embed_ms[key] = [1] * len(values), values
    default = next(iter(seeds))
    profiles = {call: hot_spots(bots[(default, call)][0], call, questions)
                for call in ("search", "ask")}
    return {"questions": len(questions), "first_questions": len(first), "repeats": repeats,
            "models": list(seeds), "warm_lengths_s": warm_s, "warm_words": WARM_WORDS,
            "profile": profiles,
            **{key: {**ms_stats(values), "embeds_per_call": round(statistics.mean(embeds[key]), 2),
                     "embed_ms": ms_stats(embed_ms[key]),
                     "all_ms": [round(v * 1000, 3) for v in values]}  # the charts' distribution
               for key, values in times.items()}}


def hot_spots(bot: Assistant, call: str, questions: list[str]) -> dict[str, Any]:
    """Where a repeated (vector cached) `search` or `ask` spends its time: cProfile over one
    pass, ms per call; `assistant` functions by cumulative time, any function by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for q in questions:
        getattr(bot, call)(q)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    n = len(questions)
    total = max(cum for *_, cum, _ in stats.values())
    mine = sorted(((f"{Path(file).name}:{func}", cum) for (file, _, func), (*_, cum, _)
                   in stats.items() if "/assistant/" in file and cum < 0.9 * total),
                  key=lambda r: -r[1])
    own = sorted(((f"{Path(file).name}:{func}" if file != "~" else func, tot)
                  for (file, _, func), (_, _, tot, _, _) in stats.items()), key=lambda r: -r[1])
    return {"ms_per_call": round(1000 * total / n, 2),
            "cumulative": [{"function": f, "ms": round(1000 * c / n, 2)} for f, c in mine[:8]],
            "own": [{"function": f, "ms": round(1000 * t / n, 2)} for f, t in own[:6]]}


def fresh_processes(settings: Settings, question: str, reps: int) -> dict[str, Any]:
    """Median wall time and peak RSS of fresh processes: `import assistant` (and a bare
    interpreter, its floor), `assistant search --json` and `assistant ask --json`, alternated."""
    flags = ["--json", "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir)]
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "import": [sys.executable, "-c", "import assistant"],
        "search": [*assistant_command(), "search", question, *flags],
        "ask": [*assistant_command(), "ask", question, *flags],
    }
    runs: dict[str, list[Any]] = {name: [] for name in commands}
    for _ in range(reps):
        for name, cmd in commands.items():
            r = run_measured(cmd, env=model_env(settings))
            if r.returncode != 0:
                raise RuntimeError(f"{name} failed: {r.stderr[-800:]}")
            if name in {"search", "ask"}:
                json.loads(r.stdout)  # the JSON came out whole
            runs[name].append(r)
    return {name: {"wall_s": [round(r.wall_s, 3) for r in rs],
                   "median_s": round(statistics.median(r.wall_s for r in rs), 3),
                   "max_rss_mb": round(max(r.max_rss_mb for r in rs), 1)}
            for name, rs in runs.items()}


SERVE = """
import json, sys, time
from assistant import Assistant, Settings
bot = Assistant.load(Settings.from_env(corpus_dir=sys.argv[1], index_dir=sys.argv[2]))
for q in json.loads(sys.argv[3]):
    bot.search(q)
    bot.ask(q)
"""


def serving_memory(settings: Settings, questions: list[str]) -> dict[str, Any]:
    """Peak RSS of a process that loads the assistant and answers a few questions."""
    r = run_measured([sys.executable, "-c", SERVE, str(settings.corpus_dir),
                      str(settings.index_dir), json.dumps(questions)], env=model_env(settings))
    if r.returncode != 0:
        raise RuntimeError(f"serving process failed: {r.stderr[-800:]}")
    return {"questions": len(questions), "wall_s": round(r.wall_s, 2),
            "max_rss_mb": round(r.max_rss_mb, 1)}


def cli_build(settings: Settings) -> dict[str, Any]:
    """`assistant index build --json` as a child process: wall time, peak RSS, its report."""
    r = run_measured([*assistant_command(), "index", "build", "--json", "--corpus",
                      str(settings.corpus_dir), "--index", str(settings.index_dir)],
                     env=model_env(settings), timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"assistant index build failed: {r.stderr[-800:]}")
    report = json.loads(r.stdout)
    return {"wall_s": round(r.wall_s, 2), "max_rss_mb": round(r.max_rss_mb, 1),
            "articles": report["articles"], "chunks": report["chunks"],
            "sentences": report.get("sentences_embedded"), "build_s": round(report["seconds"], 2)}


def _timed(settings: Settings, embedder: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    report = update(settings, lambda: embedder, progress=False)
    return time.perf_counter() - t0, report


def incremental(size: int, work: Path, base: Settings, embedder: Any, reps: int, profile: bool,
                child: bool = True) -> dict[str, Any]:
    """Build a synthetic corpus once (a child process, for its peak memory, unless `child` is
    False), then time updates in this process."""
    corpus = work / f"corpus-{size}"
    write_corpus(corpus, size, sentences=SHORT)
    settings = base.replace(corpus_dir=corpus, index_dir=work / f"index-{size}")
    if child:
        built = cli_build(settings)
    else:
        report = build(settings, lambda: embedder, progress=False)
        built = {"wall_s": None, "max_rss_mb": None, "articles": report.articles,
                 "chunks": report.chunks, "sentences": report.sentences_embedded,
                 "build_s": round(report.seconds, 2)}
    result: dict[str, Any] = {"articles": size, "build": built,
                              "index_mb": round(tree_bytes(settings.index_dir) / 2**20, 2)}
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
    "corpus.py:scan_corpus", "builder.py:_diff", "catalog.py:article_states",
    "catalog.py:recover", "catalog.py:remove_article", "catalog.py:add_article",
    "base.py:embed_passages", "backends.py:embed_passages", "builder.py:_embed",
    "catalog.py:rows_with_keys",
    "faiss.py:add", "faiss.py:remove", "faiss.py:save", "faiss.py:load", "bm25.py:add",
    "bm25.py:remove", "bm25.py:save", "catalog.py:commit", "catalog.py:counts",
    "generations.py:publish", "generations.py:_fsync_tree", "generations.py:_prune",
    "builder.py:_prune", "catalog.py:purge", "generations.py:clean_abandoned",
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
    backend = args.backend or Settings().embedding_backend
    os.environ["ASSISTANT_EMBEDDING_BACKEND"] = backend  # the same backend in every child
    models = args.models or compared_models()
    default = models[0]
    seeds = {m: Settings(corpus_dir=args.corpus, index_dir=work / f"seed-{slug(m)}",
                         embedding_backend=backend, embedding_model=m) for m in models}
    pool = question_pool(args.first + args.questions)
    first, questions = pool[:args.first], pool[args.first:]
    data: dict[str, Any] = {"machine": info, "corpus": str(args.corpus), "quick": args.quick,
                            "backend": backend, "models": models, "default_model": default,
                            "targets": TARGETS}
    data["seed_build"] = cli_build(seeds[default])  # a child process: its own peak RSS
    builders = {m: make_embedder(s, batch=True) for m, s in seeds.items()}  # as a build runs
    for m in models[1:]:
        build(seeds[m], lambda e=builders[m]: e, progress=False)
    data["throughput"] = build_throughput(work, seeds, builders, args.reps)
    serving = {m: make_embedder(s) for m, s in seeds.items()}  # as `assistant serve` runs
    data["latency"] = query_latency(seeds, serving, first, questions, args.repeats)
    del serving
    gc.collect()
    data["startup"] = fresh_processes(seeds[default], questions[0], args.reps)
    data["serving"] = {m: serving_memory(s, questions[:5]) for m, s in seeds.items()}
    data["incremental"] = [
        incremental(size, work, seeds[default], builders[default], args.reps,
                    profile=size == max(args.sizes), child=not args.tiny)
        for size in args.sizes
    ]
    big = data["incremental"][-1]
    if not args.quick:
        data["serving_large"] = serving_memory(
            seeds[default].replace(corpus_dir=work / f"corpus-{big['articles']}",
                                   index_dir=work / f"index-{big['articles']}"), questions[:5])
    md = markdown(data)
    write_results("speed", data, md, args.out)
    return data


def _verdict(value: float | None, target: float, *, at_least: bool = False) -> str:
    if value is None:
        return "–"
    met = value >= target if at_least else value <= target
    return "met" if met else "**not met**"


def markdown(d: dict[str, Any]) -> str:
    tp, lat, st = d["throughput"], d["latency"], d["startup"]
    backend, default, targets = d["backend"], d["default_model"], d["targets"]
    tp_rows = []
    for model, m in tp["models"].items():
        rate = m["texts_per_s"]
        tp_rows.append([model_label(model), tp["texts"], rate["build"], rate["embed"],
                        rate["bare"], f"×{m['build_vs_bare']:.2f}"])
    ratio = tp["models"][default]["build_vs_bare"]
    lat_rows = []
    for model in lat["models"]:
        s = lat[f"embed|first|{model}"]
        lat_rows.append([model_label(model), "`embed_query` alone", "first in process", s["p50"],
                         s["p95"], s["n"], 1, s["p50"]])
        for phase in ("cold", "repeated"):
            for call in ("search", "ask"):
                s = lat[f"{call}|{phase}|{model}"]
                lat_rows.append([model_label(model), f"`{call}`", phase, s["p50"], s["p95"],
                                 s["n"], s["embeds_per_call"], s["embed_ms"]["p50"]])
    search_p50 = lat[f"search|cold|{default}"]["p50"]
    ask_p50 = lat[f"ask|cold|{default}"]["p50"]
    serving_default = d["serving"][default]["max_rss_mb"]
    proc_rows = [
        ["`python -c pass` (interpreter alone)", "–", st["python"]["median_s"],
         st["python"]["max_rss_mb"]],
        ["`python -c 'import assistant'`", "–", st["import"]["median_s"],
         st["import"]["max_rss_mb"]],
        ["`assistant search … --json`, fresh process", model_label(default),
         st["search"]["median_s"], st["search"]["max_rss_mb"]],
        ["`assistant ask … --json`, fresh process", model_label(default),
         st["ask"]["median_s"], st["ask"]["max_rss_mb"]],
        *[[f"serving process: load + {r['questions']} searches and answers", model_label(m),
           r["wall_s"], r["max_rss_mb"]] for m, r in d["serving"].items()],
        ["`assistant index build`, seed corpus", model_label(default), d["seed_build"]["wall_s"],
         d["seed_build"]["max_rss_mb"]],
    ]
    if "serving_large" in d:
        r = d["serving_large"]
        proc_rows.append([f"serving process, {d['incremental'][-1]['articles']}-article index",
                          model_label(default), r["wall_s"], r["max_rss_mb"]])
    inc_rows = [[r["articles"], r["chunks"], r["build"]["build_s"], r["build"]["max_rss_mb"],
                 r["no_change_s"]["median"], r["add_one_s"]["median"],
                 r["remove_one_s"]["median"]] for r in d["incremental"]]
    profile = d["incremental"][-1].get("add_one_profile", [])
    top = ", ".join(f"`{p['step'].split(':')[-1]}` {p['cumulative_s']:.2f} s"
                    for p in profile[1:7])
    big = d["incremental"][-1]
    return "\n".join([
        f"### Build throughput (seed corpus: {tp['chunks']} chunks + {tp['sentences']} sentence "
        f"rows = {tp['texts']} distinct texts embedded; one process, best of {tp['reps']})",
        "",
        md_table(["model", "texts", f"`builder.build` ({backend}) texts/s",
                  f"{backend} embedding alone texts/s", "bare torch fp32 `encode` texts/s",
                  "build ÷ bare torch"], tp_rows, digits=1),
        "",
        "Every rep alternates, per model, a fresh `builder.build` (the configured backend, model "
        "already loaded: reading, chunking, sentence splitting, embedding, SQLite, BM25, FAISS, "
        "fsync), that backend's `embed_passages` on the same texts, and bare fp32 "
        "`SentenceTransformer.encode` (batch 32, the model's passage prompt) on the same texts. "
        f"Target for the default model, build ≥ ×{targets['build_vs_bare']:.0f} bare torch: "
        f"×{ratio:.2f} here, {_verdict(ratio, targets['build_vs_bare'], at_least=True)}.",
        "",
        f"### Query latency (one warm process, seed index, {backend}, one thread per request)",
        "",
        md_table(["model", "call", "question", "p50 ms", "p95 ms", "n", "embeddings per call",
                  "embedding p50 ms"], lat_rows, digits=1),
        "",
        f"First in process: the first {lat['first_questions']} questions a fresh serving "
        "embedder meets, embedding alone; OpenVINO prepares its kernels for each new input "
        "length, so a question of a length not met yet costs more. Then a question of every "
        f"length up to ~{lat['warm_words']} tokens is embedded once ("
        + ", ".join(f"{model_label(m)} {s:.1f} s" for m, s in lat["warm_lengths_s"].items())
        + f"), as in a server that has run a while. Cold: {lat['questions']} other distinct "
        "question texts, each reaching each assistant once (one assistant for `search`, another "
        "for `ask`, sharing the model), so the question is embedded; `ask` embeds nothing else "
        "(it reuses the stored sentence vectors). "
        f"Repeated: the same texts {lat['repeats']} more time(s), their vectors from the "
        "retriever's question-vector cache. Models alternate question by question. Targets for "
        f"the default model, cold: search p50 ≤ {targets['search_p50_ms']:.0f} ms "
        f"({search_p50:.1f}, {_verdict(search_p50, targets['search_p50_ms'])}), ask p50 ≤ "
        f"{targets['ask_p50_ms']:.0f} ms ({ask_p50:.1f}, "
        f"{_verdict(ask_p50, targets['ask_p50_ms'])}).",
        "",
        *[f"Where a repeated `{call}` of {model_label(default)} spends its time (cProfile, "
          f"{p['ms_per_call']:.1f} ms per call with profiling overhead): "
          + ", ".join(f"`{r['function']}` {r['ms']:.1f}" for r in p["cumulative"])
          + " ms cumulative; own time: "
          + ", ".join(f"`{r['function']}` {r['ms']:.1f}" for r in p["own"]) + " ms.\n"
          for call, p in lat["profile"].items()],
        f"### Fresh processes and memory (medians of {len(st['search']['wall_s'])})",
        "",
        md_table(["what", "model", "wall s", "peak RSS MB"], proc_rows, digits=2),
        "",
        "Wall time to the printed JSON, peak RSS of the child alone. Target: serving peak RSS "
        f"≤ {targets['serving_mb']:.0f} MB with the default model ({serving_default:.0f} MB, "
        f"{_verdict(serving_default, targets['serving_mb'])}).",
        "",
        f"### Incremental update ({model_label(default)}, synthetic short articles, 1-2 chunks "
        "each)",
        "",
        md_table(["articles", "chunks", "full build s", "build peak RSS MB", "no-change update s",
                  "add 1 article s", "remove 1 article s"], inc_rows, digits=2),
        "",
        "Corpora are synthetic French articles (`bench/synthetic.py`, seeded), kept short (one "
        f"~300-character chunk, sometimes two, and their 2-3 sentence rows) so that the "
        f"{big['articles']}-article index embeds within the benchmark's time "
        f"({big['build']['build_s']:.0f} s here); what an update costs besides embedding the new "
        "article grows with the number of rows, not with their length, and real articles give "
        "~10-20 chunks each. Medians of "
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
    parser.add_argument("--reps", type=int, default=2, help="builds, fresh processes, updates")
    parser.add_argument("--backend", default=None, help="embedding backend (default: setting)")
    parser.add_argument("--models", nargs="+", default=None,
                        help="embedding models, the reference first (default: the default "
                             "model, then all-MiniLM-L6-v2)")
    parser.add_argument("--questions", type=int, default=32,
                        help="distinct questions timed (cold), per call and model")
    parser.add_argument("--first", type=int, default=16,
                        help="distinct questions embedded first, before every length is met")
    parser.add_argument("--repeats", type=int, default=2,
                        help="passes over the same questions (repeated)")
    parser.add_argument("--quick", action="store_true",
                        help="sizes 5 50, 1 rep, 8 + 8 questions, 1 repeat")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke test: 8 synthetic articles as corpus, sizes 3 10")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.quick or args.tiny:
        args.quick, args.sizes, args.reps, args.repeats = True, (5, 50), 1, 1
        args.questions, args.first = 8, 8
    if args.tiny:
        args.sizes, args.questions, args.first = (3, 10), 3, 3
        args.corpus = args.out / "work" / "tiny-corpus"
        write_corpus(args.corpus, 8)
    args.sizes = sorted(args.sizes)
    run(args)
    print((args.out / "speed.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
