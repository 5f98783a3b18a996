"""The catalog on PostgreSQL: what a serving process reads of the articles, from the database.

With `ASSISTANT_STORE=postgres` the writer (index build and update, export) keeps its SQLite
catalog in the index directory and also writes, in the same database, what readers need:

- `<prefix>articles_<G0>`: one row per article version (id = its catalog row id) with source,
  title, date, url, author, the cleaned text and its sha256, PDF page starts; stamped with the
  generations that added and removed it (`postgres_generations.py`), so a reader of
  generation G sees G's articles; `..._chunks` and `..._sentences`: the spans (id, start, end)
  of each article's chunks and sentences (a chunk's text is its article's text[start:end]);
- `<prefix>meta`: one row holding the name and manifest of the generation published last
  (`announce`, `published`). Writing it is the commit that publishes a generation to replicas.

A replica then needs only the URL and the model: `PostgresCatalog` answers the catalog's read
methods (`catalog.CatalogReader`) with SQL, the same queries as the SQLite file's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError
from ..records import Article, page_at
from .postgres_connection import PostgresConnection
from .postgres_generations import PgGenerational, PgLocation, copy_rows, visible

Span = tuple[int, int, int]  # (row id, start, end)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PostgresArticles(PgGenerational):
    """The articles of a PostgreSQL index, written by the writer beside the stores."""

    children = ("chunks", "sentences")

    @classmethod
    def open_for(cls, settings: Any, state: dict[str, Any] | None) -> PostgresArticles:
        location = PgLocation.of(settings, "articles")
        cls.checked(location, state)
        return cls(location, state)

    def add(self, article_id: int, article: Article, chunks: Sequence[Span],
            sentences: Sequence[Span]) -> None:
        """Article row `article_id` with its chunk and sentence rows, written by `save`."""
        self.register_add([article_id], [(article, list(chunks), list(sentences))])

    def create_tables(self, tx: Any, table: str) -> None:
        tx.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, added integer NOT NULL, '
                   "removed integer, source text NOT NULL, title text NOT NULL, date text, "
                   "url text, author text, text text NOT NULL, text_sha text NOT NULL, "
                   "page_starts jsonb)")
        tx.execute(f'CREATE INDEX "{table}_source" ON "{table}" (source)')
        for child in self.children:
            tx.execute(f'CREATE TABLE "{table}_{child}" (id bigint PRIMARY KEY, article_id '
                       f'bigint NOT NULL REFERENCES "{table}" (id) ON DELETE CASCADE, '
                       'start integer NOT NULL, "end" integer NOT NULL)')
            tx.execute(f'CREATE INDEX "{table}_{child}_article" ON "{table}_{child}" '
                       "(article_id, start)")

    def write_added(self, tx: Any, table: str, generation: int) -> None:
        rows = sorted(self._pending_add.items())
        copy_rows(tx, table, "id, added, source, title, date, url, author, text, text_sha, "
                  "page_starts", (
                      (i, generation, a.source, a.title, a.date, a.url, a.author, a.text,
                       _sha(a.text), None if a.page_starts is None else
                       json.dumps(list(a.page_starts))) for i, (a, _, _) in rows))
        for n, child in enumerate(self.children, start=1):
            copy_rows(tx, f"{table}_{child}", 'id, article_id, start, "end"',
                      ((s, i, a, b) for i, item in rows for s, a, b in item[n]))


class PostgresCatalog:
    """The catalog's read methods (`catalog.CatalogReader`) over the articles of a PostgreSQL
    index at the generation of `articles`. Lists of articles are read once (a generation never
    changes); the rest is asked by id or source."""

    def __init__(self, articles: PostgresArticles) -> None:
        self.store = articles
        self.db = articles.reader
        self.table = articles.state()["table"]
        self.path = f"{self.db.where} ({articles.location.alias})"  # for messages
        self._list: list[tuple[str, str, str | None, str | None, int]] | None = None
        self._lock = threading.Lock()

    def _rows(self, sql: str, child: str = "chunks", **params: Any) -> list[Any]:
        """Rows of `sql`, where {a} is the articles' table, {t} that of `child` ("chunks" or
        "sentences") and {visible} the condition on the articles the generation sees."""
        if self.table is None:
            return []
        sql = sql.replace("{a}", f'"{self.table}"').replace("{visible}", visible("a"))
        sql = sql.replace("{t}", f'"{self.table}_{child}"')
        return self.db.rows(sql, {**self.store.params, **params})

    def check(self) -> None:
        """IndexCorruptError unless the articles' table holds what the state counted."""
        self.store.load()

    def close(self) -> None:
        """Nothing to close: the connection is the process's (`shared_connection`)."""

    # -- articles -----------------------------------------------------------------------------
    def _articles(self) -> list[tuple[str, str, str | None, str | None, int]]:
        with self._lock:
            if self._list is None:
                self._list = [tuple(r) for r in self._rows(
                    "SELECT a.source, a.title, a.date, a.url, (SELECT count(*) FROM {t} c "
                    "WHERE c.article_id = a.id) FROM {a} a WHERE {visible} ORDER BY a.source")]
            return self._list

    def articles(self) -> list[dict[str, Any]]:
        keys = ("source", "title", "date", "url", "chunks")
        return [dict(zip(keys, r)) for r in self._articles()]

    def article_dates(self) -> dict[str, str | None]:
        return {r[0]: r[2] for r in self._articles()}

    def counts(self) -> dict[str, int]:
        out = {"articles": len(self._articles()), "chunks": sum(r[4] for r in self._articles())}
        out["sentences"] = int(self._rows(
            "SELECT count(*) FROM {t} s JOIN {a} a ON a.id = s.article_id WHERE {visible}",
            "sentences")[0][0]) if self.table else 0
        return out

    def titles(self, sources: Iterable[str]) -> dict[str, str]:
        wanted = set(sources)
        return {r[0]: r[1] for r in self._articles() if r[0] in wanted}

    def article_text(self, source: str) -> str | None:
        rows = self._rows("SELECT a.text, a.text_sha FROM {a} a WHERE {visible} "
                          "AND a.source = %(s)s", s=source)
        if not rows:
            return None
        text, sha = rows[0]
        return self._checked(source, text, sha)

    def _checked(self, source: str, text: str, sha: str) -> str:
        if _sha(text) != sha:
            raise IndexCorruptError(f"Le texte de {source} est altéré dans {self.path}. "
                                    f"{REBUILD_HINT}")
        return text

    def ids_of_articles(self, sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        found = []
        for child in ("chunks", "sentences"):
            found.append(np.sort(np.asarray([r[0] for r in self._rows(
                "SELECT t.id FROM {t} t JOIN {a} a ON a.id = t.article_id WHERE {visible} "
                "AND a.source = ANY(%(s)s)", child, s=list(sources))], dtype=np.int64)))
        return found[0], found[1]

    def _spans_of(self, child: str, sources: Iterable[str]) -> dict[str, list[Span]]:
        wanted = list(dict.fromkeys(sources))
        out: dict[str, list[Span]] = {s: [] for s in wanted}
        for source, i, a, b in self._rows(
                'SELECT a.source, t.id, t.start, t."end" FROM {t} t JOIN {a} a ON a.id = '
                "t.article_id WHERE {visible} AND a.source = ANY(%(s)s) ORDER BY a.source, "
                "t.start", child, s=wanted):
            out[source].append((int(i), int(a), int(b)))
        return out

    def sentences_of(self, sources: Iterable[str]) -> dict[str, list[Span]]:
        return self._spans_of("sentences", sources)

    def chunk_spans(self, sources: Iterable[str]) -> dict[str, list[Span]]:
        return self._spans_of("chunks", sources)

    # -- rows by id ---------------------------------------------------------------------------
    def chunks_by_id(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[str, str, str, int, int, int | None, int | None]]:
        out = {}
        texts: dict[str, str] = {}
        rows = self._rows(
            'SELECT c.id, a.source, a.title, c.start, c."end", a.page_starts, a.text, '
            "a.text_sha FROM {t} c JOIN {a} a ON a.id = c.article_id "
            "WHERE c.id = ANY(%(ids)s)", ids=[int(i) for i in ids])
        for cid, source, title, start, end, starts, text, sha in rows:
            if source not in texts:
                texts[source] = self._checked(source, text, sha)
            pages = None if starts is None else [int(x) for x in starts]
            out[int(cid)] = (texts[source][start:end], source, title, start, end,
                             page_at(pages, start), page_at(pages, max(start, end - 1)))
        return out

    def _locations(self, child: str, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        rows = self._rows('SELECT t.id, a.source, t.start, t."end" FROM {t} t JOIN {a} a '
                          "ON a.id = t.article_id WHERE t.id = ANY(%(ids)s)", child,
                          ids=[int(i) for i in ids])
        return {int(r[0]): (r[1], int(r[2]), int(r[3])) for r in rows}

    def chunk_locations(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        return self._locations("chunks", ids)

    def sentence_spans(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        return self._locations("sentences", ids)


# -- the published generation ---------------------------------------------------------------

def _meta(prefix: str) -> str:
    return f"{prefix}meta"


def announce(conn: PostgresConnection, prefix: str, name: str,
             manifest: dict[str, Any]) -> None:
    """Record generation `name` (its manifest) as the one replicas serve: one row, one
    commit, so a reader sees the previous generation or this one, whole."""
    from psycopg.types.json import Jsonb

    with conn.transaction() as tx:
        tx.execute(f'CREATE TABLE IF NOT EXISTS "{_meta(prefix)}" (key text PRIMARY KEY, '
                   "name text NOT NULL, generation integer NOT NULL, manifest jsonb NOT NULL)")
        tx.execute(f'INSERT INTO "{_meta(prefix)}" VALUES (%s, %s, %s, %s) ON CONFLICT (key) '
                   "DO UPDATE SET name = excluded.name, generation = excluded.generation, "
                   "manifest = excluded.manifest",
                   ("published", name, int(manifest["generation"]), Jsonb(manifest)))


def withdraw(conn: PostgresConnection, prefix: str) -> None:
    """Remove the announcement (no generation is served from this database any more)."""
    conn.execute(f'DROP TABLE IF EXISTS "{_meta(prefix)}"')


def _announcement(conn: PostgresConnection, prefix: str, columns: str) -> list[Any] | None:
    if conn.rows("SELECT to_regclass(%s)", (_meta(prefix),))[0][0] is None:
        return None
    rows = conn.rows(f'SELECT {columns} FROM "{_meta(prefix)}" WHERE key = %s', ("published",))
    return list(rows[0]) if rows else None


def published(conn: PostgresConnection, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """(name, manifest) of the generation announced last, or None if none was."""
    found = _announcement(conn, prefix, "name, manifest")
    if found is None:
        return None
    name, manifest = found
    if not isinstance(manifest, dict) or not isinstance(name, str):
        raise IndexCorruptError(f"La génération publiée dans {conn.where} ({_meta(prefix)}) "
                                f"est illisible. {REBUILD_HINT}")
    return name, manifest


def published_name(conn: PostgresConnection, prefix: str) -> str | None:
    """The name alone (what replicas poll)."""
    found = _announcement(conn, prefix, "name")
    return None if found is None else str(found[0])
