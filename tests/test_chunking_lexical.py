"""Chunk offsets and the French analyzer."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from assistant.config import Settings
from assistant.ingest.chunking import chunk_article, make_splitter
from assistant.ingest.corpus import load_corpus, parse_article
from assistant.text.analysis import analyze, analyzed

from .conftest import SEED_CORPUS


@pytest.mark.parametrize("size,overlap", [(500, 75), (200, 30), (1000, 150)])
def test_chunk_offsets_are_exact_on_the_seeds(size: int, overlap: int) -> None:
    splitter = make_splitter(Settings(chunk_size=size, chunk_overlap=overlap))
    articles, _ = load_corpus(SEED_CORPUS)
    for article in articles:
        chunks = chunk_article(article, splitter)
        assert chunks, article.source
        previous_start = -1
        for chunk in chunks:
            assert article.text[chunk.start : chunk.end] == chunk.text
            assert chunk.start > previous_start
            assert len(chunk.text) <= size
            previous_start = chunk.start
        covered = set()
        for chunk in chunks:
            covered.update(range(chunk.start, chunk.end))
        words = [i for i, c in enumerate(article.text) if not c.isspace()]
        assert all(i in covered for i in words), "every non-space character is in a chunk"


def test_sentence_punctuation_stays_with_its_sentence() -> None:
    sentence = "La Serre numérique accueille des étudiants et des startups du numérique. "
    article = parse_article((sentence * 20).encode(), "a.txt")
    for chunk in chunk_article(article, make_splitter(Settings(chunk_size=200, chunk_overlap=30))):
        assert not chunk.text.startswith((".", ",", ";"))
        assert chunk.text.endswith(".")


def test_overlap_between_consecutive_chunks_of_long_paragraphs() -> None:
    text = " ".join(
        f"Phrase numéro {i} sur l'innovation, le numérique et les territoires." for i in range(40)
    )
    article = parse_article(("Titre\n\n" + text).encode(), "long.txt")
    chunks = chunk_article(article, make_splitter(Settings()))
    assert len(chunks) > 3
    overlaps = [a.end - b.start for a, b in zip(chunks[1:], chunks[2:])]
    assert any(o > 0 for o in overlaps)


def test_repeated_text_gets_distinct_offsets() -> None:
    paragraph = "Le même paragraphe répété mot pour mot dans l'article, encore et encore.\n\n"
    article = parse_article(("Titre\n\n" + paragraph * 30).encode(), "rep.txt")
    chunks = chunk_article(article, make_splitter(Settings(chunk_size=100, chunk_overlap=10)))
    starts = [c.start for c in chunks]
    assert len(set(starts)) == len(starts)
    assert all(article.text[c.start : c.end] == c.text for c in chunks)


def test_french_analyzer() -> None:
    # Elisions with both apostrophes, stopwords, stemming before accent folding, œ -> oe.
    assert analyze("l’État") == analyze("l'etat") == ["etat"]
    assert analyze("d’innovation") == analyze("innovations") == ["innov"]
    assert analyze("jusqu'à lorsqu'il") == []
    assert analyze("les œuvres") == ["oeuvr"]
    assert analyze("Qui dirige la Louvre Lens Vallée ?") == ["dirig", "louvr", "len", "vall"]
    # NBSP and NNBSP separate numbers like spaces do.
    assert analyze("17\u00a0000\u202fm²") == analyze("17 000 m²")
    assert analyze("numérique") == analyze("NUMERIQUE") == analyze("numériques")


def test_analyzed_terms_and_bounded_memory() -> None:
    """`analyzed` gives the terms `analyze` gives, for a sentence or a whole article, and its
    cache does not keep whole texts: 2000 distinct article-sized texts (as the answerer's
    decision passes the retrieved articles) leave a few MB at most, where a cache keyed by
    whole texts kept all 2000 (~20 MB here)."""
    articles, _ = load_corpus(SEED_CORPUS)
    for article in articles:
        assert analyzed(article.text) == frozenset(analyze(article.text))
        first = article.text.splitlines()[0]
        assert analyzed(first) == frozenset(analyze(first))
    assert analyzed("l’État\u2028d’innovation\r\nœuvres") == {"etat", "innov", "oeuvr"}

    body = "\n".join(a.text for a in articles[:2])  # ~10,000 characters, 49 lines
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(2000):
            assert f"numero{i}" in analyzed(f"Dépêche numero{i} du jour.\n{body}")
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert 2000 * len(body) > 19_000_000  # what a cache of whole texts would have kept
    assert grown < 4_000_000, f"{grown / 1e6:.1f} MB kept by the analysis cache"
