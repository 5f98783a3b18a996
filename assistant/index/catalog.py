"""Storage of one index generation: SQLite (articles, chunks, sentences, embedding cache) and
FAISS (dense vectors of chunks and of sentences).

FAISS lives here alone. Vector ids are chunk ids (`dense.faiss`) or sentence ids
(`sentences.faiss`), so an article's vectors can be removed. A sentence row is a span of its
article's text (`split_sentences`); its text is read from the article, not stored twice.
Index types: `flat` (exact, IndexIDMap2 over IndexFlatIP), `ivf` (IndexIVFFlat, inner product,
supports removal), `hnsw` (IndexIDMap2 over IndexHNSWFlat; no removal, rebuilt on change).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError
from ..records import Article, Chunk, page_at

SQLITE = "assistant.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    date TEXT, url TEXT, author TEXT,
    text TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    page_starts TEXT  -- PDFs: JSON list, offset in `text` where each page begins
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    tokens TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_article ON sentences(article_id, start);
CREATE TABLE IF NOT EXISTS embedding_cache (
    model TEXT NOT NULL,
    text_sha TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_sha)
) WITHOUT ROWID;
"""


class Database:
    """A SQLite file of one generation. Thread-safe for the server's worker threads."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        try:
            self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.conn.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self.conn.executescript(_SCHEMA)
                _add_page_column(self.conn)
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{path} est endommagé ({exc}). {REBUILD_HINT}") from None
        self.path = path
        self._lock = threading.Lock()

    def close(self) -> None:
        self.conn.close()

    def check(self) -> None:
        """Raise IndexCorruptError unless SQLite's quick integrity check passes."""
        try:
            with self._lock:
                row = self.conn.execute("PRAGMA quick_check").fetchone()
                self.conn.execute("SELECT count(*) FROM chunks").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.path} est endommagé ({exc}). {REBUILD_HINT}") from None
        if not row or row[0] != "ok":
            raise IndexCorruptError(f"{self.path} est endommagé ({row}). {REBUILD_HINT}")

    # -- reads -------------------------------------------------------------------------------
    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._lock:
                return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.path} est endommagé ({exc}). {REBUILD_HINT}") from None

    def article_states(self) -> dict[str, tuple[str, int, int]]:
        """source -> (sha256, size, mtime_ns) of every indexed article."""
        rows = self._all("SELECT source, sha256, size, mtime_ns FROM articles")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def articles(self) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT a.source, a.title, a.date, a.url, count(c.id) FROM articles a "
            "LEFT JOIN chunks c ON c.article_id = a.id GROUP BY a.id ORDER BY a.source"
        )
        keys = ("source", "title", "date", "url", "chunks")
        return [dict(zip(keys, r)) for r in rows]

    def article_dates(self) -> dict[str, str | None]:
        """source -> ISO date (None: undated) of every article: what filters are checked on."""
        return dict(self._all("SELECT source, date FROM articles ORDER BY source"))

    def ids_of_articles(self, sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, sentence ids) of the articles `sources`, each sorted: the rows a filtered
        search may return."""
        found: dict[str, list[int]] = {"chunks": [], "sentences": []}
        for i in range(0, len(sources), 500):
            part = list(sources[i : i + 500])
            marks = ",".join("?" * len(part))
            for table in found:
                found[table] += [r[0] for r in self._all(
                    f"SELECT t.id FROM {table} t JOIN articles a ON a.id = t.article_id "
                    f"WHERE a.source IN ({marks})", part)]
        return (np.sort(np.asarray(found["chunks"], dtype=np.int64)),
                np.sort(np.asarray(found["sentences"], dtype=np.int64)))

    def article_text(self, source: str) -> str | None:
        rows = self._all("SELECT text FROM articles WHERE source = ?", (source,))
        return rows[0][0] if rows else None

    def chunks_by_id(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[str, str, str, int, int, int | None, int | None]]:
        """chunk id -> (text, source, title, start, end, page, page_end): the pages on which
        the chunk starts and ends, None except for PDFs."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._all(
            f'SELECT c.id, c.text, a.source, a.title, c.start, c."end", {self._page_starts_sql} '
            f"FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({marks})",
            ids,
        )
        out = {}
        for cid, text, source, title, start, end, starts in rows:
            pages = _page_starts(starts)
            out[cid] = (text, source, title, start, end, page_at(pages, start),
                        page_at(pages, max(start, end - 1)))
        return out

    @functools.cached_property
    def _page_starts_sql(self) -> str:
        """`a.page_starts`, or NULL in a catalog written before PDFs had pages."""
        columns = {r[1] for r in self._all("PRAGMA table_info(articles)")}
        return "a.page_starts" if "page_starts" in columns else "NULL"

    def chunk_locations(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        """chunk id -> (source, start, end)."""
        return self._locations("chunks", ids)

    def all_tokens(self) -> tuple[list[int], list[str]]:
        rows = self._all("SELECT id, tokens FROM chunks ORDER BY id")
        return [r[0] for r in rows], [r[1] for r in rows]

    def counts(self) -> tuple[int, int]:
        a = self._all("SELECT count(*) FROM articles")[0][0]
        c = self._all("SELECT count(*) FROM chunks")[0][0]
        return a, c

    def sentence_count(self) -> int:
        return int(self._all("SELECT count(*) FROM sentences")[0][0])

    def sentence_ids(self, source: str) -> list[int]:
        rows = self._all("SELECT s.id FROM sentences s JOIN articles a ON a.id = s.article_id "
                         "WHERE a.source = ?", (source,))
        return [r[0] for r in rows]

    def sentences_of(self, sources: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        """source -> its sentences as (sentence id, start, end), in reading order."""
        return self._spans_of("sentences", sources)

    def sentence_spans(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        """sentence id -> (source, start, end)."""
        return self._locations("sentences", ids)

    def chunk_spans(self, sources: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        """source -> its chunks as (chunk id, start, end), in reading order."""
        return self._spans_of("chunks", sources)

    def _spans_of(self, table: str, sources: Iterable[str]
                  ) -> dict[str, list[tuple[int, int, int]]]:
        """source -> the (id, start, end) rows of `table` ("chunks" or "sentences")."""
        sources = list(dict.fromkeys(sources))
        if not sources:
            return {}
        marks = ",".join("?" * len(sources))
        rows = self._all(
            f'SELECT a.source, t.id, t.start, t."end" FROM {table} t JOIN articles a '
            f"ON a.id = t.article_id WHERE a.source IN ({marks}) ORDER BY a.source, t.start",
            sources,
        )
        out: dict[str, list[tuple[int, int, int]]] = {source: [] for source in sources}
        for source, row_id, start, end in rows:
            out[source].append((row_id, start, end))
        return out

    def _locations(self, table: str, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        """id -> (source, start, end) of rows of `table` ("chunks" or "sentences")."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._all(
            f'SELECT t.id, a.source, t.start, t."end" FROM {table} t JOIN articles a '
            f"ON a.id = t.article_id WHERE t.id IN ({marks})", ids,
        )
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def cached_vectors(self, model: str, shas: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(shas), 500):
            part = list(shas[i : i + 500])
            marks = ",".join("?" * len(part))
            rows = self._all(
                f"SELECT text_sha, vector FROM embedding_cache WHERE model = ? "
                f"AND text_sha IN ({marks})",
                [model, *part],
            )
            for sha, blob in rows:
                found[sha] = np.frombuffer(blob, dtype=np.float32)
        return found

    # -- writes (only ever on a work copy, under the writer lock) ------------------------------
    def add_article(
        self, article: Article, size: int, mtime_ns: int, chunks: Sequence[Chunk],
        tokens: Sequence[str],
    ) -> list[int]:
        cur = self.conn.execute(
            "INSERT INTO articles (source, sha256, title, date, url, author, text, size, "
            "mtime_ns, page_starts) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (article.source, article.sha256, article.title, article.date, article.url,
             article.author, article.text, size, mtime_ns,
             None if article.page_starts is None else json.dumps(list(article.page_starts))),
        )
        article_id = cur.lastrowid
        ids = []
        for chunk, toks in zip(chunks, tokens):
            cur = self.conn.execute(
                'INSERT INTO chunks (article_id, ordinal, start, "end", text, tokens) '
                "VALUES (?,?,?,?,?,?)",
                (article_id, chunk.ordinal, chunk.start, chunk.end, chunk.text, toks),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    def add_sentences(self, source: str, spans: Sequence[tuple[int, int]]) -> list[int]:
        """Sentence rows for an article already added; their ids, in the order given."""
        row = self.conn.execute("SELECT id FROM articles WHERE source = ?", (source,)).fetchone()
        ids = []
        for start, end in spans:
            cur = self.conn.execute(
                'INSERT INTO sentences (article_id, start, "end") VALUES (?,?,?)',
                (row[0], start, end),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    def remove_article(self, source: str) -> list[int]:
        ids = [r[0] for r in self.conn.execute(
            "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id "
            "WHERE a.source = ?", (source,))]
        self.conn.execute("DELETE FROM articles WHERE source = ?", (source,))
        return ids

    def touch_article(self, source: str, size: int, mtime_ns: int) -> None:
        self.conn.execute(
            "UPDATE articles SET size = ?, mtime_ns = ? WHERE source = ?", (size, mtime_ns, source)
        )

    def cache_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO embedding_cache (model, text_sha, vector) VALUES (?,?,?)",
            ((model, sha, np.asarray(v, dtype=np.float32).tobytes()) for sha, v in items),
        )

    def commit(self) -> None:
        self.conn.commit()


def _add_page_column(conn: sqlite3.Connection) -> None:
    """Give a catalog written before PDF pages were kept its `page_starts` column (additive)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(articles)")}
    if "page_starts" not in columns:
        conn.execute("ALTER TABLE articles ADD COLUMN page_starts TEXT")
        conn.commit()


def _page_starts(value: str | None) -> list[int] | None:
    return None if value is None else [int(x) for x in json.loads(value)]


def copy_database(src: Path, dst: Path) -> None:
    """A consistent copy of a generation's SQLite file (SQLite's online backup)."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(f"{src} est endommagé ({exc}). {REBUILD_HINT}") from None
    finally:
        source.close()
        target.close()
