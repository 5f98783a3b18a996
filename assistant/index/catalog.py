"""The catalog: articles, their chunks and sentences, in one SQLite file shared by generations.

An update does not copy the catalog. Article rows carry the generation that added them and the
one that removed them (`added`, `removed`); a reader of generation g sees the articles with
`added <= g` and `removed` unset or `> g`, with their chunk and sentence rows (ids are never
reused, so the dense and lexical stores of g find the rows they name). The writer (one, under
the index lock) commits its rows in one transaction before the generation is published; rows of
a writer killed before publishing are invisible and deleted by the next writer (`recover`).
Rows no kept generation sees are deleted after a publish (`purge`). WAL mode: readers never
wait for the writer.

Chunk and sentence rows are spans of their article's text (`text[start:end]`), not copies; each
row keeps `vec_key`, the hash of the text that was embedded for it, so known text is never
embedded again (the vector is read back from the dense store). Article texts carry a sha256
checked when read: damaged bytes are an IndexCorruptError, never a wrong citation.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import REBUILD_HINT, IndexCorruptError
from ..records import Article, Chunk, page_at

SCHEMA_VERSION = 2
CATALOG_DIR = "catalog"  # in the index directory: catalog-<generation that created it>.sqlite

_SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS articles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,       -- of the raw file: what updates compare
    text_sha TEXT NOT NULL,     -- of `text`: checked when read
    title TEXT NOT NULL,
    date TEXT, url TEXT, author TEXT,
    text TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    page_starts TEXT,           -- PDFs: JSON list, offset in `text` where each page begins
    added INTEGER NOT NULL,     -- generation that added the row
    removed INTEGER             -- generation that removed it (NULL: live)
);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE INDEX IF NOT EXISTS articles_removed ON articles(removed) WHERE removed IS NOT NULL;
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vec_key BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE INDEX IF NOT EXISTS chunks_vec ON chunks(vec_key);
CREATE TABLE IF NOT EXISTS sentences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vec_key BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS sentences_article ON sentences(article_id, start);
CREATE INDEX IF NOT EXISTS sentences_vec ON sentences(vec_key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_VISIBLE = "a.added <= :g AND (a.removed IS NULL OR a.removed > :g)"
_BATCH = 500  # ids per `IN (...)` query


class CatalogReader(Protocol):
    """What a reader (the retriever) asks of a catalog at one generation: `Catalog` (the SQLite
    file) or `qdrant_catalog.QdrantCatalog` (the same, read from Qdrant by a replica)."""

    path: Any  # where it is, for messages

    def check(self) -> None: ...
    def close(self) -> None: ...
    def articles(self) -> list[dict[str, Any]]: ...
    def article_dates(self) -> dict[str, str | None]: ...
    def counts(self) -> dict[str, int]: ...
    def article_text(self, source: str) -> str | None: ...
    def titles(self, sources: Iterable[str]) -> dict[str, str]: ...
    def ids_of_articles(self, sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...
    def sentences_of(self, sources: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]: ...
    def chunk_spans(self, sources: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]: ...
    def chunks_by_id(self, ids: Iterable[int]
                     ) -> dict[int, tuple[str, str, str, int, int, int | None, int | None]]: ...
    def chunk_locations(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]: ...
    def sentence_spans(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]: ...


def vec_key(text: str) -> bytes:
    """The key under which the vector of an embedded text is found again (16 bytes of sha256)."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Catalog:
    """The catalog as generation `generation` sees it. Thread-safe for the server's threads.

    Readers open it read-only; the writer opens it with `writable=True` at the generation being
    served and writes rows of the next one (`add_article` / `remove_article` take it); a build
    creates a new file (`create=True`).
    """

    def __init__(self, path: Path, generation: int, *, writable: bool = False,
                 create: bool = False) -> None:
        if not create and not path.is_file():
            raise IndexCorruptError(f"{path} est manquant. {REBUILD_HINT}")
        uri = f"file:{path}" if writable else f"file:{path}?mode=ro"
        try:
            self.conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self.conn.execute("PRAGMA foreign_keys = ON")
            if create:
                self.conn.executescript(_SCHEMA)
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)",
                                  (str(SCHEMA_VERSION),))
                self.conn.commit()
            version = self.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{path} est endommagé ({exc}). {REBUILD_HINT}") from None
        if version is None or version[0] != str(SCHEMA_VERSION):
            raise IndexCorruptError(f"{path} n'a pas le schéma attendu. {REBUILD_HINT}")
        self.path = path
        self.generation = generation
        self._lock = threading.Lock()

    @classmethod
    def current(cls, index_dir: Path) -> Catalog:
        """The catalog as the generation being served sees it (read-only)."""
        from .generations import current_generation, read_manifest

        manifest = read_manifest(current_generation(index_dir))
        return cls(catalog_file(index_dir, manifest), manifest["generation"])

    def close(self) -> None:
        self.conn.close()

    def check(self) -> None:
        """IndexCorruptError unless SQLite's structural check passes (pages, indexes)."""
        try:
            with self._lock:
                row = self.conn.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.path} est endommagé ({exc}). {REBUILD_HINT}") from None
        if not row or row[0] != "ok":
            raise IndexCorruptError(f"{self.path} est endommagé ({row}). {REBUILD_HINT}")

    # -- reads (as generation `self.generation` sees the catalog) ------------------------------
    def _all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        try:
            with self._lock:
                return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(f"{self.path} est endommagé ({exc}). {REBUILD_HINT}") from None

    def _visible(self, sql: str, **params: Any) -> list[Any]:
        return self._all(sql.replace("{visible}", _VISIBLE), {"g": self.generation, **params})

    def article_states(self) -> dict[str, tuple[str, int, int]]:
        """source -> (sha256, size, mtime_ns) of every article."""
        rows = self._visible("SELECT a.source, a.sha256, a.size, a.mtime_ns FROM articles a "
                             "WHERE {visible}")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def articles(self) -> list[dict[str, Any]]:
        rows = self._visible(
            "SELECT a.source, a.title, a.date, a.url, count(c.id) FROM articles a "
            "LEFT JOIN chunks c ON c.article_id = a.id WHERE {visible} "
            "GROUP BY a.id ORDER BY a.source"
        )
        keys = ("source", "title", "date", "url", "chunks")
        return [dict(zip(keys, r)) for r in rows]

    def article_dates(self) -> dict[str, str | None]:
        """source -> ISO date (None: undated) of every article: what filters are checked on."""
        return dict(self._visible("SELECT a.source, a.date FROM articles a WHERE {visible} "
                                  "ORDER BY a.source"))

    def counts(self) -> dict[str, int]:
        """Articles, chunks and sentences."""
        out = {}
        for table in ("chunks", "sentences"):
            out[table] = int(self._visible(
                f"SELECT count(*) FROM {table} t JOIN articles a ON a.id = t.article_id "
                "WHERE {visible}")[0][0])
        articles = self._visible("SELECT count(*) FROM articles a WHERE {visible}")
        out["articles"] = int(articles[0][0])
        return out

    def ids_of_articles(self, sources: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, sentence ids) of the articles `sources`, each sorted."""
        found: dict[str, list[int]] = {"chunks": [], "sentences": []}
        for part in _batches(list(sources)):
            marks = ",".join(f":s{i}" for i in range(len(part)))
            named = {f"s{i}": s for i, s in enumerate(part)}
            for table in found:
                found[table] += [r[0] for r in self._visible(
                    f"SELECT t.id FROM {table} t JOIN articles a ON a.id = t.article_id "
                    f"WHERE {{visible}} AND a.source IN ({marks})", **named)]
        return (np.sort(np.asarray(found["chunks"], dtype=np.int64)),
                np.sort(np.asarray(found["sentences"], dtype=np.int64)))

    def titles(self, sources: Iterable[str]) -> dict[str, str]:
        """source -> title of the articles `sources` (unknown ones left out)."""
        out: dict[str, str] = {}
        for part in _batches(list(dict.fromkeys(sources))):
            marks = ",".join(f":s{i}" for i in range(len(part)))
            out.update(self._visible(
                f"SELECT a.source, a.title FROM articles a WHERE {{visible}} "
                f"AND a.source IN ({marks})", **{f"s{i}": s for i, s in enumerate(part)}))
        return out

    def article_text(self, source: str) -> str | None:
        rows = self._visible("SELECT a.text, a.text_sha FROM articles a WHERE {visible} "
                             "AND a.source = :s", s=source)
        return self._checked(source, *rows[0]) if rows else None

    def article_record(self, source: str) -> tuple[int, Article] | None:
        """(row id, the article as indexed) of the visible article `source`, or None."""
        rows = self._visible(
            "SELECT a.id, a.title, a.text, a.text_sha, a.sha256, a.date, a.url, a.author, "
            "a.page_starts FROM articles a WHERE {visible} AND a.source = :s", s=source)
        if not rows:
            return None
        row_id, title, text, sha, raw_sha, date, url, author, starts = rows[0]
        pages = None if starts is None else tuple(int(x) for x in json.loads(starts))
        return int(row_id), Article(source, title, self._checked(source, text, sha), raw_sha,
                                    date, url, author, pages)

    def _checked(self, source: str, text: str, sha: str) -> str:
        if _text_sha(text) != sha:
            raise IndexCorruptError(
                f"{self.path} est endommagé (texte de {source} altéré). {REBUILD_HINT}")
        return text

    def chunks_by_id(
        self, ids: Iterable[int]
    ) -> dict[int, tuple[str, str, str, int, int, int | None, int | None]]:
        """chunk id -> (text, source, title, start, end, page, page_end): the pages on which
        the chunk starts and ends, None except for PDFs."""
        out = {}
        texts: dict[str, str] = {}
        for part in _batches([int(i) for i in ids]):
            rows = self._all(
                f'SELECT c.id, a.source, a.title, c.start, c."end", a.page_starts, a.text, '
                f"a.text_sha FROM chunks c JOIN articles a ON a.id = c.article_id "
                f"WHERE c.id IN ({','.join('?' * len(part))})", part)
            for cid, source, title, start, end, starts, text, sha in rows:
                if source not in texts:
                    texts[source] = self._checked(source, text, sha)
                pages = None if starts is None else [int(x) for x in json.loads(starts)]
                out[cid] = (texts[source][start:end], source, title, start, end,
                            page_at(pages, start), page_at(pages, max(start, end - 1)))
        return out

    def chunk_locations(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        """chunk id -> (source, start, end)."""
        return self._locations("chunks", ids)

    def sentence_spans(self, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        """sentence id -> (source, start, end)."""
        return self._locations("sentences", ids)

    def sentences_of(self, sources: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        """source -> its sentences as (sentence id, start, end), in reading order."""
        return self._spans_of("sentences", sources)

    def chunk_spans(self, sources: Iterable[str]) -> dict[str, list[tuple[int, int, int]]]:
        """source -> its chunks as (chunk id, start, end), in reading order."""
        return self._spans_of("chunks", sources)

    def _spans_of(self, table: str, sources: Iterable[str]
                  ) -> dict[str, list[tuple[int, int, int]]]:
        sources = list(dict.fromkeys(sources))
        out: dict[str, list[tuple[int, int, int]]] = {source: [] for source in sources}
        for part in _batches(sources):
            marks = ",".join(f":s{i}" for i in range(len(part)))
            rows = self._visible(
                f'SELECT a.source, t.id, t.start, t."end" FROM {table} t JOIN articles a '
                f"ON a.id = t.article_id WHERE {{visible}} AND a.source IN ({marks}) "
                "ORDER BY a.source, t.start", **{f"s{i}": s for i, s in enumerate(part)})
            for source, row_id, start, end in rows:
                out[source].append((row_id, start, end))
        return out

    def _locations(self, table: str, ids: Iterable[int]) -> dict[int, tuple[str, int, int]]:
        out = {}
        for part in _batches([int(i) for i in ids]):
            rows = self._all(
                f'SELECT t.id, a.source, t.start, t."end" FROM {table} t JOIN articles a '
                f"ON a.id = t.article_id WHERE t.id IN ({','.join('?' * len(part))})", part)
            out.update({r[0]: (r[1], r[2], r[3]) for r in rows})
        return out

    def rows_with_keys(self, table: str, keys: Sequence[bytes]) -> dict[bytes, int]:
        """vec_key -> id of a row of `table` ("chunks" or "sentences") embedded from that text
        (visible rows only: their vectors are in the stores of this generation)."""
        found: dict[bytes, int] = {}
        for part in _batches(list(dict.fromkeys(keys))):
            marks = ",".join(f":k{i}" for i in range(len(part)))
            rows = self._visible(
                f"SELECT t.vec_key, t.id FROM {table} t JOIN articles a ON a.id = t.article_id "
                f"WHERE {{visible}} AND t.vec_key IN ({marks})",
                **{f"k{i}": k for i, k in enumerate(part)})
            found.update({bytes(k): int(i) for k, i in rows})
        return found

    # -- writes (the one writer, under the index lock) -----------------------------------------
    def recover(self) -> int:
        """Undo what a writer killed before publishing left (rows of generations after this
        one); the number of rows undone."""
        g = self.generation
        with self.conn:
            n = self.conn.execute("DELETE FROM articles WHERE added > ?", (g,)).rowcount
            n += self.conn.execute("UPDATE articles SET removed = NULL WHERE removed > ?",
                                   (g,)).rowcount
        return n

    def add_article(
        self, article: Article, size: int, mtime_ns: int, generation: int,
        chunks: Sequence[Chunk], chunk_keys: Sequence[bytes],
        sentences: Sequence[tuple[int, int]], sentence_keys: Sequence[bytes],
    ) -> tuple[int, list[int], list[int]]:
        """Rows of a new article as of `generation`; (article id, chunk ids, sentence ids)."""
        cur = self.conn.execute(
            "INSERT INTO articles (source, sha256, text_sha, title, date, url, author, text, "
            "size, mtime_ns, page_starts, added) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (article.source, article.sha256, _text_sha(article.text), article.title,
             article.date, article.url, article.author, article.text, size, mtime_ns,
             None if article.page_starts is None else json.dumps(list(article.page_starts)),
             generation),
        )
        article_id = int(cur.lastrowid or 0)
        chunk_ids = [int(self.conn.execute(
            'INSERT INTO chunks (article_id, ordinal, start, "end", vec_key) VALUES (?,?,?,?,?)',
            (article_id, c.ordinal, c.start, c.end, key)).lastrowid or 0)
            for c, key in zip(chunks, chunk_keys)]
        sentence_ids = [int(self.conn.execute(
            'INSERT INTO sentences (article_id, start, "end", vec_key) VALUES (?,?,?,?)',
            (article_id, a, b, key)).lastrowid or 0)
            for (a, b), key in zip(sentences, sentence_keys)]
        return article_id, chunk_ids, sentence_ids

    def remove_article(self, source: str,
                       generation: int) -> tuple[int | None, list[int], list[int]]:
        """Mark the visible article `source` removed as of `generation`; its (article id or
        None if unknown, chunk ids, sentence ids), which the stores must drop."""
        row = self._visible("SELECT a.id FROM articles a WHERE {visible} AND a.source = :s",
                            s=source)
        ids = []
        for table in ("chunks", "sentences"):
            ids.append([r[0] for r in self._visible(
                f"SELECT t.id FROM {table} t JOIN articles a ON a.id = t.article_id "
                "WHERE {visible} AND a.source = :s", s=source)])
        self.conn.execute(
            f"UPDATE articles AS a SET removed = :r WHERE {_VISIBLE} AND a.source = :s",
            {"g": self.generation, "r": generation, "s": source})
        return (int(row[0][0]) if row else None), ids[0], ids[1]

    def touch_article(self, source: str, size: int, mtime_ns: int) -> None:
        """A file touched but unchanged: remember its new size and time (no re-hash next time)."""
        self.conn.execute(
            f"UPDATE articles AS a SET size = :z, mtime_ns = :m WHERE {_VISIBLE} "
            "AND a.source = :s", {"g": self.generation, "z": size, "m": mtime_ns, "s": source})

    def commit(self) -> None:
        self.conn.commit()

    def purge(self, oldest_kept: int) -> None:
        """Delete the rows no kept generation sees (removed at or before `oldest_kept`)."""
        with self.conn:
            self.conn.execute("DELETE FROM articles WHERE removed IS NOT NULL AND removed <= ?",
                              (oldest_kept,))
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


def catalog_file(index_dir: Path, manifest: dict[str, Any]) -> Path:
    """The catalog file a generation's manifest names."""
    return index_dir / CATALOG_DIR / str(manifest["catalog"]["file"])


def _batches(items: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(items), _BATCH):
        yield items[i:i + _BATCH]
