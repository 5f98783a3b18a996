"""Retrieval and answer quality, side by side on the same questions and corpus, in one run.

    (a) this project: hybrid French BM25 + dense (default dense_weight), extractive answers
    (b) the common LangChain tutorial: TextLoader, RecursiveCharacterTextSplitter() with its class
        defaults, langchain_community FAISS vector store, same embedding model, dense top-k
    (c) BM25 alone (dense_weight=0)       (d) dense alone (dense_weight=1)
    plus a sweep of dense_weight to justify the default.

A passage "hits" when the question's answer pattern is found in its text (`assistant eval`'s rule).

    python bench/quality.py [--questions FILE] [--corpus DIR] [--k 5] [--quick] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from common import (
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
from assistant.corpus import SUFFIXES
from assistant.embeddings import packaged_model_path
from assistant.evaluation import load_questions, run_eval, score_passages, totals
from assistant.indexer import build
from assistant.records import Passage

SWEEP = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)


def tutorial_pipeline(corpus: Path, questions: list[Any], k: int) -> dict[str, Any]:
    """The LangChain quick-start: load files, split with defaults, FAISS, similarity_search."""
    from langchain_community.document_loaders import TextLoader
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    class STEmbeddings(Embeddings):
        """What langchain-huggingface's HuggingFaceEmbeddings does: plain `encode`."""

        def __init__(self, model: Any) -> None:
            self.model = model

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [list(map(float, v)) for v in self.model.encode(texts)]

        def embed_query(self, text: str) -> list[float]:
            return list(map(float, self.model.encode(text)))

    model = SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True)
    docs = []
    for path in sorted(p for p in corpus.rglob("*") if p.suffix.lower() in SUFFIXES):
        docs += TextLoader(str(path), encoding="utf-8").load()
    splitter = RecursiveCharacterTextSplitter()
    chunks = splitter.split_documents(docs)
    t0 = time.perf_counter()
    store = FAISS.from_documents(chunks, STEmbeddings(model))
    build_s = time.perf_counter() - t0
    store.similarity_search("échauffement", k=1)
    rows, times = [], []
    for q in questions:
        t0 = time.perf_counter()
        found = store.similarity_search(q.question, k=max(k, 5))
        times.append(time.perf_counter() - t0)
        passages = [
            Passage(i, 0.0, d.page_content, Path(d.metadata["source"]).name, "", 0, 0)
            for i, d in enumerate(found)
        ]
        rows.append({"id": q.id, "kind": q.kind, **score_passages(q, passages, k=k),
                     "search_ms": times[-1] * 1000})
    return {
        "chunks": len(chunks), "chunk_size": splitter._chunk_size,
        "chunk_overlap": splitter._chunk_overlap, "build_s": round(build_s, 2),
        "max_seq_length": int(model.max_seq_length),
        "totals": totals(questions, rows, k=k), "questions": rows,
    }


def run(corpus: Path, questions_file: Path, *, k: int, weights: tuple[float, ...],
        limit: int | None, out: Path) -> dict[str, Any]:
    info = machine()
    work = workdir("quality", out)
    questions = load_questions(questions_file)[:limit] if limit else load_questions(questions_file)
    qfile = work / "questions.jsonl"
    qfile.write_text("\n".join(json.dumps(_raw(q), ensure_ascii=False) for q in questions),
                     encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=work / "index")
    report = build(settings, progress=False)  # the configured embedding backend, as the CLI

    default = Assistant.load(settings)
    embedder = default.retriever.embedder
    project = run_eval(settings, qfile, k=k, assistant=default)
    sweep = {}
    for w in sorted(set(weights) | {0.0, 1.0}):
        s = settings.replace(dense_weight=w)
        sweep[w] = run_eval(s, qfile, k=k, assistant=Assistant.load(s, embedder=embedder),
                            answers=False)["totals"]
    tutorial = tutorial_pipeline(corpus, questions, k)
    data = {
        "machine": info, "corpus": str(corpus), "questions_file": str(questions_file), "k": k,
        "articles": report.articles, "chunks": report.chunks,
        "dense_weight_default": settings.dense_weight, "backend": settings.embedding_backend,
        "project": project, "tutorial": tutorial, "sweep": {str(w): t for w, t in sweep.items()},
    }
    md = markdown(data, sweep)
    write_results("quality", data, md, out)
    return data


def _raw(q: Any) -> dict[str, Any]:
    return {"id": q.id, "question": q.question, "sources": list(q.sources),
            "answer_pattern": q.pattern.pattern if q.pattern else None, "kind": q.kind}


def markdown(data: dict[str, Any], sweep: dict[float, dict[str, Any]]) -> str:
    k, p, t = data["k"], data["project"]["totals"], data["tutorial"]
    tt = t["totals"]
    w0 = data["dense_weight_default"]
    heads = ["pipeline", "chunks", "hit@1", f"hit@{k}", f"MRR@{k}", f"source hit@{k}",
             f"context chars@{k}", "answer match", "citation support", "query ms p50"]

    def row(name: str, chunks: int, tot: dict[str, Any], answers: bool = False) -> list[Any]:
        return [name, chunks, tot["hit@1"], tot["hit@k"], tot["mrr"], tot["source_hit@k"],
                round(tot["context_chars@k"]), tot["answer_match"] if answers else None,
                tot["citation_support"] if answers else None, _fmt(tot["search_ms_p50"], 1)]

    rows = [
        row(f"(a) this project: hybrid, dense_weight {w0}, {data['backend']} embeddings",
            data["chunks"], p, answers=True),
        row(f"(b) LangChain tutorial: splitter defaults ({t['chunk_size']}/{t['chunk_overlap']}),"
            " FAISS, dense (torch)", t["chunks"], tt),
        row("(c) BM25 alone (dense_weight 0)", data["chunks"], sweep[0.0]),
        row("(d) dense alone (dense_weight 1)", data["chunks"], sweep[1.0]),
    ]
    sweep_rows = [[f"{w:g}", s["hit@1"], s["hit@3"], s["hit@5"], s["mrr"],
                   _fmt(s["search_ms_p50"], 1)] for w, s in sorted(sweep.items())]
    n_fact = p["fact"]
    return "\n".join([
        f"### Retrieval quality ({p['questions']} questions, {n_fact} answerable, "
        f"{data['articles']} articles)",
        "",
        md_table(heads, rows, digits=3),
        "",
        f"Same questions, corpus and embedding model (all-MiniLM-L6-v2) for every row: rows a, c, "
        f"d run it through the configured backend ({data['backend']}), row b through "
        f"sentence-transformers as the tutorial does. A passage hits when the answer pattern is "
        f"in its text. Out-of-scope questions: refusal accuracy "
        f"{_fmt(p['refusal_accuracy'])}, false refusals on answerable ones "
        f"{_fmt(p['false_refusals'])} (row a). The tutorial's {t['chunk_size']}-character chunks "
        f"are longer than the model reads ({t['max_seq_length']} word pieces): most of each "
        f"chunk is invisible to its dense search, and {k} of them hand the reader "
        f"~{_fmt(tt['context_chars@k'], 0)} characters instead of ~"
        f"{_fmt(p['context_chars@k'], 0)}. With {n_fact} questions one question is "
        f"{1 / max(n_fact, 1):.3f} of a hit rate: small differences are noise.",
        "",
        "### dense_weight sweep (hybrid fusion, same index)",
        "",
        md_table(["dense_weight", "hit@1", "hit@3", "hit@5", f"MRR@{k}", "query ms p50"],
                 sweep_rows, digits=3),
        "",
        sweep_note(sweep, w0),
        "",
        "Latencies: one warm process; other jobs may share the cores, so compare them within a "
        "table only.",
        "",
        f"Machine: {describe_machine(data['machine'])}.",
    ])


def sweep_note(sweep: dict[float, dict[str, Any]], default: float) -> str:
    """What the sweep says about the default weight, from the numbers."""
    def key(t: dict[str, Any]) -> tuple[float, float, float]:
        return (t["mrr"] or 0.0, t["hit@1"] or 0.0, t["hit@5"] or 0.0)

    best = max(key(t) for t in sweep.values())
    tied = [w for w, t in sorted(sweep.items()) if key(t) == best]
    worse = [w for w, t in sorted(sweep.items()) if key(t) < best]
    text = f"Best MRR/hit@1/hit@5 here: dense_weight {', '.join(f'{w:g}' for w in tied)}"
    if worse:
        text += f"; lower with {', '.join(f'{w:g}' for w in worse)}"
    if default in tied:
        largest = "the largest weight" if default == max(tied) else "a weight"
        text += (f". The default {default:g} is {largest} that costs nothing on these "
                 "questions, and keeps the dense leg for paraphrases and questions whose words "
                 "the articles do not use (which this question set hardly tests).")
    else:
        text += f". The default {default:g} is not among the best here: revisit it."
    return text


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=SEED_CORPUS)
    parser.add_argument("--questions", type=Path, default=DEV_QUESTIONS)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--weights", type=float, nargs="+", default=SWEEP)
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--quick", action="store_true", help="sweep 0, 0.3, 1 only")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    weights = (0.0, 0.3, 1.0) if args.quick else tuple(args.weights)
    data = run(args.corpus, args.questions, k=args.k, weights=weights, limit=args.limit,
               out=args.out)
    print((args.out / "quality.md").read_text(encoding="utf-8"))
    print(f"tutorial build {data['tutorial']['build_s']} s;",
          "search ms", ms_stats([r["search_ms"] / 1000 for r in data["tutorial"]["questions"]]))


if __name__ == "__main__":
    main()
