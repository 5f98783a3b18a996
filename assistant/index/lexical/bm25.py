"""The embedded lexical store: BM25 in numpy over immutable segments.

Scoring is bm25s's default ("lucene"): idf = ln(1 + (N - df + 0.5) / (df + 0.5)) and the term
part tf / (tf + k1 * (1 - b + b * dl / avgdl)), k1 = 1.5, b = 0.75; N, df and avgdl are global over
the live documents of all segments, so splitting documents over segments changes no score. A
query term given twice counts twice (as bm25s's `get_scores`). A document without terms is live
(it counts in N) with length 0 and never matches.

On disk, in the store's directory (one writer; file names carry the generation that wrote them,
so nothing an earlier state refers to is ever overwritten):
    seg-<G>.ids.npy      int64, the segment's document ids, sorted
    seg-<G>.lengths.npy  int32, their lengths in terms
    seg-<G>.indptr.npy   int64, CSC pointers: term j's postings are [indptr[j], indptr[j+1])
    seg-<G>.rows.npy     int32, row (in the segment) of each posting, ascending within a term
    seg-<G>.tf.npy       uint16 (float32 if a count overflows), term frequency of each posting
    seg-<G>.vocab.json   the segment's terms, sorted (code point order)
    del-<G>-<H>.npy      int64, ids of segment G removed as of generation H (tombstones)
The state lists every file with its size and sha256 (checked at open). A save writes the
documents added since open as one new segment and, for each segment that lost documents, a new
tombstone file; unchanged, it writes nothing.

Merge policy, in tiers: the first segment is the base, the others deltas. When a save would
leave more than MAX_SEGMENTS segments, it merges the deltas (with the new documents) into one
delta, dropping their removed documents and so their tombstones; the base is left as it is. It
compacts everything into one segment (dropping removed documents) only when the deltas hold more
than DELTA_FRACTION of the base's rows or removed rows exceed TOMBSTONE_FRACTION of all rows.
Amortised: the base is rewritten once per ~10% of growth, a delta merge (at most ~10% of the
base) comes once per ~MAX_SEGMENTS updates, every other update writes its own rows only.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import json
import math
import re
import threading
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from ..dense.base import IdSet
from ..files import fsync_path, write_durably
from .base import top_k

FORMAT = 1
K1 = 1.5
B = 0.75
DELTA_FRACTION = 0.10  # compact when the deltas' rows exceed this share of the base's rows
MAX_SEGMENTS = 16  # more segments than this after a save: the deltas are merged into one
TOMBSTONE_FRACTION = 0.10  # ... or when removed rows exceed this share of all stored rows
_ARRAYS = ("ids", "lengths", "indptr", "rows", "tf")
_OWN_FILE = re.compile(r"^(seg-\d{8}\.(ids|lengths|indptr|rows|tf)\.npy|seg-\d{8}\.vocab\.json"
                       r"|del-\d{8}-\d{8}\.npy)$")


def _corrupt(what: str) -> IndexCorruptError:
    return IndexCorruptError(f"Index lexical endommagé : {what}. {REBUILD_HINT}")


@dataclass
class _Segment:
    generation: int | None  # None: added since open, not saved yet
    ids: np.ndarray  # int64, sorted, unique
    lengths: np.ndarray  # int32
    indptr: np.ndarray  # int64, len(vocab) + 1
    rows: np.ndarray  # int32
    tf: np.ndarray  # uint16 or float32
    vocab: list[str]  # sorted
    dead: np.ndarray  # bool per row, writable
    files: dict[str, dict[str, Any]]
    deleted: dict[str, Any] | None = None  # tombstone file reference
    dirty: bool = False  # tombstones changed since the last save

    @property
    def live(self) -> int:
        return len(self.ids) - int(self.dead.sum())

    def column(self, term: str) -> int:
        j = bisect.bisect_left(self.vocab, term)
        return j if j < len(self.vocab) and self.vocab[j] == term else -1

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows and term frequencies of the live documents holding `term`."""
        j = self.column(term)
        if j < 0:
            return self.rows[:0], self.tf[:0]
        start, end = self.indptr[j], self.indptr[j + 1]
        rows, tf = self.rows[start:end], self.tf[start:end]
        if self.dead.any():
            keep = ~self.dead[rows]
            rows, tf = rows[keep], tf[keep]
        return rows, tf

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `ids`, rows) of the ids stored and live in this segment."""
        pos = np.minimum(np.searchsorted(self.ids, ids), max(len(self.ids) - 1, 0))
        found = (self.ids[pos] == ids) if len(self.ids) else np.zeros(len(ids), dtype=bool)
        hit = np.flatnonzero(found)
        rows = pos[hit]
        alive = ~self.dead[rows]
        return hit[alive], rows[alive]


def _assemble(ids: np.ndarray, lengths: np.ndarray, term_of: np.ndarray, row_of: np.ndarray,
              tf: np.ndarray, vocab: list[str]) -> _Segment:
    """A segment from postings (global term index into `vocab`, row, tf) in any order; `ids`
    sorted. Terms without postings are dropped from the vocabulary."""
    n = max(len(ids), 1)
    order = np.argsort(term_of.astype(np.int64) * n + row_of, kind="stable")
    term_of, row_of, tf = term_of[order], row_of[order], tf[order]
    counts = np.bincount(term_of, minlength=len(vocab))
    used = np.flatnonzero(counts)
    indptr = np.zeros(len(used) + 1, dtype=np.int64)
    np.cumsum(counts[used], out=indptr[1:])
    tf_dtype = np.uint16 if (len(tf) == 0 or tf.max() <= np.iinfo(np.uint16).max) else np.float32
    return _Segment(None, ids.astype(np.int64), lengths.astype(np.int32), indptr,
                    row_of.astype(np.int32), tf.astype(tf_dtype), [vocab[j] for j in used],
                    np.zeros(len(ids), dtype=bool), {})


def _build(ids: np.ndarray, terms: list[list[str]]) -> _Segment:
    order = np.argsort(ids, kind="stable")
    docs = [terms[i] for i in order.tolist()]
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    flat = list(chain.from_iterable(docs))
    vocab = sorted(set(flat))
    index = {t: j for j, t in enumerate(vocab)}
    term_of = np.fromiter(map(index.__getitem__, flat), dtype=np.int64, count=len(flat))
    row_of = np.repeat(np.arange(len(ids), dtype=np.int64), lengths)
    n = max(len(ids), 1)
    key, tf = np.unique(term_of * n + row_of, return_counts=True)
    return _assemble(ids[order], lengths, key // n, key % n, tf, vocab)


def _merge(segments: list[_Segment]) -> _Segment:
    """One segment holding the live documents of `segments`."""
    vocab = sorted(set().union(*(s.vocab for s in segments)))
    index = {t: j for j, t in enumerate(vocab)}
    live_rows = [np.flatnonzero(~s.dead) for s in segments]
    ids = np.concatenate([s.ids[r] for s, r in zip(segments, live_rows)] + [np.zeros(0, np.int64)])
    order = np.argsort(ids, kind="stable")
    new_row = np.empty(len(ids), dtype=np.int64)
    new_row[order] = np.arange(len(ids))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    offset = 0
    for s, rows in zip(segments, live_rows):
        local = np.full(len(s.ids), -1, dtype=np.int64)
        local[rows] = new_row[offset:offset + len(rows)]
        offset += len(rows)
        gid = np.asarray([index[t] for t in s.vocab], dtype=np.int64)
        term_of = np.repeat(gid, np.diff(s.indptr))
        keep = ~s.dead[s.rows]
        parts.append((term_of[keep], local[s.rows[keep]], s.tf[keep].astype(np.float64)))
    lengths = np.concatenate([s.lengths[r] for s, r in zip(segments, live_rows)]
                             + [np.zeros(0, np.int32)])
    term_of, row_of, tf = (np.concatenate([p[i] for p in parts] + [np.zeros(0)]) for i in range(3))
    return _assemble(ids[order], lengths[order], term_of.astype(np.int64),
                     row_of.astype(np.int64), tf, vocab)


def _read(root: Path, ref: Any) -> bytes:
    if not isinstance(ref, dict) or not _OWN_FILE.match(str(ref.get("name", ""))):
        raise _corrupt("état illisible")
    path = root / ref["name"]
    try:
        data = path.read_bytes()
    except OSError:
        raise _corrupt(f"fichier manquant ou illisible {path}") from None
    if len(data) != ref.get("size") or hashlib.sha256(data).hexdigest() != ref.get("sha256"):
        raise _corrupt(f"le contenu de {path} ne correspond pas à son empreinte")
    return data


def _array(root: Path, ref: Any, dtypes: tuple[type, ...]) -> np.ndarray:
    """A 1-D array of one of `dtypes` from a verified .npy file, without copy (read-only)."""
    data = _read(root, ref)
    try:
        stream = io.BytesIO(data)
        version = np.lib.format.read_magic(stream)
        shape, fortran, dtype = (np.lib.format.read_array_header_1_0(stream) if version == (1, 0)
                                 else np.lib.format.read_array_header_2_0(stream))
        if len(shape) != 1 or dtype.type not in dtypes:
            raise ValueError(f"shape {shape}, type {dtype}")
        return np.frombuffer(data, dtype=dtype, count=shape[0], offset=stream.tell())
    except ValueError as exc:
        raise _corrupt(f"{ref['name']} : {exc}") from None


def _open_segment(root: Path, entry: Any) -> _Segment:
    try:
        files = entry["files"]
        ids, lengths, indptr, rows = (_array(root, files[n], (t,)) for n, t in zip(
            _ARRAYS, (np.int64, np.int32, np.int64, np.int32)))
        tf = _array(root, files["tf"], (np.uint16, np.float32))
        vocab = json.loads(_read(root, files["vocab"]))
        if not isinstance(vocab, list) or not all(isinstance(t, str) for t in vocab):
            raise ValueError("vocabulary")
        seg = _Segment(int(entry["generation"]), ids, lengths, indptr, rows, tf, vocab,
                       np.zeros(len(ids), dtype=bool), files, entry.get("deleted"))
        if seg.deleted is not None:
            dead_ids = _array(root, seg.deleted, (np.int64,))
            where = np.minimum(np.searchsorted(ids, dead_ids), max(len(ids) - 1, 0))
            if not np.array_equal(ids[where], dead_ids):
                raise ValueError("tombstones of unknown ids")
            seg.dead[where] = True
        ok = (len(lengths) == len(ids) and len(indptr) == len(vocab) + 1 and indptr[0] == 0
              and indptr[-1] == len(rows) == len(tf) and bool(np.all(np.diff(indptr) >= 0))
              and (len(rows) == 0 or (rows.min() >= 0 and rows.max() < len(ids))))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise _corrupt(f"segment illisible ({exc})") from None
    if not ok:
        raise _corrupt(f"segment {entry.get('generation')} incohérent")
    return seg


def _write(root: Path, name: str, data: bytes) -> dict[str, Any]:
    write_durably(root / name, data)
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _npy(array: np.ndarray) -> bytes:
    stream = io.BytesIO()
    np.save(stream, np.ascontiguousarray(array), allow_pickle=False)
    return stream.getvalue()


class BM25Store:
    """BM25 over analyzed chunk terms by chunk id, in segments (see the module docstring)."""

    name = "bm25"

    def __init__(self, root: Path, segments: list[_Segment], generation: int) -> None:
        self.root = root
        self._segments = segments
        self._generation = generation  # the last generation that wrote files here
        self._lock = threading.Lock()
        self._stats: tuple[int, list[np.ndarray]] | None = None

    @classmethod
    def open(cls, root: Path, state: dict[str, Any] | None) -> BM25Store:
        if state is None:
            return cls(Path(root), [], 0)
        if (state.get("backend"), state.get("format"), state.get("k1"), state.get("b")) != (
                cls.name, FORMAT, K1, B):
            raise IndexMismatchError(
                f"L'index lexical a été écrit par « {state.get('backend')} » (format "
                f"{state.get('format')}, k1 {state.get('k1')}, b {state.get('b')}), pas par "
                f"« {cls.name} » (format {FORMAT}, k1 {K1}, b {B}). {REBUILD_HINT}")
        segments = [_open_segment(Path(root), e) for e in state.get("segments", [])]
        return cls(Path(root), segments, int(state.get("generation", 0)))

    def __len__(self) -> int:
        return sum(s.live for s in self._segments)

    # -- changes ------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, terms: list[list[str]]) -> None:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(terms):
            raise ValueError(f"{len(ids)} ids for {len(terms)} term lists")
        if len(np.unique(ids)) != len(ids) or any(len(s.locate(ids)[0]) for s in self._segments):
            raise ValueError("an id is given twice or is already stored")
        if len(ids):
            self._segments.append(_build(ids, terms))
            self._stats = None

    def remove(self, ids: np.ndarray) -> None:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        for s in self._segments:
            rows = s.locate(ids)[1]
            if len(rows):
                s.dead[rows] = True
                s.dirty = True
                self._stats = None

    # -- scoring ------------------------------------------------------------------------------

    def _statistics(self) -> tuple[int, list[np.ndarray]]:
        """N and each segment's length normaliser k1 * (1 - b + b * dl / avgdl)."""
        with self._lock:
            if self._stats is None:
                n = len(self)
                total = sum(int(s.lengths[~s.dead].sum()) for s in self._segments)
                avgdl = total / n if total else 1.0
                norms = [K1 * (1 - B + B * s.lengths.astype(np.float64) / avgdl)
                         for s in self._segments]
                self._stats = (n, norms)
            return self._stats

    def _scores(self, terms: list[str]) -> list[np.ndarray | None]:
        """Each segment's scores of all its rows (None: no row matches); dead rows score 0."""
        n, norms = self._statistics()
        out: list[np.ndarray | None] = [None] * len(self._segments)
        for term, times in Counter(terms).items():
            found = [(i, *s.postings(term)) for i, s in enumerate(self._segments)]
            df = sum(len(rows) for _, rows, _ in found)
            if df == 0:
                continue
            weight = times * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            for i, rows, tf in found:
                if len(rows):
                    scores = out[i]
                    if scores is None:
                        scores = out[i] = np.zeros(len(self._segments[i].ids))
                    tf64 = tf.astype(np.float64)
                    scores[rows] += weight * tf64 / (tf64 + norms[i][rows])
        return out

    def search(self, terms: list[str], k: int,
               allowed: IdSet | None = None) -> tuple[np.ndarray, np.ndarray]:
        found_ids, found_scores = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
        for s, scores in zip(self._segments, self._scores(terms)):
            if scores is None:
                continue
            if allowed is None:
                rows = np.flatnonzero(scores > 0)
            else:
                rows = s.locate(allowed.ids)[1]
                rows = rows[scores[rows] > 0]
            found_ids.append(s.ids[rows])
            found_scores.append(scores[rows].astype(np.float32))
        return top_k(np.concatenate(found_ids), np.concatenate(found_scores), k)

    def score(self, terms: list[str], ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = np.zeros(len(ids), dtype=np.float32)
        for s, scores in zip(self._segments, self._scores(terms)):
            if scores is not None:
                where, rows = s.locate(ids)
                out[where] = scores[rows]
        return out

    def document_frequency(self, term: str) -> int:
        return sum(len(s.postings(term)[0]) for s in self._segments)

    # -- persistence --------------------------------------------------------------------------

    @staticmethod
    def _should_compact(rows: list[int], dead: int) -> bool:
        """Whether segments of `rows` rows (the first is the base), `dead` of them removed, are
        to be merged into one (see the module docstring)."""
        return len(rows) > 1 and (sum(rows[1:]) > DELTA_FRACTION * rows[0]
                                  or dead > TOMBSTONE_FRACTION * sum(rows))

    def _write_segment(self, seg: _Segment, generation: int) -> None:
        stem = f"seg-{generation:08d}"
        seg.files = {n: _write(self.root, f"{stem}.{n}.npy", _npy(getattr(seg, n)))
                     for n in _ARRAYS}
        vocab = json.dumps(seg.vocab, ensure_ascii=False, separators=(",", ":"))
        seg.files["vocab"] = _write(self.root, f"{stem}.vocab.json", vocab.encode())
        seg.generation, seg.deleted, seg.dirty = generation, None, False

    def save(self, generation: int) -> dict[str, Any]:
        if generation <= self._generation:
            raise ValueError(f"generation {generation} <= {self._generation}, already written")
        kept = [s for s in self._segments if s.live > 0]  # a segment wholly removed is dropped
        if len(kept) == len(self._segments) and all(
                s.generation is not None and not s.dirty for s in kept):
            return self.state()  # unchanged: write nothing
        self.root.mkdir(parents=True, exist_ok=True)
        new = [s for s in kept if s.generation is None]
        old = [s for s in kept if s.generation is not None]
        rows = [len(s.ids) for s in old] + ([sum(s.live for s in new)] if new else [])
        if self._should_compact(rows, sum(int(s.dead.sum()) for s in old)):
            old, new = [], [_merge(kept)]
        elif len(rows) > MAX_SEGMENTS:  # the deltas into one; the base stays
            old, new = old[:1], [_merge(old[1:] + new)]
        elif len(new) > 1 or (new and new[0].dead.any()):
            new = [_merge(new)]
        for seg in new:
            self._write_segment(seg, generation)
        for seg in old:
            if seg.dirty:
                name = f"del-{seg.generation:08d}-{generation:08d}.npy"
                seg.deleted = _write(self.root, name, _npy(seg.ids[seg.dead]))
                seg.dirty = False
        fsync_path(self.root)  # the new names themselves are durable
        self._segments, self._generation, self._stats = old + new, generation, None
        return self.state()

    def state(self) -> dict[str, Any]:
        """The state of what was last saved (or opened): what a manifest records."""
        return {"backend": self.name, "format": FORMAT, "generation": self._generation,
                "k1": K1, "b": B, "segments": [
                    {"generation": s.generation, "rows": len(s.ids), "files": s.files,
                     "deleted": s.deleted} for s in self._segments if s.generation is not None]}

    def prune(self, keep: list[dict[str, Any]]) -> None:
        used: set[str] = set()
        for state in keep:
            for entry in (state or {}).get("segments", []):
                used.update(ref["name"] for ref in entry["files"].values())
                if entry.get("deleted"):
                    used.add(entry["deleted"]["name"])
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():  # ours only: the files and .tmp leftovers named so
            if _OWN_FILE.match(path.name.removesuffix(".tmp")) and path.name not in used:
                path.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        vocabulary: set[str] = set()
        for s in self._segments:
            term_of = np.repeat(np.arange(len(s.vocab)), np.diff(s.indptr))
            counts = np.bincount(term_of[~s.dead[s.rows]], minlength=len(s.vocab))
            vocabulary.update(t for t, c in zip(s.vocab, counts.tolist()) if c > 0)
        return {"backend": self.name, "documents": len(self), "vocabulary": len(vocabulary),
                "segments": len(self._segments),
                "removed": sum(int(s.dead.sum()) for s in self._segments)}
