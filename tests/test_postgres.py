"""PostgreSQL + pgvector against a real server (`tests/helpers/postgres.py`): the stores' own
mechanics (HNSW and exact search, BM25 equal to the local store's), stateless replicas (only the
URL and the model; a read-only replica URL), export both ways, two writers, and the faults (server
down, bad credentials, missing `vector` extension, statement timeout): one French line, CLI
exit 1, HTTP 503, nothing lost. The core search / answer / update / crash checks on PostgreSQL
are in `test_backends_parity.py`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from assistant import Assistant, Settings
from assistant.core import index_status
from assistant.errors import IndexLockedError, StoreUnavailableError
from assistant.index import served
from assistant.index.builder import build, update
from assistant.index.dense.base import IdSet
from assistant.index.export import export
from assistant.index.lexical.bm25 import BM25Store
from assistant.index.postgres_catalog import PostgresCatalog, published
from assistant.index.postgres_connection import (
    PostgresConnection,
    public_url,
    release_connections,
    shared_connection,
)
from assistant.index.postgres_generations import PgLocation
from tests.conftest import SEED_CORPUS, on_backend
from tests.helpers.articles import NEW_QUESTION, NEW_SOURCE, NEW_WORD, add_new_article
from tests.helpers.postgres import database_of, new_database, server_url
from tests.helpers.serve import launched_server

QUESTION = "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?"
SOURCE = "louvre-lens-vallee-cluster-numerique.txt"


def _admin(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


@pytest.fixture()
def written(tmp_path: Path, embedder: Any, postgres_server: str) -> Settings:
    """The seed corpus indexed on PostgreSQL (a database of its own) by a writer."""
    writer = on_backend(Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index"),
                        "postgres", tmp_path / "unused")
    shutil.copytree(SEED_CORPUS, writer.corpus_dir)
    build(writer, lambda: embedder, progress=False)
    return writer


def replica_of(writer: Settings, root: Path, **changes: Any) -> Settings:
    """Settings that share only the database with `writer`: an empty index directory."""
    (root / "empty-index").mkdir(parents=True, exist_ok=True)
    return Settings(corpus_dir=root / "no-corpus", index_dir=root / "empty-index",
                    store="postgres", postgres_url=writer.postgres_url).replace(**changes)


# -- the stores ---------------------------------------------------------------------------------

def _dense(url: str, role: str = "chunks", state: dict[str, Any] | None = None,
           **settings: Any) -> Any:
    from assistant.index.dense.postgres import PostgresDenseStore

    return PostgresDenseStore.open_for(Settings(store="postgres", postgres_url=url, **settings),
                                       role, state)


def test_dense_store_hnsw_and_exact_agree_across_generations(postgres_server: str) -> None:
    """Exact (a scan) below the threshold, HNSW above it: the same neighbours on 2,000 random
    vectors; removals and filters respected; each saved state keeps seeing its own rows."""
    url = new_database("dense")
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(2000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 2010, dtype=np.int64)
    exact = _dense(url, postgres_hnsw_min_rows=10**9)
    exact.add(ids, vectors)
    first = exact.save(1)
    assert first["hnsw"] is False and len(exact) == 2000
    assert np.array_equal(exact.vectors(ids[:50]), vectors[:50])  # float4 round-trips exactly
    exact.remove(ids[:100])
    second = exact.save(2)

    hnsw = _dense(url, "sentences", postgres_hnsw_min_rows=1000)
    hnsw.add(ids, vectors)
    assert hnsw.save(1)["hnsw"] is True
    hnsw.remove(ids[:100])
    hnsw.save(2)
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    for q in queries:
        truth = ids[100:][np.argsort(-(vectors[100:] @ q), kind="stable")[:10]]
        assert list(exact.search(q, 10)) == list(truth)
        overlap = len(set(hnsw.search(q, 10).tolist()) & set(truth.tolist()))
        assert overlap >= 9
        allowed = IdSet(ids[::7])  # a filter: exact over its rows
        found = exact.search(q, 5, allowed)
        assert set(found.tolist()) <= set(ids[::7].tolist()) and not set(found) & set(ids[:100])
    old = _dense(url, state=first)  # the previous generation still sees the removed rows
    assert len(old) == 2000 and ids[0] in old.search(vectors[0], 1)
    assert _dense(url, state=second).search(vectors[0], 1)[0] != ids[0]


def test_lexical_scores_equal_the_local_store_document_by_document(
    postgres_server: str, tmp_path: Path,
) -> None:
    """The same documents in the local BM25 store and in PostgreSQL, over two generations
    (an addition and a removal): every score equal, every search the same."""
    from assistant.index.lexical.postgres import PostgresLexicalStore

    rng = np.random.default_rng(3)
    words = [f"mot{i}" for i in range(60)]
    docs = [[words[j] for j in rng.zipf(1.3, size=rng.integers(0, 40)) % 60] for _ in range(300)]
    ids = np.arange(1, 301, dtype=np.int64)
    settings = Settings(store="postgres", postgres_url=new_database("lexical"))
    local = BM25Store.open(tmp_path / "bm25", None)
    remote = PostgresLexicalStore.open_for(settings, None)
    for store in (local, remote):
        store.add(ids[:250], docs[:250])
        store.save(1)
        store.remove(ids[:30])
        store.add(ids[250:], docs[250:])
    states = [store.save(2) for store in (local, remote)]
    remote = PostgresLexicalStore.open_for(settings, states[1])  # as a reader opens it

    def same(local: Any, remote: Any) -> None:
        for query in (["mot1"], ["mot2", "mot3", "mot2"], ["mot50", "absent"], words[:12], []):
            assert np.array_equal(local.score(query, ids), remote.score(query, ids)), query
            for allowed in (None, IdSet(ids[::3])):
                a, b = local.search(query, 10, allowed), remote.search(query, 10, allowed)
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), query
        assert [local.document_frequency(w) for w in words] == \
            [remote.document_frequency(w) for w in words]

    same(local, remote)
    # removed documents pruned, then their ids given to new documents: their old postings
    # (still in generation 1's arrays) must not count; a writer's view before its save too
    remote.prune([states[1]])
    again = [docs[-1 - j] for j in range(10)]
    for store in (local, remote):
        store.add(ids[:10], again)
        store.remove(ids[40:45])
    same(local, remote)
    remote.save(3)
    local.save(3)
    same(local, PostgresLexicalStore.open_for(settings, remote.state()))


# -- replicas -----------------------------------------------------------------------------------

def test_replica_with_only_the_url_answers_like_the_local_index_and_follows_updates(
    written: Settings, embedder: Any, seed_assistant: Assistant, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replica_settings = replica_of(written, tmp_path)
    replica = Assistant.load(replica_settings, embedder=embedder)
    assert isinstance(replica.retriever.index.db, PostgresCatalog)
    for question in (QUESTION, "Where is the Serre numérique?", "Quand a ouvert la Serre ?"):
        here, there = replica.search(question, k=5), seed_assistant.search(question, k=5)
        assert [(p.source, p.start, p.end, p.text, round(p.score, 5)) for p in here] == \
            [(p.source, p.start, p.end, p.text, round(p.score, 5)) for p in there]
        assert replica.ask(question).text == seed_assistant.ask(question).text
    assert replica.articles() == seed_assistant.articles()
    assert replica.article_text(SOURCE) == seed_assistant.article_text(SOURCE)
    filtered = replica.search(QUESTION, k=3, sources=["serre-numerique-valenciennes"])
    assert filtered and {p.source for p in filtered} == {"serre-numerique-valenciennes.txt"}
    status = index_status(replica_settings)
    assert status["served_from"] == public_url(str(written.postgres_url))
    assert set(status["stores"].values()) == {"postgres"}

    monkeypatch.setattr(served, "POLL_S", 0.0)
    add_new_article(written.corpus_dir)
    assert update(written, lambda: embedder, progress=False).added == [NEW_SOURCE]
    best = replica.search(NEW_QUESTION, 1)[0]
    assert best.source == NEW_SOURCE and NEW_WORD in best.text
    (written.corpus_dir / NEW_SOURCE).unlink()
    update(written, lambda: embedder, progress=False)
    assert NEW_SOURCE not in {a["source"] for a in replica.articles()}
    assert list(replica_settings.index_dir.iterdir()) == []  # nothing read or written there


def test_readers_use_the_read_url_and_never_write(
    written: Settings, embedder: Any, seed_assistant: Assistant, tmp_path: Path,
) -> None:
    """A replica whose primary is down reads everything through ASSISTANT_POSTGRES_READ_URL,
    here a role that may only read (as on a streaming replica)."""
    url = str(written.postgres_url)
    db = database_of(url)
    _admin(url, "DROP ROLE IF EXISTS lecteur", "CREATE ROLE lecteur LOGIN",
           f'GRANT CONNECT ON DATABASE "{db}" TO lecteur',
           "GRANT SELECT ON ALL TABLES IN SCHEMA public TO lecteur",
           "ALTER ROLE lecteur SET default_transaction_read_only = on")
    read_url = url.replace("postgres:@", "lecteur:@")
    dead = f"postgresql://postgres@/{db}?host={tmp_path}/nothing-here"
    replica = Assistant.load(replica_of(written, tmp_path, postgres_url=dead,
                                        postgres_read_url=read_url), embedder=embedder)
    assert replica.ask(QUESTION).text == seed_assistant.ask(QUESTION).text
    assert replica.articles() == seed_assistant.articles()


# -- export ---------------------------------------------------------------------------------------

def test_export_to_postgres_and_back_without_the_model(
    make_corpus: Callable[..., Settings], embedder: Any, seed_assistant: Assistant,
    tmp_path: Path, postgres_server: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    target = settings.replace(postgres_url=new_database("export"))
    monkeypatch.setattr("assistant.index.builder.make_embedder", _no_model)
    report = export(target, "postgres")
    assert (report.source, report.target, report.texts_embedded) == ("local", "postgres", 0)
    assert report.articles == len(seed_assistant.articles()) and report.chunks > 0
    replica = Assistant.load(replica_of(target, tmp_path), embedder=embedder)
    for question in (QUESTION, "Quelle est la surface de la Serre numérique ?"):
        assert [(p.source, p.start, round(p.score, 5)) for p in replica.search(question, 5)] == \
            [(p.source, p.start, round(p.score, 5)) for p in seed_assistant.search(question, 5)]
    assert published(shared_connection(target), "assistant_") is not None

    back = export(target.replace(store="postgres"), "local")
    assert (back.source, back.target, back.texts_embedded) == ("postgres", "local", 0)
    assert published(shared_connection(target), "assistant_") is None  # replicas told
    local = Assistant.load(settings, embedder=embedder)
    assert local.ask(QUESTION).text == seed_assistant.ask(QUESTION).text


def _no_model(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("an export must not load the embedding model")


# -- two writers ----------------------------------------------------------------------------------

def test_a_second_writer_waits_or_is_refused(written: Settings, embedder: Any,
                                            tmp_path: Path) -> None:
    """Another process holding the database's writers lock: an update from another index
    directory is refused with the usual message naming its pid, or waits for it."""
    holder = psycopg.connect(str(written.postgres_url), autocommit=True,
                             application_name="assistant-4242")
    try:
        holder.execute("SELECT pg_advisory_lock(hashtext('assistant:assistant_'))")
        other = written.replace(index_dir=tmp_path / "other-index")
        with pytest.raises(IndexLockedError, match=r"en cours \(pid 4242"):
            update(other, lambda: embedder, progress=False)
        threading.Timer(0.5, lambda: holder.execute(
            "SELECT pg_advisory_unlock(hashtext('assistant:assistant_'))")).start()
        add_new_article(written.corpus_dir)
        started = time.monotonic()
        report = update(written, lambda: embedder, progress=False, wait=30)
        assert report.added == [NEW_SOURCE] and time.monotonic() - started >= 0.4
    finally:
        holder.close()


# -- faults ---------------------------------------------------------------------------------------

def _cli(args: list[str], settings: Settings, **env: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    return subprocess.run(
        [*cmd, *args, "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)],
        capture_output=True, text=True, timeout=120, env={**base, **env})


def _one_error_line(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("Erreur : ")]
    assert len(errors) == 1, out.stderr
    for needle in needles:
        assert needle in errors[0], out.stderr
    return errors[0]


def test_server_down_bad_password_missing_extension_one_line_each(
    written: Settings, tmp_path: Path,
) -> None:
    db = database_of(str(written.postgres_url))
    down = f"postgresql://postgres:secret@/{db}?host={tmp_path}/no-server"
    line = _one_error_line(_cli(["index", "status"], written, ASSISTANT_STORE="postgres",
                                ASSISTANT_POSTGRES_URL=down),
                           "injoignable", "ASSISTANT_POSTGRES_URL")
    assert "secret" not in line

    # bad credentials: a role with a password, and the server asking for it
    url = str(written.postgres_url)
    _admin(url, "DROP ROLE IF EXISTS gardien", "CREATE ROLE gardien LOGIN PASSWORD 'juste'")
    with _password_required("gardien"):
        bad = url.replace("postgres:@", "gardien:faux@")
        line = _one_error_line(_cli(["index", "status"], written, ASSISTANT_STORE="postgres",
                                    ASSISTANT_POSTGRES_URL=bad), "refuse l'accès", "gardien@")
        assert "faux" not in line

    # a database without pgvector, and a user who may not create it
    _admin(server_url(), "DROP DATABASE IF EXISTS sans_vecteur",
           "DROP ROLE IF EXISTS simple", "CREATE ROLE simple LOGIN",
           "CREATE DATABASE sans_vecteur OWNER simple")
    plain = server_url("sans_vecteur").replace("postgres:@", "simple:@")
    settings = written.replace(index_dir=tmp_path / "fresh", postgres_url=plain)
    with pytest.raises(StoreUnavailableError, match="CREATE EXTENSION vector;") as err:
        build(settings, lambda: None, progress=False)  # type: ignore[arg-type,return-value]
    assert "\n" not in str(err.value)


class _password_required:  # noqa: N801 - a context manager read as a phrase
    """pg_hba.conf asks `user` for a password while the block runs."""

    def __init__(self, user: str) -> None:
        from tests.helpers import postgres

        self.hba = Path(postgres._server.pgdata) / "pg_hba.conf"  # noqa: SLF001
        self.line = f"local all {user} scram-sha-256\n"

    def __enter__(self) -> None:
        self.saved = self.hba.read_text()
        self.hba.write_text(self.line + self.saved)
        _admin(server_url(), "SELECT pg_reload_conf()")

    def __exit__(self, *exc: Any) -> None:
        self.hba.write_text(self.saved)
        _admin(server_url(), "SELECT pg_reload_conf()")


def test_statement_timeout_is_one_line_and_the_next_question_works(
    written: Settings, embedder: Any, tmp_path: Path,
) -> None:
    """A table locked by another session: the search waits past `postgres_timeout`, then
    fails with one line; the lock released, the same replica answers."""
    replica = Assistant.load(replica_of(written, tmp_path, postgres_timeout=1.0),
                             embedder=embedder)
    table = replica.retriever.index.dense.state()["table"]
    with psycopg.connect(str(written.postgres_url)) as locker:
        locker.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        with pytest.raises(StoreUnavailableError, match="ne répond pas à temps") as err:
            replica.search("Serre numérique de Valenciennes", k=3)
        assert "\n" not in str(err.value) and "plus de 1 s" in str(err.value)
        locker.rollback()
    assert replica.search("Serre numérique de Valenciennes", k=3)


def test_connection_lost_is_opened_again() -> None:
    """A statement on a connection the server ended is retried on a new one."""
    conn = PostgresConnection(server_url(), backoff_s=0.01)
    pid = conn.rows("SELECT pg_backend_pid()")[0][0]
    _admin(server_url(), f"SELECT pg_terminate_backend({pid})")
    assert conn.rows("SELECT pg_backend_pid()")[0][0] != pid
    conn.close()


def test_concurrent_statements_run_side_by_side() -> None:
    """Threads sharing one PostgresConnection run on connections of its pool, at once (each
    sleeps 0.6 s; four in a row would take 2.4 s), and give them back for the next ones."""
    from concurrent.futures import ThreadPoolExecutor

    conn = PostgresConnection(server_url())
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        pids = list(pool.map(lambda _: conn.rows("SELECT pg_backend_pid(), pg_sleep(0.6)")[0][0],
                             range(4)))
    assert time.monotonic() - started < 1.8 and len(set(pids)) == 4
    assert conn.rows("SELECT pg_backend_pid()")[0][0] in pids  # given back, used again
    conn.close()
    with pytest.raises(psycopg.errors.DivisionByZero):  # a bug of ours stays itself
        conn.rows("SELECT 1 / 0")
    conn.close()


def test_launched_replica_answers_then_503_when_its_database_is_gone(
    written: Settings, tmp_path: Path,
) -> None:
    """`assistant serve` with an empty index directory and only ASSISTANT_STORE=postgres +
    ASSISTANT_POSTGRES_URL answers with citations; once the database refuses connections, the
    API answers 503 with one line naming the server (no password), and /api/health too."""
    pytest.importorskip("uvicorn")
    empty = tmp_path / "replica-index"
    empty.mkdir()
    url = str(written.postgres_url)
    env = {"ASSISTANT_STORE": "postgres", "ASSISTANT_POSTGRES_URL": url,
           "ASSISTANT_INDEX_DIR": str(empty), "ASSISTANT_CORPUS_DIR": str(tmp_path / "none")}
    with launched_server([], env, tmp_path / "serve.log") as base:
        answer = httpx.post(f"{base}/api/ask", json={"question": QUESTION}, timeout=60).json()
        assert answer["in_corpus"] and "Maadnous" in answer["answer"]
        db = database_of(url)
        release_connections()
        _admin(server_url(), f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS false',
               f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'")
        try:
            down = httpx.post(f"{base}/api/search", json={"question": QUESTION}, timeout=60)
            assert down.status_code == 503, down.text
            detail = down.json()["detail"]
            assert "PostgreSQL" in detail and public_url(url) in detail and "\n" not in detail
            health = httpx.get(f"{base}/api/health", timeout=60)
            assert health.status_code == 503
        finally:
            _admin(server_url(), f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        assert httpx.post(f"{base}/api/search", json={"question": QUESTION},
                          timeout=60).status_code == 200
    assert list(empty.iterdir()) == []


def test_settings_for_postgres() -> None:
    from assistant.errors import ConfigError

    settings = Settings.from_env({"ASSISTANT_STORE": "postgres",
                                  "ASSISTANT_POSTGRES_URL": "postgresql://u:mdp@h/db",
                                  "ASSISTANT_POSTGRES_HNSW_MIN_ROWS": "0"})
    assert settings.postgres_hnsw_min_rows == 0 and "mdp" not in repr(settings)
    assert public_url("postgresql://u:mdp@h:5433/db") == "postgresql://u@h:5433/db"
    with pytest.raises(ConfigError, match="ASSISTANT_POSTGRES_URL"):
        Settings(store="postgres")
    with pytest.raises(ConfigError, match="postgres_prefix"):
        Settings(postgres_prefix="Bad-Prefix")
    assert PgLocation.of(settings, "chunks").physical(3) == "assistant_chunks_3"
