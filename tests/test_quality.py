"""Aggregate quality on the dev sets, over the corpus plus the neighbouring articles, with the real
model and index: the levels reached (README "Benchmarks"), kept from going back.

The issue's targets, asserted as they are: hit@1 >= 0.85, hit@5 >= 0.97, MRR >= 0.90, answer
match and citation support >= 0.90, paraphrase and English answers >= 0.80, >= 8 of 9 out of
scope refused with at most 1 answerable refused (each is met by one or two questions: README
"Benchmarks").
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, Settings
from assistant.evaluation import run_eval
from assistant.index.builder import build

from .conftest import ROOT, SEED_CORPUS

EVAL = ROOT.parent / "shared" / "eval"
FILES = [EVAL / "dev_questions.jsonl", EVAL / "dev_questions_hard.jsonl",
         EVAL / "dev_questions_distractors.jsonl"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(f.exists() for f in FILES) or not (EVAL / "articles").is_dir(),
                       reason="../shared/eval (dev sets and neighbouring articles) not present"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("quality")
    corpus = root / "corpus"
    corpus.mkdir()
    for d in (SEED_CORPUS, EVAL / "articles"):
        for path in Path(d).iterdir():
            if path.is_file():
                shutil.copy2(path, corpus / path.name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    build(settings, lambda: embedder, progress=False)
    return run_eval(settings, FILES, k=5, assistant=Assistant.load(settings, embedder=embedder))


def test_retrieval_levels(report: dict[str, Any]) -> None:
    t = report["totals"]
    assert t["answerable"] == 53 and t["out_of_scope"] == 9
    # the targets, met (measured hit@1 0.868, hit@5 0.981, MRR 0.913)
    assert t["hit@1"] >= 0.85, t
    assert t["hit@5"] >= 0.97, t
    assert t["mrr"] >= 0.90, t
    assert t["source_hit@k"] >= 0.98, t


def test_answer_levels(report: dict[str, Any]) -> None:
    t, kinds = report["totals"], report["by_kind"]
    # the targets, met (measured 0.943, 0.943, fact 1.00, English 1.00, paraphrase 0.85)
    assert t["answer_match"] >= 0.90, t
    assert t["citation_support"] >= 0.90, t
    assert kinds["fact"]["answer_match"] >= 0.90, kinds["fact"]
    assert kinds["english"]["answer_match"] >= 0.80, kinds["english"]
    assert kinds["paraphrase"]["answer_match"] >= 0.80, kinds["paraphrase"]


def test_refusal_levels(report: dict[str, Any]) -> None:
    t = report["totals"]
    assert t["refused_answerable"] <= 1, t  # the target: answerable questions are answered
    assert t["refused_out_of_scope"] >= 8, t  # of 9: the target


def test_english_questions_are_answered_in_french_with_citations(
        report: dict[str, Any]) -> None:
    english = [r for r in report["questions"] if r["kind"] == "english"]
    assert english and all(r["in_corpus"] and r["citations"] for r in english)
