"""Aggregate quality on every dev file of ../shared/eval (165 questions, 29 unanswerable: 19
near, 10 far), over the corpus plus the neighbouring articles, with the real model and index.

These files are held out: nothing is fitted on them (the pair scorer learns from our own
questions, `bench/fit_scorer.py`). The floors below keep the levels measured (careful and typed
questions) from going back; the issue's targets (hit@1 >= 0.88, answer >= 0.93, first sentence
>= 0.90, short answer >= 0.85, >= 26/29 refused with <= 4/136 answerable refused) are not met
yet: docs/benchmarks.md gives the measured numbers beside them.
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
         EVAL / "dev_questions_distractors.jsonl", EVAL / "dev_questions_wide.jsonl"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(f.exists() for f in FILES) or not (EVAL / "articles").is_dir(),
                       reason="../shared/eval (dev sets and neighbouring articles) not present"),
]


@pytest.fixture(scope="module")
def settings_and_bot(tmp_path_factory: pytest.TempPathFactory,
                     embedder: Any) -> tuple[Settings, Assistant]:
    root = tmp_path_factory.mktemp("quality")
    corpus = root / "corpus"
    corpus.mkdir()
    for d in (SEED_CORPUS, EVAL / "articles"):
        for path in Path(d).iterdir():
            if path.is_file():
                shutil.copy2(path, corpus / path.name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    build(settings, lambda: embedder, progress=False)
    return settings, Assistant.load(settings, embedder=embedder)


@pytest.fixture(scope="module")
def report(settings_and_bot: tuple[Settings, Assistant]) -> dict[str, Any]:
    settings, bot = settings_and_bot
    return run_eval(settings, FILES, k=5, assistant=bot)


def test_retrieval_levels(report: dict[str, Any]) -> None:
    t = report["totals"]
    assert t["answerable"] == 136 and t["out_of_scope"] == 29
    # measured (docs/benchmarks.md): hit@1 0.824 with search's rerank (0.787 in the fusion's
    # order), hit@5 0.963
    assert t["hit@1"] >= 0.80, t
    assert t["hit@5"] >= 0.95, t


def test_answer_levels(report: dict[str, Any]) -> None:
    t, kinds = report["totals"], report["by_kind"]
    # measured (docs/benchmarks.md): first sentence 0.809, answer 0.860, short 0.766,
    # 1.31 sentences an answer; fact first 0.87; list answers 5/9
    assert t["first_sentence_match"] >= 0.79, t
    assert t["answer_match"] >= 0.83, t
    assert t["short_match"] >= 0.75, t
    assert t["sentences_per_answer"] <= 1.35, t
    assert kinds["fact"]["first_sentence_match"] >= 0.84, kinds["fact"]
    assert kinds["date"]["short_match"] >= 0.85, kinds["date"]
    assert kinds["list"]["answer_match"] >= 0.44, kinds["list"]


def test_refusal_levels(report: dict[str, Any]) -> None:
    t = report["totals"]
    # measured: 23 of 29 refused (near 15/19, far 8/10), 3 of 136 answerable refused (refits
    # of equal quality on our questions spread 2-6: docs/benchmarks.md)
    assert t["refused_answerable"] <= 4, t
    assert t["refused_out_of_scope"] >= 19, t
    assert t["refused_far"] >= 7 and t["refused_near"] >= 10, t


def test_typed_twins_are_answered_and_refused_like_the_careful_questions(
        report: dict[str, Any], settings_and_bot: tuple[Settings, Assistant]) -> None:
    """The same questions as people type them (lower case, no accents, no question mark):
    measured 22 of 29 refused (the careful ones: 23), 1 of 136 answerable refused, answer
    0.824 (careful: 0.860; 0.853 without the reader, which is trained on careful questions
    only: one careful answer it mends has no typed twin mended)."""
    settings, bot = settings_and_bot
    typed = run_eval(settings, FILES, k=5, assistant=bot, as_typed=True)["totals"]
    t = report["totals"]
    assert typed["refused_answerable"] <= 3, typed
    # spelling a typed word follows the lexical store's document frequencies
    # (`Question.spelled`): indexes of other layouts have refused one or two fewer
    assert typed["refused_out_of_scope"] >= 18, typed
    assert typed["answer_match"] >= 0.81, typed
    assert typed["answer_match"] >= t["answer_match"] - 0.04, (typed, t)


def test_english_questions_are_answered_in_french_with_citations(
        report: dict[str, Any]) -> None:
    english = [r for r in report["questions"] if r["kind"] == "english"]
    assert english and all(r["in_corpus"] and r["citations"] for r in english)
