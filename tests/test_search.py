"""Hybrid search quality and the public Python API."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

import assistant
from assistant import Assistant, ConfigError, Passage, QuestionError, Settings


def test_public_names() -> None:
    for name in assistant.__all__:
        assert hasattr(assistant, name), name
    assert {"Assistant", "Settings", "Passage", "Answer"} <= set(assistant.__all__)


def test_dev_questions_passage_hit_at_5(
    seed_assistant: Assistant, dev_questions: list[dict[str, Any]]
) -> None:
    facts = [q for q in dev_questions if q["answer_pattern"]]
    hits = 0
    for q in facts:
        passages = seed_assistant.search(q["question"], k=5)
        hits += any(re.search(q["answer_pattern"], p.text) for p in passages)
    assert hits / len(facts) >= 0.9, f"hit@5 = {hits}/{len(facts)}"


def test_louvre_lens_vallee_director_is_found(seed_assistant: Assistant) -> None:
    passages = seed_assistant.search("Qui dirige la Louvre Lens Vallée ?", k=5)
    assert any("Maadnous" in p.text or "Balzerani" in p.text for p in passages)


def test_passages_are_typed_and_point_into_the_article(seed_assistant: Assistant) -> None:
    passages = seed_assistant.search("Serre numérique Valenciennes surface", k=4)
    assert len(passages) == 4
    assert all(isinstance(p, Passage) for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for p in passages:
        text = seed_assistant.article_text(p.source)
        assert text is not None and text[p.start : p.end] == p.text
        assert p.title and p.source.endswith(".txt")
    with pytest.raises(dataclasses.FrozenInstanceError):
        passages[0].score = 2.0  # type: ignore[misc]


def test_k_and_dense_weight_settings(seed_settings: Settings, embedder: Any) -> None:
    def bot(dense: float, sentence: float) -> Assistant:
        return Assistant.load(seed_settings.replace(dense_weight=dense, sentence_weight=sentence),
                              embedder=embedder)

    lexical, dense, sentences = bot(0.0, 0.0), bot(1.0, 0.0), bot(0.0, 1.0)
    question = "incubateur et hôtel d'entreprises à Lens"
    assert len(lexical.search(question, k=7)) == 7
    rankings = [[p.chunk_id for p in b.search(question, k=5)] for b in (lexical, dense, sentences)]
    assert len({tuple(r) for r in rankings}) == 3  # each leg ranks on its own signal
    # An English question: the French articles' meaning, not their words, finds the answer.
    english = "Which media group did the woman running the Lens digital cluster work for?"
    assert any("Bertelsmann" in p.text for p in sentences.search(english, k=3))
    with pytest.raises(ConfigError, match="must not exceed 1"):
        seed_settings.replace(dense_weight=0.7, sentence_weight=0.5)


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_questions_are_refused(seed_assistant: Assistant, question: str) -> None:
    with pytest.raises(QuestionError, match="vide"):
        seed_assistant.search(question)


def test_over_long_question_is_refused(seed_assistant: Assistant) -> None:
    with pytest.raises(QuestionError, match="trop longue"):
        seed_assistant.search("numérique " * 1000)


@pytest.mark.parametrize("question", ["🚀🚀🚀", "東京のスタートアップ", "\x00\x01 Lens ?", "???"])
def test_odd_questions_return_passages_or_nothing(seed_assistant: Assistant, question: str) -> None:
    assert isinstance(seed_assistant.search(question, k=3), list)
