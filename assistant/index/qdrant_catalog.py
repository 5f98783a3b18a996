"""The catalog on Qdrant: what a serving process reads of the articles, from Qdrant alone.

With `ASSISTANT_STORE=qdrant` the writer (index build and update, export) keeps its SQLite
catalog in the index directory and also writes, in the same Qdrant, what readers need:

- `<prefix>articles_<G0>` (alias `<prefix>articles`): one point without vectors per article
  version (point id = its catalog row id) with source, title, date, url, author, the cleaned text
  and its sha256, PDF page starts, and its chunks and sentences as `[id, start, end]` lists;
  stamped with the generations that added and removed it, like the stores' points
  (`qdrant_generations.py`), so a reader of generation G sees G's articles;
- chunk points carry source, title, offsets and text, sentence points source and offsets
  (`stores.Stores.describe`);
- `<prefix>meta`: one point holding the manifest of the generation published last and its name
  (`announce`, `published`): replicas find the generation there and poll it to follow updates.

A replica then needs only the Qdrant URL (and key) and the model: `QdrantCatalog` answers the
catalog's read methods (`catalog.CatalogReader`) from these points.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError
from ..records import Article, page_at
from .qdrant_connection import QdrantConnection
from .qdrant_generations import GenerationalStore, QdrantLocation

META_ID = "00000000-0000-0000-0000-00000000a552"  # the one point of `<prefix>meta`
SPANS_KEPT = 512  # articles whose chunk and sentence spans a reader keeps (immutable per point)

Span = tuple[int, int, int]  # (row id, start, end)


class QdrantArticles(GenerationalStore):
    """The articles of a Qdrant index: written by the writer beside the stores, one point per
    article version; `save`, `prune` and visibility as for the stores."""

    vector = "article"
    payload_only = True

    def __init__(self, location: QdrantLocation, state: dict[str, Any] | None) -> None:
        super().__init__(location, state)
        self._payloads: dict[int, dict[str, Any]] = {}

    @classmethod
    def open(cls, location: QdrantLocation, state: dict[str, Any] | None) -> QdrantArticles:
        cls._checked(location, state)
        return cls(location, state)

    @classmethod
    def open_for(cls, settings: Any, state: dict[str, Any] | None) -> QdrantArticles:
        return cls.open(QdrantLocation.of(settings, "articles"), state)

    def add(self, article_id: int, article: Article, chunks: Sequence[Span],
            sentences: Sequence[Span]) -> None:
        """Article row `article_id` (with its chunk and sentence rows), written by `save`."""
        self.register_add([article_id], [None])
        self._payloads[article_id] = {
            "source": article.source, "title": article.title, "date": article.date,
            "url": article.url, "author": article.author, "text": article.text,
            "text_sha": _sha(article.text),
            "page_starts": None if article.page_starts is None else list(article.page_starts),
            "chunks": [list(s) for s in chunks], "sentences": [list(s) for s in sentences],
            "n_chunks": len(chunks), "n_sentences": len(sentences)}

    def collection_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {}

    def point_payload(self, i: int) -> dict[str, Any]:
        return self._payloads[i]

    def saved_changes(self) -> None:
        self._payloads = {}


@dataclass(frozen=True)
class _Entry:
    """What a reader keeps of each article: its point, and what lists of articles show."""

    point: int
    title: str
    date: str | None
    url: str | None
    chunks: int
    sentences: int
    page_starts: tuple[int, ...] | None


class QdrantCatalog:
    """The catalog's read methods (`catalog.CatalogReader`) over a Qdrant index at the
    generation of `articles`: articles from their points, chunk and sentence locations from the
    payloads of the stores' points (`chunks`, `sentences`: the index's Qdrant dense stores)."""

    def __init__(self, articles: QdrantArticles, chunks: GenerationalStore,
                 sentences: GenerationalStore) -> None:
        self.store, self.chunk_points, self.sentence_points = articles, chunks, sentences
        self.path = f"{articles.conn.where} ({articles.location.alias})"  # for messages
        self._entries: dict[str, _Entry] = {}
        self._spans: OrderedDict[str, tuple[list[Span], list[Span]]] = OrderedDict()
        self._lock = threading.Lock()
        collection = articles.state()["collection"]
        if collection is None:
            return
        fields = ["source", "title", "date", "url", "n_chunks", "n_sentences", "page_starts"]
        for record in articles.scroll(collection, articles.visible_filter(), payload=fields):
            p = record.payload or {}
            if isinstance(record.id, str):  # the marker
                continue
            starts = p.get("page_starts")
            self._entries[str(p["source"])] = _Entry(
                int(record.id), str(p.get("title") or ""), p.get("date"), p.get("url"),
                int(p.get("n_chunks") or 0), int(p.get("n_sentences") or 0),
                None if starts is None else tuple(int(x) for x in starts))

    def check(self) -> None:
        """IndexCorruptError unless the articles' collection holds what the state counted."""
        self.store.load()
        if len(self._entries) != len(self.store):
            raise IndexCorruptError(
                f"Les articles de {self.path} ne correspondent pas à l'index publié "
                f"({len(self._entries)} lus, {len(self.store)} attendus). {REBUILD_HINT}")

    def close(self) -> None:
        """Nothing to close: the connection is the process's (`shared_connection`)."""

    # -- articles -----------------------------------------------------------------------------
    def articles(self) -> list[dict[str, Any]]:
        return [{"source": s, "title": e.title, "date": e.date, "url": e.url, "chunks": e.chunks}
                for s, e in sorted(self._entries.items())]

    def article_dates(self) -> dict[str, str | None]:
        return {s: e.date for s, e in sorted(self._entries.items())}

    def counts(self) -> dict[str, int]:
        return {"articles": len(self._entries),
                "chunks": sum(e.chunks for e in self._entries.values()),
                "sentences": sum(e.sentences for e in self._entries.values())}

    def titles(self, sources: Iterable[str]) -> dict[str, str]:
        return {s: self._entries[s].title for s in sources if s in self._entries}

    def article_text(self, source: str) -> str | None:
        entry = self._entries.get(source)
        if entry is None:
            return None
        record = self.store.saved([entry.point], payload=["text", "text_sha"]).get(entry.point)
        payload = record.payload if record is not None else None
        if not payload or _sha(str(payload.get("text"))) != payload.get("text_sha"):
            raise IndexCorruptError(f"Le texte de {source} est absent ou altéré dans "
                                    f"{self.path}. {REBUILD_HINT}")
        return str(payload["text"])

    def ids_of_articles(self, sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        spans = self._spans_of(sources)
        chunks = [i for c, _ in spans.values() for i, _, _ in c]
        sentences = [i for _, s in spans.values() for i, _, _ in s]
        return (np.sort(np.asarray(chunks, dtype=np.int64)),
                np.sort(np.asarray(sentences, dtype=np.int64)))

    def sentences_of(self, sources: Iterable[str]) -> dict[str, list[Span]]:
        return {s: spans[1] for s, spans in self._spans_of(sources).items()}

    def chunk_spans(self, sources: Iterable[str]) -> dict[str, list[Span]]:
        return {s: spans[0] for s, spans in self._spans_of(sources).items()}

    # -- rows by id ---------------------------------------------------------------------------
    def chunks_by_id(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[str, str, str, int, int, int | None, int | None]]:
        out = {}
        fields = ["text", "source", "title", "start", "end"]
        for cid, record in self.chunk_points.saved(ids, payload=fields).items():
            p = record.payload or {}
            start, end = int(p["start"]), int(p["end"])
            entry = self._entries.get(str(p["source"]))
            pages = None if entry is None or entry.page_starts is None else list(
                entry.page_starts)
            out[cid] = (str(p["text"]), str(p["source"]), str(p.get("title") or ""), start, end,
                        page_at(pages, start), page_at(pages, max(start, end - 1)))
        return out

    def chunk_locations(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        return _locations(self.chunk_points, ids)

    def sentence_spans(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        return _locations(self.sentence_points, ids)

    # -- internals ----------------------------------------------------------------------------
    def _spans_of(self, sources: Iterable[str]) -> dict[str, tuple[list[Span], list[Span]]]:
        """source -> (its chunks, its sentences) as (id, start, end) in reading order; unknown
        sources get empty lists. An article point never changes: spans are kept."""
        wanted = list(dict.fromkeys(sources))
        out: dict[str, tuple[list[Span], list[Span]]] = {}
        with self._lock:
            for source in wanted:
                if source in self._spans:
                    self._spans.move_to_end(source)
                    out[source] = self._spans[source]
        missing = {self._entries[s].point: s for s in wanted
                   if s not in out and s in self._entries}
        for point, record in self.store.saved(list(missing),
                                              payload=["chunks", "sentences"]).items():
            p = record.payload or {}
            spans = ([(int(i), int(a), int(b)) for i, a, b in p.get("chunks") or []],
                     [(int(i), int(a), int(b)) for i, a, b in p.get("sentences") or []])
            out[missing[point]] = spans
            with self._lock:
                self._spans[missing[point]] = spans
                while len(self._spans) > SPANS_KEPT:
                    self._spans.popitem(last=False)
        return {s: out.get(s, ([], [])) for s in wanted}


def _locations(points: GenerationalStore, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
    out = {}
    for i, record in points.saved(ids, payload=["source", "start", "end"]).items():
        p = record.payload or {}
        out[i] = (str(p["source"]), int(p["start"]), int(p["end"]))
    return out


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the published generation ---------------------------------------------------------------

def _meta(prefix: str) -> str:
    return f"{prefix}meta"


def announce(conn: QdrantConnection, prefix: str, name: str, manifest: dict[str, Any],
             replicas: int | None = None) -> None:
    """Record generation `name` (its manifest) as the one replicas serve: one point written in
    one request, so a reader sees the previous generation or this one, whole. The collection
    is created with one shard, copied `replicas` times (None: the server's default)."""
    from qdrant_client import models

    collection = _meta(prefix)
    if not conn.call(conn.client.collection_exists, collection):
        conn.call(conn.client.create_collection, collection, vectors_config={}, shard_number=1,
                  replication_factor=replicas)
    conn.call(conn.client.upsert, collection, [models.PointStruct(
        id=META_ID, vector={}, payload={"name": name, "generation": manifest["generation"],
                                        "manifest": manifest})])


def withdraw(conn: QdrantConnection, prefix: str) -> None:
    """Remove the announcement (no generation is served from this Qdrant any more)."""
    if conn.call(conn.client.collection_exists, _meta(prefix)):
        conn.call(conn.client.delete_collection, _meta(prefix))


def _announcement(conn: QdrantConnection, prefix: str,
                  fields: bool | list[str]) -> dict[str, Any] | None:
    """The payload (`fields` of it) of the announcement point, or None if there is none."""
    collection = _meta(prefix)
    if not conn.call(conn.client.collection_exists, collection):
        return None
    records = conn.call(conn.client.retrieve, collection, [META_ID], with_payload=fields)
    return dict(records[0].payload or {}) if records else None


def published(conn: QdrantConnection, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """(name, manifest) of the generation announced last, or None if none was."""
    payload = _announcement(conn, prefix, True)
    if payload is None:
        return None
    manifest = payload.get("manifest")
    if not isinstance(manifest, dict) or not isinstance(payload.get("name"), str):
        raise IndexCorruptError(f"La génération publiée dans {conn.where} ({_meta(prefix)}) "
                                f"est illisible. {REBUILD_HINT}")
    return str(payload["name"]), manifest


def published_name(conn: QdrantConnection, prefix: str) -> str | None:
    """The name alone (what replicas poll: a small payload)."""
    payload = _announcement(conn, prefix, ["name"])
    return None if payload is None else str(payload.get("name"))
