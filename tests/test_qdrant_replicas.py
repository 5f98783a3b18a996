"""Stateless replicas on Qdrant: a serving process given only Qdrant and the model.

A writer builds and updates the index with `ASSISTANT_STORE=qdrant` (Qdrant's local mode in a
directory); a replica gets an EMPTY index directory and reads everything from Qdrant: which
generation to serve (announced by the writer), the articles and their texts, the chunk and
sentence locations. Tested in-process (hot reload when the writer publishes) and as a launched
`assistant serve` answering its HTTP API, the OpenAI-compatible API (official `openai` client)
and MCP (official `mcp` client).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from assistant import Assistant, Settings
from assistant.core import index_status
from assistant.errors import IndexMismatchError, IndexMissingError
from assistant.index import served
from assistant.index.builder import build, update
from assistant.index.qdrant_catalog import QdrantCatalog
from assistant.index.qdrant_connection import release_connections
from tests.conftest import SEED_CORPUS, on_backend
from tests.helpers.articles import NEW_QUESTION, NEW_SOURCE, NEW_WORD, add_new_article
from tests.helpers.serve import launched_server

QUESTION = "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?"
SOURCE = "louvre-lens-vallee-cluster-numerique.txt"


def replica_of(writer: Settings, root: Path) -> Settings:
    """Settings that share only Qdrant with `writer`: an empty index directory, no corpus."""
    (root / "empty-index").mkdir(parents=True)
    return Settings(corpus_dir=root / "no-corpus", index_dir=root / "empty-index", store="qdrant",
                    qdrant_path=writer.qdrant_path)


@pytest.fixture()
def written(tmp_path: Path, embedder: Any) -> Settings:
    """The seed corpus indexed on Qdrant (local mode) by a writer with its own index directory."""
    writer = on_backend(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"),
                        "qdrant", tmp_path / "qdrant")
    shutil.copytree(SEED_CORPUS, writer.corpus_dir)
    build(writer, lambda: embedder, progress=False)
    return writer


def test_replica_serves_from_qdrant_alone_and_follows_updates(
    written: Settings, embedder: Any, seed_assistant: Assistant, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replica_settings = replica_of(written, tmp_path)
    replica = Assistant.load(replica_settings, embedder=embedder)
    assert isinstance(replica.retriever.index.db, QdrantCatalog)
    assert list(replica_settings.index_dir.iterdir()) == []  # nothing read or written there

    # The same passages, answers, article list and texts as the local seed index.
    for question in (QUESTION, "Where is the Serre numérique?", "Quand a ouvert la Serre ?"):
        here, there = replica.search(question, k=5), seed_assistant.search(question, k=5)
        assert [(p.source, p.start, p.end, p.text) for p in here] == \
            [(p.source, p.start, p.end, p.text) for p in there]
        assert replica.ask(question).text == seed_assistant.ask(question).text
    assert replica.articles() == seed_assistant.articles()
    assert replica.article_text(SOURCE) == seed_assistant.article_text(SOURCE)
    filtered = replica.search(QUESTION, k=3, sources=["serre-numerique-valenciennes"])
    assert filtered and {p.source for p in filtered} == {"serre-numerique-valenciennes.txt"}
    status = index_status(replica_settings)
    assert status["served_from"] == f"local:{written.qdrant_path}"
    assert status["articles"] == len(seed_assistant.articles())

    # The writer publishes a new generation: the replica switches to it at its next question
    # (it polls the announcement at most every POLL_S), without restarting.
    monkeypatch.setattr(served, "POLL_S", 0.0)
    add_new_article(written.corpus_dir)
    assert update(written, lambda: embedder, progress=False).added == [NEW_SOURCE]
    best = replica.search(NEW_QUESTION, 1)[0]
    assert best.source == NEW_SOURCE and NEW_WORD in best.text
    assert NEW_SOURCE in {a["source"] for a in replica.articles()}
    (written.corpus_dir / NEW_SOURCE).unlink()
    update(written, lambda: embedder, progress=False)
    assert NEW_SOURCE not in {a["source"] for a in replica.articles()}
    assert list(replica_settings.index_dir.iterdir()) == []


def test_replica_without_an_announced_index_says_which_command_builds_it(
    tmp_path: Path,
) -> None:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                        store="qdrant", qdrant_path=tmp_path / "qdrant")
    with pytest.raises(IndexMissingError, match="assistant index build"):
        Assistant.load(settings)


def test_damaged_article_text_in_qdrant_is_refused(written: Settings, embedder: Any,
                                                  tmp_path: Path) -> None:
    """A text altered in Qdrant is refused naming the rebuild, never cited."""
    from assistant.errors import IndexCorruptError
    from assistant.index.qdrant_connection import shared_connection

    replica = Assistant.load(replica_of(written, tmp_path), embedder=embedder)
    db = replica.retriever.index.db
    assert isinstance(db, QdrantCatalog)
    point = db._entries[SOURCE].point  # noqa: SLF001 - the test damages what it reads
    conn = shared_connection(written)
    conn.client.set_payload("assistant_articles", {"text": "Texte altéré."}, points=[point])
    with pytest.raises(IndexCorruptError, match="altéré"):
        db.article_text(SOURCE)


def test_a_second_index_directory_cannot_publish_over_the_first(
    written: Settings, embedder: Any, tmp_path: Path,
) -> None:
    """A writer whose index directory does not know the generation Qdrant serves (another
    machine, a lost directory) is refused before writing anything; another prefix is free."""
    other = written.replace(index_dir=tmp_path / "other-index")
    before = Assistant.load(replica_of(written, tmp_path), embedder=embedder).articles()
    with pytest.raises(IndexMismatchError, match="ASSISTANT_QDRANT_PREFIX"):
        build(other, lambda: embedder, progress=False)
    assert not (other.index_dir / "CURRENT").exists()
    assert Assistant.load(replica_of(written, tmp_path / "again"),
                          embedder=embedder).articles() == before
    beside = other.replace(qdrant_prefix="autre_")
    assert build(beside, lambda: embedder, progress=False).generation is not None


# -- a launched replica ---------------------------------------------------------------------------

def test_launched_replica_answers_http_openai_and_mcp(
    written: Settings, tmp_path: Path,
) -> None:
    """`assistant serve` with an empty index directory and only ASSISTANT_STORE=qdrant +
    ASSISTANT_QDRANT_PATH answers through every HTTP face, with citations from Qdrant."""
    pytest.importorskip("uvicorn")
    openai = pytest.importorskip("openai")
    pytest.importorskip("mcp")
    release_connections()  # local mode: one process per directory (a server has no such limit)
    empty = tmp_path / "replica-index"
    empty.mkdir()
    env = {"ASSISTANT_STORE": "qdrant", "ASSISTANT_QDRANT_PATH": str(written.qdrant_path),
           "ASSISTANT_INDEX_DIR": str(empty), "ASSISTANT_CORPUS_DIR": str(tmp_path / "none")}
    with launched_server([], env, tmp_path / "serve.log") as base:
        answer = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=60).json()
        assert answer["in_corpus"] and "Maadnous" in answer["answer"]
        cited = answer["citations"]
        assert cited and cited[0]["source"] == SOURCE and "Maadnous" in "".join(
            c["text"] for c in cited)
        passages = httpx.post(f"{base}/api/search", json={
            "question": QUESTION, "sources": ["serre-numerique-valenciennes"]}, timeout=60).json()
        assert passages and {p["source"] for p in passages} == {"serre-numerique-valenciennes.txt"}

        client = openai.OpenAI(base_url=f"{base}/v1", api_key="none")
        model = client.models.list().data[0].id
        reply = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": QUESTION}])
        assert "Maadnous" in (reply.choices[0].message.content or "")

        assert "Maadnous" in anyio.run(_mcp_search, f"{base}/mcp")
        assert httpx.get(f"{base}/", timeout=60).status_code == 200  # the chat page
        assert list(empty.iterdir()) == []  # the replica wrote nothing locally


async def _mcp_search(url: str) -> str:
    from mcp import Client

    async with Client(url, read_timeout_seconds=120) as client:
        found = await client.call_tool("search", {"question": QUESTION, "k": 3})
        assert not found.is_error, found.content
        return " ".join(p["text"] for p in (found.structured_content or {})["passages"])
