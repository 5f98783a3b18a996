"""`assistant index export`: the served index copied into Qdrant (qdrant-client's local mode)
and back without embedding anything, then updated in place; Qdrant faults end to end (the CLI's
one-line errors, HTTP 503 from a launched server, nothing half-published)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from assistant import Assistant, Settings
from assistant.errors import ConfigError, StoreUnavailableError
from assistant.index.builder import build, update
from assistant.index.export import export
from assistant.index.generations import current_generation, current_marker, read_manifest
from assistant.index.qdrant_catalog import published
from assistant.index.qdrant_connection import release_connections, shared_connection

from .helpers.serve import free_port, launched_server
from .test_index import NEW_ARTICLE

QUESTION = "Qui dirige la Louvre Lens Vallée ?"
EPINAL = "campus numérique Épinal"


@pytest.fixture(autouse=True)
def _release_qdrant() -> Iterator[None]:
    """Local mode allows one client per directory: close this process's after each test."""
    yield
    release_connections()


class CountingEmbedder:
    """The real model, counting the passages it is given."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.dimension = inner, inner.model_id, inner.dimension
        self.texts = 0

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return np.asarray(self.inner.embed_passages(texts, progress=progress))

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self.inner.embed_query(text))


def _results(bot: Assistant, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per question: the passages found (id, article, span, score) and the answer given."""
    out = []
    for q in questions:
        passages = bot.search(q["question"], k=5)
        answer = bot.ask(q["question"])
        out.append({
            "passages": [(p.chunk_id, p.source, p.start, p.end, p.text) for p in passages],
            "scores": [p.score for p in passages],
            "answer": (answer.text, answer.in_corpus,
                       [(p.chunk_id, p.source) for p in answer.citations]),
        })
    return out


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x["passages"] == y["passages"] and x["answer"] == y["answer"]
        assert np.allclose(x["scores"], y["scores"], atol=1e-4)


def _unchanged_manifest(before: dict[str, Any], after: dict[str, Any]) -> None:
    """The copy's manifest is the source's but for generation, stores and built_at."""
    differ = {"generation", "stores", "built_at"}
    assert {k: v for k, v in before.items() if k not in differ} == {
        k: v for k, v in after.items() if k not in differ}
    assert after["generation"] > before["generation"]


def test_export_round_trip_same_answers_no_embedding_and_updates(
    make_corpus: Callable[..., Settings], embedder: Any, dev_questions: list[dict[str, Any]],
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    source = read_manifest(current_generation(settings.index_dir))
    local = _results(Assistant.load(settings, embedder=embedder), dev_questions)
    assert all(r["passages"] for r in local)
    found = sum(any(p[1].removesuffix(".txt") in q.get("sources", []) for p in r["passages"])
                for q, r in zip(dev_questions, local))
    assert found >= len([q for q in dev_questions if q.get("sources")]) // 2  # a real index

    # Shards and replicas reach the collections the export creates (local mode ignores them).
    qsettings = settings.replace(qdrant_path=tmp_path / "qdrant", qdrant_shards=2,
                                 qdrant_replicas=2)
    client = shared_connection(qsettings).client
    created: list[dict[str, Any]] = []
    create = client.create_collection

    def spy(name: str, **kwargs: Any) -> Any:
        created.append({"name": name, **kwargs})
        return create(name, **kwargs)

    monkeypatch.setattr(client, "create_collection", spy)
    monkeypatch.setattr("assistant.embed.backends.make_embedder", _no_model)
    monkeypatch.setattr("assistant.index.builder.make_embedder", _no_model)

    report = export(qsettings, "qdrant")
    assert (report.source, report.target, report.texts_embedded) == ("local", "qdrant", 0)
    assert (report.articles, report.chunks, report.sentences) == (
        source["corpus"]["articles"], source["catalog"]["chunks"], source["catalog"]["sentences"])
    assert report.where == f"local:{tmp_path / 'qdrant'}"
    assert {(c["name"], c["shard_number"], c["replication_factor"]) for c in created} == {
        (f"assistant_chunks_{report.generation.split('-')[0].lstrip('0')}", 2, 2),
        (f"assistant_sentences_{report.generation.split('-')[0].lstrip('0')}", 2, 2),
        (f"assistant_articles_{report.generation.split('-')[0].lstrip('0')}", 2, 2),
        ("assistant_meta", 1, 2)}  # the announcement: one shard, copied like the others
    copied = read_manifest(current_generation(settings.index_dir))
    _unchanged_manifest(source, copied)
    assert {s["backend"] for s in copied["stores"].values()} == {"qdrant"}

    qbot = Assistant.load(qsettings, embedder=embedder)
    on_qdrant = _results(qbot, dev_questions)
    _same(local, on_qdrant)
    # The chunk points carry what a reader shows, as a build on Qdrant writes it.
    passage = qbot.search(QUESTION, k=1)[0]
    point = qbot.retriever.index.dense.saved([passage.chunk_id])[passage.chunk_id]  # type: ignore[attr-defined]
    assert {k: point.payload[k] for k in ("source", "title", "start", "end", "text")} == {
        "source": passage.source, "title": passage.title, "start": passage.start,
        "end": passage.end, "text": passage.text}

    # The copy updates incrementally on Qdrant: only the new article is embedded.
    monkeypatch.undo()
    (settings.corpus_dir / "campus-epinal.md").write_text(NEW_ARTICLE, encoding="utf-8")
    counting = CountingEmbedder(embedder)
    updated = update(qsettings.replace(store="qdrant"), lambda: counting, progress=False)
    assert updated.added == ["campus-epinal.md"] and updated.unchanged == 5
    assert 0 < updated.chunks_embedded < 5 and counting.texts < 20
    assert qbot.search(EPINAL, k=1)[0].source == "campus-epinal.md"
    after_update = _results(qbot, dev_questions)

    # And back to local files, still without the model; the local copy updates too.
    monkeypatch.setattr("assistant.embed.backends.make_embedder", _no_model)
    monkeypatch.setattr("assistant.index.builder.make_embedder", _no_model)
    back = export(qsettings, "local")
    assert (back.source, back.target, back.texts_embedded, back.articles) == (
        "qdrant", "local", 0, 6)
    local_again = read_manifest(current_generation(settings.index_dir))
    assert {s["backend"] for s in local_again["stores"].values()} == {"faiss", "bm25"}
    # Qdrant no longer announces a generation: replicas reading it do not follow one that the
    # next update prunes
    assert published(shared_connection(qsettings), qsettings.qdrant_prefix) is None
    release_connections()  # a local index needs no Qdrant to be read
    lbot = Assistant.load(settings, embedder=embedder)
    _same(after_update, _results(lbot, dev_questions))
    monkeypatch.undo()
    (settings.corpus_dir / "lorntech-sillon-lorrain.txt").unlink()
    removed = update(settings, lambda: CountingEmbedder(embedder), progress=False)
    assert removed.removed == ["lorntech-sillon-lorrain.txt"] and removed.chunks_embedded == 0
    assert all(p.source != "lorntech-sillon-lorrain.txt" for p in lbot.search("Lorntech", k=5))


def _no_model(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("an export must not load the embedding model")


# -- the command line -----------------------------------------------------------------------

def _cli(args: list[str], settings: Settings, timeout: float = 300,
         **env: str) -> subprocess.CompletedProcess[str]:
    """`assistant ARGS` in a subprocess, with no ASSISTANT_* setting but the ones given."""
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    return subprocess.run(
        [*cmd, *args, "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
        capture_output=True, text=True, timeout=timeout, env={**base, **env})


def _one_error_line(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Erreur : ")]
    assert len(errors) == 1, out.stderr
    for needle in needles:
        assert needle in errors[0], out.stderr
    return errors[0]


def test_cli_export_without_model_then_search_update_and_back(
    make_corpus: Callable[..., Settings], embedder: Any, tmp_path: Path,
) -> None:
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    qdrant = {"ASSISTANT_QDRANT_PATH": str(tmp_path / "qdrant")}
    first = current_marker(settings.index_dir)

    _one_error_line(_cli(["index", "export", "--to", "qdrant"], settings),
                    "ASSISTANT_QDRANT_URL", "ASSISTANT_QDRANT_PATH")
    _one_error_line(_cli(["index", "export", "--to", "local"], settings, **qdrant),
                    "déjà", "« local »")
    assert current_marker(settings.index_dir) == first

    # No model at hand: the export never needs one.
    out = _cli(["index", "export", "--to", "qdrant", "--json", "--model",
                str(tmp_path / "no-such-model")], settings, **qdrant)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["source"], report["target"], report["texts_embedded"]) == (
        "local", "qdrant", 0)
    assert report["chunks"] > 0 and report["sentences"] > report["chunks"]
    _one_error_line(_cli(["index", "export", "--to", "qdrant"], settings, **qdrant),
                    "déjà", "« qdrant »", "--to local")

    status = json.loads(_cli(["index", "status", "--json"], settings).stdout)
    assert set(status["stores"].values()) == {"qdrant"} and status["chunks"] == report["chunks"]
    out = _cli(["search", QUESTION, "--json", "-k", "5"], settings, **qdrant)
    assert out.returncode == 0, out.stderr
    assert any("Maadnous" in p["text"] or "Balzerani" in p["text"]
               for p in json.loads(out.stdout))

    (settings.corpus_dir / "campus-epinal.md").write_text(NEW_ARTICLE, encoding="utf-8")
    _one_error_line(_cli(["index", "update"], settings, **qdrant),  # store=local by default
                    "assistant index export --to local")
    out = _cli(["index", "update", "--json"], settings, ASSISTANT_STORE="qdrant", **qdrant)
    assert out.returncode == 0, out.stderr
    updated = json.loads(out.stdout)
    assert updated["added"] == 1 and 0 < updated["chunks_embedded"] < 5

    out = _cli(["index", "export", "--to", "local"], settings, **qdrant)
    assert out.returncode == 0, out.stderr
    assert re.search(r"« qdrant » vers « local ».* 6 article\(s\).* 0 texte vectorisé",
                     out.stdout), out.stdout
    out = _cli(["search", EPINAL, "--json", "-k", "1"], settings)  # no Qdrant needed now
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["source"] == "campus-epinal.md"


# -- faults ---------------------------------------------------------------------------------

@pytest.fixture
def on_qdrant(make_corpus: Callable[..., Settings], embedder: Any,
              tmp_path: Path) -> Settings:
    """The seed index built locally and exported to Qdrant in local mode (settings to read it
    in-process; the local-mode client is released for subprocesses)."""
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    qsettings = settings.replace(qdrant_path=tmp_path / "qdrant")
    export(qsettings, "qdrant")
    release_connections()
    return qsettings


def test_unreachable_qdrant_cli_one_line_and_nothing_published(on_qdrant: Settings) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    # The URL wins over the local-mode path (shared_connection): the index's Qdrant is down.
    dead = {"ASSISTANT_QDRANT_URL": url, "ASSISTANT_QDRANT_PATH": str(on_qdrant.qdrant_path)}
    served = current_marker(on_qdrant.index_dir)
    for args in (["search", QUESTION], ["ask", QUESTION], ["search", QUESTION, "--json"]):
        out = _cli(args, on_qdrant, timeout=60, **dead)
        line = _one_error_line(out, url, "injoignable")
        assert out.stderr.strip() == line and out.stdout == ""

    (on_qdrant.corpus_dir / "campus-epinal.md").write_text(NEW_ARTICLE, encoding="utf-8")
    _one_error_line(_cli(["index", "update"], on_qdrant, timeout=60, ASSISTANT_STORE="qdrant",
                         **dead), url)
    _one_error_line(_cli(["index", "export", "--to", "local"], on_qdrant, timeout=60, **dead),
                    url)
    _one_error_line(_cli(["serve", "--port", str(free_port())], on_qdrant, timeout=120,
                         **dead), url)
    assert current_marker(on_qdrant.index_dir) == served
    assert not any(p.name.startswith(".tmp-")
                   for p in (on_qdrant.index_dir / "generations").iterdir())

    # Qdrant back: the same update goes through.
    out = _cli(["index", "update", "--json"], on_qdrant, ASSISTANT_STORE="qdrant",
               ASSISTANT_QDRANT_PATH=str(on_qdrant.qdrant_path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["added"] == 1


def _failing(*args: Any, **kwargs: Any) -> Any:
    raise ConnectionError("connexion coupée")


def test_write_failing_midway_leaves_previous_generation(
    on_qdrant: Settings, embedder: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Qdrant fails while points are written (after the catalog rows and the collection
    bookkeeping): the generation served does not move, and the next writer recovers."""
    bot = Assistant.load(on_qdrant, embedder=embedder)
    before = [p.chunk_id for p in bot.search(QUESTION, k=5)]
    served = current_marker(on_qdrant.index_dir)
    (on_qdrant.corpus_dir / "campus-epinal.md").write_text(NEW_ARTICLE, encoding="utf-8")
    writer = on_qdrant.replace(store="qdrant")
    conn = shared_connection(on_qdrant)
    monkeypatch.setattr(conn, "backoff_s", 0.01)
    monkeypatch.setattr(conn.client, "upsert", _failing)
    with pytest.raises(StoreUnavailableError, match="injoignable à local:"):
        update(writer, lambda: embedder, progress=False)
    assert current_marker(on_qdrant.index_dir) == served
    assert not bot.refresh() and [p.chunk_id for p in bot.search(QUESTION, k=5)] == before
    assert bot.search(EPINAL, k=1)[0].source != "campus-epinal.md"

    # An export back to local files that fails half-way publishes nothing either.
    monkeypatch.setattr("assistant.index.dense.faiss.FaissStore.save", _failing)
    with pytest.raises(ConnectionError):
        export(on_qdrant, "local")
    assert current_marker(on_qdrant.index_dir) == served

    monkeypatch.undo()
    report = update(writer, lambda: embedder, progress=False)
    assert report.added == ["campus-epinal.md"] and report.generation
    assert bot.refresh() and bot.search(EPINAL, k=1)[0].source == "campus-epinal.md"
    # the same best passage (the new article shifts IDF a little: lower ranks may swap)
    assert bot.search(QUESTION, k=1)[0].chunk_id == before[0]
    fresh = Assistant.load(on_qdrant, embedder=embedder)  # counts checked against the catalog
    assert len(fresh.articles()) == 6


def test_settings_for_shards_and_replicas() -> None:
    env = {"ASSISTANT_QDRANT_SHARDS": "3", "ASSISTANT_QDRANT_REPLICAS": "2"}
    settings = Settings.from_env(env)
    assert (settings.qdrant_shards, settings.qdrant_replicas) == (3, 2)
    assert Settings.from_env({}).qdrant_shards is None
    with pytest.raises(ConfigError, match="qdrant_replicas"):
        Settings(qdrant_replicas=0)


# -- HTTP -----------------------------------------------------------------------------------

def test_api_answers_503_naming_the_url_when_qdrant_is_down(
    make_corpus: Callable[..., Settings], embedder: Any, tmp_path: Path,
) -> None:
    """A launched server serves a local index; the index is then exported to Qdrant, whose URL
    (the server's setting) answers nothing: /api/search and /api/ask say so with 503."""
    pytest.importorskip("uvicorn")
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    url = f"http://127.0.0.1:{free_port()}"
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    with launched_server(args, {"ASSISTANT_QDRANT_URL": url}, tmp_path / "serve.log") as base:
        api = f"{base}/api"
        ok = httpx.post(f"{api}/search", json={"question": QUESTION}, timeout=60)
        assert ok.status_code == 200 and ok.json()

        export(settings.replace(qdrant_path=tmp_path / "qdrant"), "qdrant")
        release_connections()
        for path, body in (("search", {"question": QUESTION}),
                           ("ask", {"question": QUESTION}), ("search", {"question": "Serre"})):
            down = httpx.post(f"{api}/{path}", json=body, timeout=60)
            assert down.status_code == 503, down.text
            detail = down.json()["detail"]
            assert url in detail and "injoignable" in detail and "\n" not in detail
        health = httpx.get(f"{api}/health", timeout=60)  # the balancer takes it out
        assert health.status_code == 503 and url in health.json()["detail"], health.text
