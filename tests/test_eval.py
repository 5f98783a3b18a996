"""`assistant eval`: metrics on the seed index, JSON output, clear errors for bad question files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, ConfigError, Settings
from assistant.cli import main
from assistant.evaluation import (
    answers_available,
    eval_settings,
    format_report,
    load_questions,
    run_eval,
    score_passages,
    typed,
)
from assistant.records import Passage
from tests.conftest import DEV_QUESTIONS, SEED_CORPUS
from tests.helpers.articles import NEW_ARTICLE, NEW_QUESTION, NEW_SOURCE, NEW_WORD

TOTAL_KEYS = {
    "questions", "answerable", "out_of_scope", "refused_answerable", "refused_out_of_scope",
    "hit@1", "hit@3", "hit@5", "hit@k", "mrr",
    "source_hit@k", "answer_match", "citation_support", "refusal_accuracy", "false_refusals",
    "errors", "context_chars@k", "search_ms_p50", "search_ms_p95", "ask_ms_p50", "ask_ms_p95",
}


@pytest.fixture(scope="module")
def report(seed_settings: Settings, seed_assistant: Assistant) -> dict[str, Any]:
    return run_eval(seed_settings, DEV_QUESTIONS, k=5, assistant=seed_assistant)


def test_totals_and_retrieval_quality(report: dict[str, Any], dev_questions: list[Any]) -> None:
    totals = report["totals"]
    assert TOTAL_KEYS <= set(totals)
    assert totals["questions"] == len(dev_questions) == len(report["questions"])
    assert totals["hit@5"] >= 0.9
    assert totals["source_hit@k"] >= 0.9
    assert totals["hit@1"] <= totals["hit@3"] <= totals["hit@5"]
    assert 0 < totals["mrr"] <= totals["hit@5"]
    assert totals["search_ms_p50"] > 0 and totals["search_ms_p95"] >= totals["search_ms_p50"]
    assert totals["errors"] == 0


def test_answer_metrics(report: dict[str, Any]) -> None:
    totals = report["totals"]
    if not answers_available():
        assert report["answers_evaluated"] is False
        assert totals["answer_match"] is None and totals["ask_ms_p50"] is None
        pytest.skip("assistant/answer.py is not there yet: answer metrics not measured")
    assert report["answers_evaluated"] is True
    assert totals["answer_match"] is not None and totals["citation_support"] is not None
    assert totals["refusal_accuracy"] is not None and totals["false_refusals"] is not None
    assert totals["ask_ms_p50"] > 0


def test_human_report_lists_every_question(report: dict[str, Any]) -> None:
    text = format_report(report)
    for row in report["questions"]:
        assert row["id"] in text
    assert "hit@1" in text and "MRR@5" in text


def test_cli_json(seed_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", str(DEV_QUESTIONS), "--json", "--k", "3", "--index",
                 str(seed_settings.index_dir), "--corpus", str(seed_settings.corpus_dir)])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["k"] == 3 and TOTAL_KEYS <= set(data["totals"])
    assert data["totals"]["hit@k"] == data["totals"]["hit@3"]


def test_cli_typed_twins(seed_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """`--typed` asks each question as people type it, and the seed corpus still answers."""
    code = main(["eval", str(DEV_QUESTIONS), "--json", "--typed", "--index",
                 str(seed_settings.index_dir), "--corpus", str(seed_settings.corpus_dir)])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["questions"]
    for row in data["questions"]:
        assert row["id"].endswith("-typed")
        assert row["question"] == typed(row["question"])  # lower case, no accents, no "?"
        assert "?" not in row["question"] and row["question"] == row["question"].lower()
    assert data["totals"]["hit@5"] >= 0.9 and data["totals"]["errors"] == 0
    assert typed("Où se trouve l’Hôtel de Région ?") == "ou se trouve l'hotel de region"


def test_ranks_follow_patterns_and_sources(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Où ?", "sources": ["x"],
                                "answer_pattern": "Lens", "kind": "fact"}), encoding="utf-8")
    q = load_questions(path)[0]
    passages = [Passage(1, 0.9, "Rien ici", "y.txt", "Y", 0, 8),
                Passage(2, 0.8, "À Lens, oui", "x.txt", "X", 0, 11)]
    assert score_passages(q, passages, k=5) == {
        "rank": 2, "source_rank": 2, "top_sources": ["y", "x"], "context_chars": 19}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"id": "a", "question": "Q ?", "kind": "fact"}\n{not json}\n', "ligne 2"),
        ('{"id": "a", "question": "Q ?", "kind": "Opinion !"}\n', "ligne 1"),
        ('{"id": "a", "kind": "fact"}\n', "question"),
        ('{"id": "a", "question": "Q ?", "kind": "fact", "answer_pattern": "("}\n', "regex"),
        ('\n\n{"id": "a", "question": "Q ?", "kind": "fact", "sources": "x"}\n', "ligne 3"),
        ('{"id": "a", "question": "Q ?", "kind": "fact"}\n' * 2, "double"),
        ("\n\n", "aucune question"),
        ("[1, 2]\n", "objet JSON"),
    ],
)
def test_malformed_file(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        load_questions(path)


def test_missing_file_is_a_cli_error(
    seed_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["eval", str(tmp_path / "absent.jsonl"), "--index", str(seed_settings.index_dir)])
    err = capsys.readouterr().err
    assert code == 1
    assert "introuvable" in err and "absent.jsonl" in err


def test_articles_in_subfolders_are_evaluated(
    make_corpus: Callable[..., Settings], embedder: Any, tmp_path: Path,
) -> None:
    """`--articles DIR` takes the articles of DIR's subfolders too, as an index of a corpus
    does, with their relative paths as sources; one removed from DIR leaves the eval index."""
    settings = make_corpus(seeds=False)
    extra = tmp_path / "extra"
    (extra / "depeches" / "2024").mkdir(parents=True)
    nested = extra / "depeches" / "2024" / NEW_SOURCE
    nested.write_text(NEW_ARTICLE, encoding="utf-8")
    seed = sorted(SEED_CORPUS.glob("*.txt"))[0]
    shutil.copy2(seed, extra / seed.name)
    (extra / ".cache").mkdir()  # hidden: skipped, as in a corpus
    (extra / ".cache" / "x.txt").write_text("caché", encoding="utf-8")
    source = f"depeches/2024/{NEW_SOURCE}"
    first = eval_settings(settings, [extra])
    try:
        bot = Assistant.load(first, embedder=embedder)
        assert {a["source"] for a in bot.articles()} == {source, seed.name}
        top = bot.search(NEW_QUESTION, k=1)[0]
        assert top.source == source and NEW_WORD in bot.article_text(source)
        bot.retriever.index.close()

        nested.unlink()
        again = eval_settings(settings, [extra])
        assert again == first  # the same cached index, updated
        bot = Assistant.load(again, embedder=embedder)
        assert {a["source"] for a in bot.articles()} == {seed.name}
        bot.retriever.index.close()
    finally:
        shutil.rmtree(first.index_dir.parent)  # the eval index lives in the user cache
