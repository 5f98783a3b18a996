"""The PostgreSQL lexical store: the local store's BM25, over postings kept as arrays.

The terms are the product's own (`assistant.text.analysis.analyze`, given by the writer), and
the scores those of `bm25.py`, document by document: Lucene idf ln(1 + (N - df + 0.5) /
(df + 0.5)) over the live documents, term part tf / (tf + k1 * (1 - b + b * dl / avgdl)),
k1 1.5, b 0.75, a query term given twice counting twice. PostgreSQL's own `ts_rank` is not
used: it is not BM25.

Tables (one pair per build, rows stamped with generations as in `postgres_generations.py`):
    <prefix>lexical_<G0>           id, added, removed, dl (the document's length in terms)
    <prefix>lexical_<G0>_postings  term, added, ids, tfs: the postings of the documents that
                                   generation `added` wrote, ids (int64) ascending and their
                                   term frequencies (int32), little-endian `bytea` arrays
N and the total length of the live documents are in the state (avgdl = total / N). A search
reads the rows of its terms (one statement, one row per term and generation) and scores in
numpy as the local store does: a posting counts when its document is visible at the opened
generation and was written by the row's generation (ids, `added` and lengths of the visible
documents are read once per opened generation and kept). Removing a document only stamps its
row; its postings stay in their arrays, skipped, until a rebuild.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, IndexMismatchError
from ..dense.base import IdSet
from ..postgres_generations import PgGenerational, PgLocation, copy_rows, visible
from .base import checked_documents, top_k
from .bm25 import K1, B

LAYOUT = "arrays"  # the postings' layout, recorded in the state (a change needs a rebuild)
DF_KEPT = 50_000  # document frequencies a reader keeps (a generation never changes)
_IDS, _TF = np.dtype("<i8"), np.dtype("<i4")

Postings = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, tf and dl (float64), live docs


@dataclass(frozen=True)
class _Documents:
    """The documents an opened generation sees: ids ascending, the generation that added
    each, their lengths."""

    ids: np.ndarray  # int64
    added: np.ndarray  # int64
    dl: np.ndarray  # float64

    def find(self, ids: np.ndarray, added: int) -> tuple[np.ndarray, np.ndarray]:
        """(which of `ids` are visible documents written by generation `added`, where)."""
        if not len(self.ids):
            return np.zeros(len(ids), dtype=bool), np.zeros(len(ids), dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return (self.ids[pos] == ids) & (self.added[pos] == added), pos


_NO_POSTINGS: Postings = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


class PostgresLexicalStore(PgGenerational):
    """LexicalStore on PostgreSQL (`assistant/index/lexical/base.py`)."""

    children = ("postings",)
    remove_columns = "id, dl"

    def __init__(self, location: PgLocation, state: dict[str, Any] | None) -> None:
        super().__init__(location, state)
        self._total = int(self._extra.get("total_length", 0))
        self._removed_length = 0
        self._df: dict[str, int] = {}
        self._documents: _Documents | None = None
        self._lock = threading.Lock()

    @classmethod
    def open_for(cls, settings: Any, state: dict[str, Any] | None) -> PostgresLexicalStore:
        location = PgLocation.of(settings, "lexical")
        cls.checked(location, state)
        if state is not None and (state.get("k1"), state.get("b")) != (K1, B):
            raise IndexMismatchError(
                f"Index lexical PostgreSQL écrit avec k1={state.get('k1')}, b={state.get('b')} ; "
                f"ce code utilise k1={K1}, b={B}. {REBUILD_HINT}")
        if state is not None and state.get("table") and state.get("postings") != LAYOUT:
            raise IndexMismatchError(
                "Index lexical PostgreSQL écrit par une version antérieure (postings ligne à "
                f"ligne), ce code les lit en tableaux. {REBUILD_HINT}")
        return cls(location, state)

    # -- changes ------------------------------------------------------------------------------
    def add(self, ids: np.ndarray, terms: list[list[str]]) -> None:
        self.register_add(checked_documents(ids, terms),
                          [(Counter(doc), len(doc)) for doc in terms])

    def removing(self, rows: list[Any]) -> None:
        self._removed_length += sum(int(dl) for _, dl in rows)

    def _total_now(self) -> int:
        return (self._total + sum(dl for _, dl in self._pending_add.values())
                - self._removed_length)

    # -- statistics and scoring ---------------------------------------------------------------
    def load(self) -> None:
        super().load()
        self._visible_documents()

    def _visible_documents(self) -> _Documents:
        """The saved documents the opened generation sees, read once."""
        with self._lock:
            if self._documents is None:
                rows = [] if self._table is None else self.reader.rows(
                    f'SELECT id, added, dl FROM "{self._table}" WHERE {visible()} ORDER BY id',
                    self.params, binary=True)
                table = np.array(rows, dtype=np.int64).reshape(-1, 3)
                self._documents = _Documents(table[:, 0].copy(), table[:, 1].copy(),
                                             table[:, 2].astype(np.float64))
            return self._documents

    def _universe(self) -> tuple[_Documents, list[int]]:
        """The rows scores are kept for: the saved documents the opened generation sees, then
        those added since (a writer's)."""
        docs = self._visible_documents()
        return docs, list(self._pending_add)

    def _postings(self, terms: list[str], docs: _Documents,
                  pending: list[int]) -> dict[str, Postings]:
        """Each of `terms`' postings among the live documents, as (rows of the universe, tf,
        dl)."""
        wanted = sorted({t for t in terms if "\x00" not in t})  # no text PostgreSQL holds
        parts: dict[str, list[Postings]] = {t: [] for t in terms}
        if wanted and self._table is not None:
            gone = np.fromiter(self._pending_remove, dtype=np.int64) if self._pending_remove \
                else None
            for term, added, ids_b, tfs_b in self.reader.rows(
                    f'SELECT term, added, ids, tfs FROM "{self._table}_postings" '
                    "WHERE term = ANY(%(terms)s) AND added <= %(g)s ORDER BY term, added",
                    {**self.params, "terms": wanted}, binary=True):
                ids = np.frombuffer(ids_b, dtype=_IDS)
                keep, pos = docs.find(ids, int(added))
                if gone is not None:
                    keep &= ~np.isin(ids, gone)
                rows = pos[keep]
                parts[term].append((rows, np.frombuffer(tfs_b, dtype=_TF)[keep].astype(
                    np.float64), docs.dl[rows]))
        if pending:
            base = len(docs.ids)
            for term in parts:
                found = [(base + j, self._pending_add[i][0][term], self._pending_add[i][1])
                         for j, i in enumerate(pending) if self._pending_add[i][0].get(term)]
                if found:
                    rows_t, tf_t, dl_t = zip(*found)
                    parts[term].append((np.asarray(rows_t, dtype=np.int64),
                                        np.asarray(tf_t, dtype=np.float64),
                                        np.asarray(dl_t, dtype=np.float64)))
        return {t: _joined(p) for t, p in parts.items()}

    def document_frequency(self, term: str) -> int:
        with self._lock:
            if term in self._df and not (self._pending_add or self._pending_remove):
                return self._df[term]
        return len(self._postings([term], *self._universe())[term][0])

    def _avgdl(self) -> float:
        total = self._total_now()
        return total / len(self) if total else 1.0

    def _scores(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, float64 scores) of the universe's rows, summed term by term in the local
        store's order of operations; None when no live document holds a query term."""
        docs, pending = self._universe()
        n = len(self)
        postings = self._postings(list(dict.fromkeys(terms)), docs, pending)
        if not (self._pending_add or self._pending_remove):
            with self._lock:
                if len(self._df) > DF_KEPT:
                    self._df.clear()
                self._df.update((t, len(p[0])) for t, p in postings.items())
        ids = np.concatenate([docs.ids, np.asarray(pending, dtype=np.int64)])
        scores = None
        avgdl = self._avgdl()
        for term, times in Counter(terms).items():
            rows, tf, dl = postings[term]
            df = len(rows)
            if df == 0:
                continue
            weight = times * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            if scores is None:
                scores = np.zeros(len(ids))
            scores[rows] += weight * tf / (tf + K1 * (1 - B + B * dl / avgdl))
        return None if scores is None else (ids, scores)

    def _locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `ids`, universe rows) of the live documents among `ids`."""
        docs, pending = self._universe()
        rows = np.full(len(ids), -1, dtype=np.int64)
        if len(docs.ids):
            pos = np.minimum(np.searchsorted(docs.ids, ids), len(docs.ids) - 1)
            found = docs.ids[pos] == ids
            if self._pending_remove or self._pending_add:
                found &= ~np.isin(ids, np.asarray([*self._pending_remove, *pending],
                                                  dtype=np.int64))
            rows[found] = pos[found]
        if pending:
            index = {i: len(docs.ids) + j for j, i in enumerate(pending)}
            for at, i in enumerate(ids.tolist()):
                if i in index:
                    rows[at] = index[i]
        where = np.flatnonzero(rows >= 0)
        return where, rows[where]

    def score(self, terms: list[str], ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.zeros(len(ids), dtype=np.float32)
        found = self._scores(terms)
        if found is not None and len(ids):
            where, rows = self._locate(ids)
            out[where] = found[1][rows]
        return out

    def search(self, terms: list[str], k: int,
               allowed: IdSet | None = None) -> tuple[np.ndarray, np.ndarray]:
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        if k <= 0 or (allowed is not None and len(allowed) == 0):
            return empty
        found = self._scores(terms)
        if found is None:
            return empty
        all_ids, all_scores = found
        if allowed is None:
            rows = np.flatnonzero(all_scores > 0)
        else:
            rows = self._locate(allowed.ids)[1]
            rows = rows[all_scores[rows] > 0]
        return top_k(all_ids[rows], all_scores[rows].astype(np.float32), k)

    # -- persistence hooks --------------------------------------------------------------------
    def create_tables(self, tx: Any, table: str) -> None:
        tx.execute(f'CREATE TABLE "{table}" (id bigint PRIMARY KEY, added integer NOT NULL, '
                   "removed integer, dl integer NOT NULL)")
        tx.execute(f'CREATE TABLE "{table}_postings" (term text NOT NULL, added integer NOT '
                   "NULL, ids bytea NOT NULL, tfs bytea NOT NULL, PRIMARY KEY (term, added))")
        # arrays read whole at each search: stored out of line, not compressed
        tx.execute(f'ALTER TABLE "{table}_postings" ALTER COLUMN ids SET STORAGE EXTERNAL, '
                   "ALTER COLUMN tfs SET STORAGE EXTERNAL")

    def write_added(self, tx: Any, table: str, generation: int) -> None:
        docs = sorted(self._pending_add.items())
        copy_rows(tx, table, "id, added, dl", ((i, generation, dl) for i, (_, dl) in docs))
        vocab: dict[str, int] = {}
        term_of, id_of, tf_of = [], [], []
        for i, (counts, _) in docs:
            for term, tf in counts.items():
                term_of.append(vocab.setdefault(term, len(vocab)))
                id_of.append(i)
                tf_of.append(tf)
        terms = np.asarray(term_of, dtype=np.int64)
        order = np.argsort(terms, kind="stable")  # by term, then id (docs are in id order)
        ids = np.asarray(id_of, dtype=_IDS)[order]
        tfs = np.asarray(tf_of, dtype=_TF)[order]
        bounds = np.searchsorted(terms[order], np.arange(len(vocab) + 1))
        copy_rows(tx, f"{table}_postings", "term, added, ids, tfs", (
            (term, generation, ids[bounds[j]:bounds[j + 1]].tobytes(),
             tfs[bounds[j]:bounds[j + 1]].tobytes()) for term, j in sorted(vocab.items())))

    def clean_leftovers(self, tx: Any, table: str, above: int) -> None:
        super().clean_leftovers(tx, table, above)
        tx.execute(f'DELETE FROM "{table}_postings" WHERE added > %s', (above,))

    def save(self, generation: int) -> dict[str, Any]:
        total = self._total_now()
        state = super().save(generation)
        self._total, self._removed_length = total, 0
        with self._lock:
            self._df, self._documents = {}, None
        return {**state, "total_length": total}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "k1": K1, "b": B, "total_length": self._total,
                "postings": LAYOUT}

    def describe(self) -> dict[str, Any]:
        n = len(self)
        return {**super().describe(), "documents": n,
                "avgdl": self._total_now() / n if n else None}


def _joined(parts: list[Postings]) -> Postings:
    if not parts:
        return _NO_POSTINGS
    if len(parts) == 1:
        return parts[0]
    ids, tf, dl = zip(*parts)
    return np.concatenate(ids), np.concatenate(tf), np.concatenate(dl)
