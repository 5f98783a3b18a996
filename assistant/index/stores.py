"""The stores of one index, together: chunk vectors, sentence vectors, BM25, and on Qdrant or
PostgreSQL the articles replicas read (`qdrant_catalog.py`, `postgres_catalog.py`); and the
clean-up after a publish.

`Stores.open(settings, states)` opens each at the state a manifest recorded (None: new ones,
of the backend `Settings.store` names); writers (`builder.py`, `export.py`) add and remove
rows through them, `save` them under a new generation and, once it is published,
`prune_unreferenced` deletes what no kept generation refers to.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..config import Settings
from ..records import Article, Chunk
from .catalog import CATALOG_DIR, Catalog
from .dense.base import DenseStore
from .dense.factory import ROLES, open_dense
from .generations import kept_manifests
from .lexical.base import LexicalStore
from .lexical.factory import open_lexical

if TYPE_CHECKING:
    from .postgres_catalog import PostgresArticles
    from .qdrant_catalog import QdrantArticles
    from .qdrant_generations import GenerationalStore

log = logging.getLogger(__name__)


@dataclass
class Stores:
    """The three stores of one index, opened at one state each; on Qdrant or PostgreSQL, also
    the articles that replicas read instead of the catalog file."""

    chunks: DenseStore
    sentences: DenseStore
    lexical: LexicalStore
    articles: QdrantArticles | PostgresArticles | None = None

    @classmethod
    def open(cls, settings: Settings, states: dict[str, Any] | None) -> Stores:
        states = states or {}
        chunks = open_dense(settings, "chunks", states.get("chunks"))
        articles: QdrantArticles | PostgresArticles | None = None
        if chunks.name == "qdrant":
            from .qdrant_catalog import QdrantArticles

            articles = QdrantArticles.open_for(settings, states.get("articles"))
        elif chunks.name == "postgres":
            from .postgres_catalog import PostgresArticles

            articles = PostgresArticles.open_for(settings, states.get("articles"))
        return cls(chunks, open_dense(settings, "sentences", states.get("sentences")),
                   open_lexical(settings, states.get("lexical")), articles)

    def dense(self, role: str) -> DenseStore:
        return self.chunks if role == "chunks" else self.sentences

    def describe(self, article_id: int, article: Article, chunks: list[Chunk],
                 chunk_ids: list[int], sentences: Sequence[tuple[int, int]],
                 sentence_ids: list[int]) -> None:
        """On Qdrant or PostgreSQL, what a replica reads of a new article (it has no catalog
        file): the article's row or point with its chunks' and sentences' spans; on Qdrant also,
        on each chunk and sentence point, its article and offsets (the chunks also title, date,
        url and text; source and date serve the server's filters)."""
        if self.articles is None:
            return
        self.articles.add(article_id, article,
                          [(i, c.start, c.end) for i, c in zip(chunk_ids, chunks)],
                          [(i, a, b) for i, (a, b) in zip(sentence_ids, sentences)])
        if self.chunks.name != "qdrant":
            return
        for chunk, cid in zip(chunks, chunk_ids):
            cast("GenerationalStore", self.chunks).set_payload([cid], {
                "source": article.source, "title": article.title, "date": article.date,
                "url": article.url, "start": chunk.start, "end": chunk.end, "text": chunk.text,
                # RFC 3339, for Qdrant's datetime index (range filters)
                "published": f"{article.date}T00:00:00Z" if article.date else None})
        for (a, b), sid in zip(sentences, sentence_ids):
            cast("GenerationalStore", self.sentences).set_payload([sid], {
                "source": article.source, "start": a, "end": b})

    def forget(self, article_id: int | None) -> None:
        """On Qdrant or PostgreSQL, take a removed article version out of the next generation."""
        if self.articles is not None and article_id is not None:
            self.articles.remove([article_id])

    def save(self, number: int) -> dict[str, Any]:
        states = {"chunks": self.chunks.save(number), "sentences": self.sentences.save(number),
                  "lexical": self.lexical.save(number)}
        if self.articles is not None:
            states["articles"] = self.articles.save(number)
        return states

    def prune(self, kept: list[dict[str, Any]]) -> None:
        """Delete what none of the `kept` manifests refers to."""
        for role in ROLES:
            self.dense(role).prune([m["stores"][role] for m in kept])
        self.lexical.prune([m["stores"]["lexical"] for m in kept])
        if self.articles is not None:
            self.articles.prune([m["stores"].get("articles") or {} for m in kept])



def writer_settings(settings: Settings) -> Settings:
    """`settings` as a writer uses them: every read from the primary (a read replica may lag
    behind what this writer just wrote)."""
    return dataclasses.replace(settings, postgres_read_url=None)


@contextlib.contextmanager
def store_lock(settings: Settings, wait: float = 0.0) -> Iterator[None]:
    """On PostgreSQL, the writers' advisory lock (held beside the index directory's: two
    writers with different directories on one database are refused too); elsewhere nothing."""
    if settings.store != "postgres":
        yield
        return
    from .postgres_connection import advisory_lock, shared_connection

    with advisory_lock(shared_connection(settings), settings.postgres_prefix, wait):
        yield


def prune_unreferenced(settings: Settings, catalog: Catalog, stores: Stores) -> None:
    """After a publish: delete what no kept generation refers to (catalog rows and files,
    store segments). Best effort: leftovers are removed by a later update."""
    kept = kept_manifests(settings.index_dir)
    try:
        catalog.purge(min(m["generation"] for m in kept))
        catalog.close()
        files = {str(m["catalog"]["file"]) for m in kept}
        for path in (settings.index_dir / CATALOG_DIR).iterdir():
            if path.name.split("-wal")[0].split("-shm")[0] not in files:
                path.unlink(missing_ok=True)
        stores.prune(kept)
    except Exception as exc:  # noqa: BLE001
        log.warning("Nettoyage de l'index incomplet (%s) : il sera repris à la prochaine "
                    "mise à jour.", exc)
