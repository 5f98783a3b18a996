"""Build, load, incremental update and mismatch detection, on real FAISS/SQLite/bm25s files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant import Assistant, Settings
from assistant.errors import IndexMismatchError, IndexMissingError
from assistant.index.builder import build, update
from assistant.index.catalog import Catalog
from assistant.index.generations import current_generation
from assistant.ingest.chunking import chunk_article, make_splitter
from assistant.ingest.corpus import read_article
from assistant.text.sentences import split_sentences

NEW_ARTICLE = """La French Tech Sillon Lorrain inaugure un campus à Épinal

Le campus numérique d'Épinal ouvrira en septembre dans l'ancienne filature de la ville.
Il accueillera 45 startups et une école de code, dirigée par Hélène Bastien, ancienne
ingénieure chez un éditeur de logiciels. Le projet a coûté 6,2 millions d'euros, financés
par la communauté d'agglomération et la Région Grand Est.
"""


class CountingEmbedder:
    """The real model, counting the passages it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.embedded: list[str] = []

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.embedded += texts
        return self.inner.embed_passages(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()


@pytest.fixture
def counting(embedder: Any) -> CountingEmbedder:
    return CountingEmbedder(embedder)


def _top_ids(settings: Settings, embedder: Any, questions: list[str]) -> list[list[int]]:
    bot = Assistant.load(settings, embedder=embedder)
    return [[p.chunk_id for p in bot.search(q, k=5)] for q in questions]


def test_build_load_gives_identical_results_and_manifest(
    make_corpus: Callable[..., Settings], counting: CountingEmbedder, embedder: Any,
    dev_questions: list[dict[str, Any]],
) -> None:
    settings = make_corpus()
    report = build(settings, lambda: counting, progress=False)
    assert report.articles == 5 and report.chunks > 50
    assert len(report.added) == 5 and report.chunks_embedded == report.chunks
    questions = [q["question"] for q in dev_questions]
    first = _top_ids(settings, embedder, questions)
    assert first == _top_ids(settings, embedder, questions)  # a second load: same hits

    manifest = json.loads((current_generation(settings.index_dir) / "manifest.json").read_text())
    assert manifest["embedding"]["model"] == "multilingual-e5-small"
    assert manifest["embedding"]["dimension"] == 384
    assert manifest["chunking"]["chunk_size"] == 500
    assert manifest["corpus"]["chunks"] == report.chunks
    stores = manifest["stores"]
    assert (stores["chunks"]["backend"], stores["chunks"]["kind"]) == ("faiss", "flat")
    assert stores["sentences"]["backend"] == "faiss" and stores["lexical"]["backend"] == "bm25"
    assert manifest["catalog"]["chunks"] == report.chunks

    # A rebuild re-embeds nothing: the embedding cache keeps known text.
    counting.embedded.clear()
    again = build(settings, lambda: counting, progress=False)
    assert again.chunks_embedded == 0 and again.chunks_reused == report.chunks
    assert _top_ids(settings, embedder, questions) == first


def test_update_embeds_only_new_or_changed_articles(
    make_corpus: Callable[..., Settings], counting: CountingEmbedder, embedder: Any,
) -> None:
    settings = make_corpus()
    build(settings, lambda: counting, progress=False)
    unchanged = update(settings, lambda: counting, progress=False)
    assert unchanged.generation is None and unchanged.unchanged == 5

    # Add a sixth article: only its chunks are embedded.
    new = settings.corpus_dir / "campus-epinal.md"
    new.write_text(NEW_ARTICLE, encoding="utf-8")
    article = read_article(new, new.name)
    expected = chunk_article(article, make_splitter(settings), min_chars=settings.chunk_min_chars)
    sentences = split_sentences(article.text)
    counting.embedded.clear()
    added = update(settings, lambda: counting, progress=False)
    assert added.added == ["campus-epinal.md"] and added.unchanged == 5
    # Only the new article's chunks and sentences reach the model, each once.
    assert added.chunks_embedded == len(expected) and len(expected) >= 1
    assert added.sentences_embedded == len(sentences) > len(expected)
    assert len(counting.embedded) == len(expected) + len(sentences)
    bot = Assistant.load(settings, embedder=embedder)
    top = bot.search("Qui dirige l'école de code du campus d'Épinal ?", k=3)
    assert top[0].source == "campus-epinal.md"
    assert "Hélène Bastien" in top[0].text

    # Change it: its old chunks go, the new text is found.
    new.write_text(NEW_ARTICLE.replace("Hélène Bastien", "Marc Ferrand"), encoding="utf-8")
    changed = update(settings, lambda: counting, progress=False)
    assert changed.changed == ["campus-epinal.md"] and changed.chunks_embedded >= 1
    assert bot.refresh()
    texts = " ".join(p.text for p in bot.search("directeur école de code Épinal", k=5))
    assert "Marc Ferrand" in texts and "Hélène Bastien" not in texts

    # Delete it and a seed: both disappear from results and from the counts.
    new.unlink()
    (settings.corpus_dir / "serre-numerique-valenciennes.txt").unlink()
    removed = update(settings, lambda: counting, progress=False)
    assert sorted(removed.removed) == ["campus-epinal.md", "serre-numerique-valenciennes.txt"]
    assert removed.articles == 4 and removed.chunks_embedded == 0
    bot.refresh()
    sources = {p.source for p in bot.search("Serre numérique Valenciennes Épinal", k=20)}
    assert not sources & {"campus-epinal.md", "serre-numerique-valenciennes.txt"}
    assert {a["source"] for a in bot.articles()} == {
        "cluster-numerique-languedoc-roussillon.txt", "lieux-qui-changent-innovation-france.txt",
        "lorntech-sillon-lorrain.txt", "louvre-lens-vallee-cluster-numerique.txt",
    }

    # The corpus fingerprint follows the files, however the index got there.
    path = current_generation(settings.index_dir) / "manifest.json"
    updated = json.loads(path.read_text())["corpus"]["fingerprint"]
    build(settings, lambda: counting, progress=False)
    path = current_generation(settings.index_dir) / "manifest.json"
    assert json.loads(path.read_text())["corpus"]["fingerprint"] == updated


def test_touched_but_identical_file_is_unchanged(
    make_corpus: Callable[..., Settings], embedder: Any,
) -> None:
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    path = settings.corpus_dir / "lorntech-sillon-lorrain.txt"
    path.write_bytes(path.read_bytes())  # new mtime, same bytes
    report = update(settings, lambda: embedder, progress=False)
    assert report.unchanged == 5 and not report.changed and report.generation is None
    # ...and remembered: the next update compares size and time only, no re-hash.
    catalog = Catalog.current(settings.index_dir)
    state = catalog.article_states()["lorntech-sillon-lorrain.txt"]
    catalog.close()
    assert state[1:] == (path.stat().st_size, path.stat().st_mtime_ns)


def test_update_without_index_builds_it(
    make_corpus: Callable[..., Settings], embedder: Any
) -> None:
    settings = make_corpus()
    with pytest.raises(IndexMissingError, match="assistant index build"):
        Assistant.load(settings, embedder=embedder)
    report = update(settings, lambda: embedder, progress=False)
    assert report.rebuilt and report.articles == 5


def test_mismatched_settings_are_refused_with_the_fix(
    make_corpus: Callable[..., Settings], embedder: Any,
) -> None:
    settings = make_corpus()
    default = build(settings, lambda: embedder, progress=False)
    for other in (settings.replace(chunk_size=300), settings.replace(embedding_model="/tmp/other"),
                  settings.replace(passage_prompt=""), settings.replace(chunk_min_chars=0)):
        with pytest.raises(IndexMismatchError, match="assistant index build"):
            Assistant.load(other, embedder=embedder)
        with pytest.raises(IndexMismatchError, match="assistant index build"):
            update(other, lambda: embedder, progress=False)
    # The fix works: a build with the new settings replaces the index.
    smaller = settings.replace(chunk_size=300, chunk_overlap=45)
    report = build(smaller, lambda: embedder, progress=False)
    assert Assistant.load(smaller, embedder=embedder).search("Serre numérique", k=1)
    assert report.chunks > default.chunks


def test_update_after_an_upgrade_of_the_text_rules_rebuilds_reusing_vectors(
    make_corpus: Callable[..., Settings], embedder: Any,
) -> None:
    """An index written by a previous version of the sentence splitter (the manifest says so)
    is refused by readers with the fix, and `index update` (what `make run` runs) rebuilds it
    without asking, every vector read back from the old index (nothing embedded again)."""
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    path = current_generation(settings.index_dir) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["sentences"]["splitter"] = -1  # written by an older splitter
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="assistant index build"):
        Assistant.load(settings, embedder=embedder)
    counting = CountingEmbedder(embedder)
    report = update(settings, lambda: counting, progress=False)
    assert report.rebuilt and report.generation and report.articles == 5
    assert report.chunks_embedded == 0 and report.sentences_embedded == 0
    assert Assistant.load(settings, embedder=embedder).search("Serre numérique", k=1)


def test_no_pickle_files_in_the_index(seed_settings: Settings) -> None:
    index = seed_settings.index_dir
    names = {p.relative_to(index).as_posix() for p in index.rglob("*") if p.is_file()}
    assert any(n.startswith("catalog/catalog-") for n in names)
    assert any(n.startswith("stores/chunks/base-") for n in names)
    assert any(n.startswith("stores/sentences/base-") for n in names)
    assert any(n.startswith("stores/lexical/") for n in names)
    for path in index.rglob("*.npy"):
        np.load(path, allow_pickle=False)  # raises if a pickled object array were saved
    for path in index.rglob("*.npz"):
        with np.load(path, allow_pickle=False) as data:
            [data[key] for key in data.files]
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)


def test_empty_corpus_builds_an_empty_index(make_corpus: Callable[..., Settings], embedder: Any,
                                             tmp_path: Path) -> None:
    settings = make_corpus(seeds=False)
    report = build(settings, lambda: embedder, progress=False)
    assert report.articles == 0
    assert Assistant.load(settings, embedder=embedder).search("numérique") == []
