"""Run `assistant.index.builder.build|update` and SIGKILL this very process at the Nth call of
a function.

    python tests/helpers/kill_at.py {build|update} CORPUS INDEX TARGET N {before|after} [STORE]

STORE, when given, is a directory: the index's stores are Qdrant in local mode there
(`Settings(store="qdrant", qdrant_path=STORE)`), or a postgresql:// URL: PostgreSQL
(`Settings(store="postgres", postgres_url=STORE)`); else the local stores.

Test-only fault injection: the functions are monkeypatched here, the package stays untouched.
`before` kills on entry of the Nth call, `after` once the Nth call has returned (its effect done).
TARGET is one of `TARGETS`. When the target is called fewer than N times the run completes and
prints "NOT KILLED" (the test then fails: a kill point that is never reached proves nothing).
No embedding model is loaded: the test prepares an index whose embedding cache already holds the
vectors needed, and the `embed` target replaces the model with one that dies when asked for vectors.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import assistant.index.builder as indexer
import assistant.index.catalog as catalog
import assistant.index.dense.faiss as dense
import assistant.index.generations as generations
import assistant.index.lexical.bm25 as lexical
from assistant.config import Settings

TARGETS = (
    "add_article",  # catalog.Catalog.add_article: rows of one article (not committed)
    "catalog_commit",  # catalog.Catalog.commit: the new rows committed, not yet published
    "dense_save",  # dense.FaissStore.save: 1 = chunk vectors' segment, 2 = sentences'
    "bm25_save",  # lexical.BM25Store.save: the BM25 segment of the new generation
    "write_manifest",  # generations.write_manifest: last file of the work directory
    "os_replace",  # os.replace in generations.publish: 1 = rename work dir, 2 = switch CURRENT
    "prune",  # generations._prune: after CURRENT was switched
    "clean_abandoned",  # generations.clean_abandoned: cleaning up after an earlier crash
    "embed",  # the embedding model, when the indexer asks it for vectors
    # qdrant_generations.GenerationalStore.save: 1 = chunk vectors, 2 = sentence vectors, 3 = BM25
    # sparse vectors, 4 = articles (all written, the generation not yet published)
    "qdrant_save",
    "announce",  # served.announce in the builder: Qdrant's readers told of the new generation
    # postgres_generations.PgGenerational.save: 1 = chunk vectors, 2 = sentence vectors, 3 = BM25
    # documents and postings, 4 = articles (each one committed transaction, not yet published)
    "postgres_save",
)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def killing(func: Callable[..., Any], nth: int, when: str) -> Callable[..., Any]:
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == nth and when == "before":
            die()
        result = func(*args, **kwargs)
        if calls == nth and when == "after":
            die()
        return result

    return wrapper


class _OsProxy:
    """`os` as seen by generations.py, with `replace` wrapped (other modules keep the real one)."""

    def __init__(self, replace: Callable[..., Any]) -> None:
        self.replace = replace

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)


class _DyingEmbedder:
    def __init__(self, settings: Settings) -> None:
        self.model_id = settings.embedding_model
        self.dimension = 384

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> Any:
        die()

    def embed_query(self, text: str) -> Any:
        die()


def install(target: str, nth: int, when: str) -> None:
    if target == "add_article":
        catalog.Catalog.add_article = killing(catalog.Catalog.add_article, nth, when)  # type: ignore[method-assign]
    elif target == "catalog_commit":
        catalog.Catalog.commit = killing(catalog.Catalog.commit, nth, when)  # type: ignore[method-assign]
    elif target == "dense_save":
        dense.FaissStore.save = killing(dense.FaissStore.save, nth, when)  # type: ignore[method-assign]
    elif target == "bm25_save":
        lexical.BM25Store.save = killing(lexical.BM25Store.save, nth, when)  # type: ignore[method-assign]
    elif target == "write_manifest":
        indexer.write_manifest = killing(indexer.write_manifest, nth, when)
    elif target == "os_replace":
        generations.os = _OsProxy(killing(os.replace, nth, when))  # type: ignore[assignment]
    elif target == "announce":
        indexer.announce = killing(indexer.announce, nth, when)
    elif target == "prune":
        generations._prune = killing(generations._prune, nth, when)
    elif target == "clean_abandoned":
        indexer.clean_abandoned = killing(indexer.clean_abandoned, nth, when)
    elif target == "qdrant_save":
        import assistant.index.qdrant_generations as qdrant

        qdrant.GenerationalStore.save = killing(qdrant.GenerationalStore.save, nth, when)  # type: ignore[method-assign]
    elif target == "postgres_save":
        import assistant.index.postgres_generations as postgres

        postgres.PgGenerational.save = killing(postgres.PgGenerational.save, nth, when)  # type: ignore[method-assign]
    elif target == "embed":  # whichever factory the indexer uses to get its model
        if hasattr(indexer, "make_embedder"):
            indexer.make_embedder = lambda settings, **_: _DyingEmbedder(settings)
        else:
            indexer.SentenceTransformerEmbedder = _DyingEmbedder  # type: ignore[misc,assignment]
    else:
        raise SystemExit(f"unknown target {target!r}; one of {', '.join(TARGETS)}")


def main(argv: list[str]) -> int:
    mode, corpus, index, target, nth, when, *store = argv
    install(target, int(nth), when)
    settings = Settings(corpus_dir=Path(corpus), index_dir=Path(index))
    if store and store[0].startswith("postgresql://"):
        settings = settings.replace(store="postgres", postgres_url=store[0])
    elif store:
        settings = settings.replace(store="qdrant", qdrant_path=Path(store[0]))
    run = indexer.build if mode == "build" else indexer.update
    report = run(settings, progress=False)
    print("NOT KILLED", report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
