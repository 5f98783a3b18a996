"""Build and update the index: diff the corpus against the index, embed only what is new.

`build` starts from nothing (keeping the embedding cache of the previous generation, so known text
is never re-embedded); `update` copies the current generation and applies the difference. Both
write a new generation and publish it atomically (see `generations.py`).
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..config import Settings
from ..embed.backends import make_embedder
from ..embed.base import Embedder, cache_key
from ..errors import IndexMissingError
from ..ingest.chunking import chunk_article, indexed_text, make_splitter
from ..ingest.corpus import ArticleError, CorpusFile, Skipped, read_article, scan_corpus
from ..text.analysis import analyze, dump_tokens, load_tokens
from ..text.sentences import sentence_text, split_sentences
from .catalog import SQLITE, Database, copy_database
from .dense.faiss_index import (
    FAISS,
    SENTENCES_FAISS,
    all_vectors,
    choose_index_type,
    index_kind,
    new_dense_index,
    read_dense,
    write_dense,
)
from .generations import (
    clean_abandoned,
    current_generation,
    discard,
    file_digests,
    new_workdir,
    publish,
    read_manifest,
    verify_files,
    write_manifest,
    writer_lock,
)
from .lexical.bm25s_index import BM25Index
from .manifest import check_compatible, expected_identity

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0  # found in the embedding cache
    sentences_embedded: int = 0  # sentence rows (answers and reranking) embedded now
    skipped: list[Skipped] = field(default_factory=list)
    articles: int = 0
    chunks: int = 0
    generation: str | None = None  # None: nothing changed, no new generation
    rebuilt: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("added", "changed", "removed"):
            data[f"{key}_articles"] = data[key]
            data[key] = len(data[key])
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data

    def summary(self) -> str:
        text = (
            f"{len(self.added)} ajouté(s), {len(self.changed)} modifié(s), "
            f"{len(self.removed)} supprimé(s), {self.unchanged} inchangé(s) ; "
            f"{self.chunks_embedded} passage(s) vectorisé(s), "
            f"{self.chunks_reused} repris du cache, {self.sentences_embedded} phrase(s) "
            "vectorisée(s) ; "
            f"index : {self.articles} article(s), {self.chunks} passage(s)"
        )
        if self.skipped:
            text += " ; ignorés : " + ", ".join(f"{s.source} ({s.reason})" for s in self.skipped)
        return text


def build(
    settings: Settings, embedder: EmbedderFactory | None = None, *, progress: bool | None = None,
    wait: float = 0.0,
) -> UpdateReport:
    """A new index from the whole corpus, swapped in atomically when complete."""
    with writer_lock(settings.index_dir, wait=wait):
        clean_abandoned(settings.index_dir)
        return _write(settings, embedder, progress, incremental=False)


def update(
    settings: Settings, embedder: EmbedderFactory | None = None, *, progress: bool | None = None,
    wait: float = 0.0,
) -> UpdateReport:
    """Apply corpus changes to the index (building it if there is none)."""
    with writer_lock(settings.index_dir, wait=wait):
        clean_abandoned(settings.index_dir)
        try:
            current_generation(settings.index_dir)
        except IndexMissingError:
            log.info("Pas encore d'index : construction complète.")
            return _write(settings, embedder, progress, incremental=False)
        return _write(settings, embedder, progress, incremental=True)


def _write(
    settings: Settings, embedder_factory: EmbedderFactory | None, progress: bool | None,
    *, incremental: bool,
) -> UpdateReport:
    t0 = time.perf_counter()
    report = UpdateReport(rebuilt=not incremental)
    files = scan_corpus(settings.corpus_dir)
    previous: Path | None = None
    try:
        previous = current_generation(settings.index_dir)
    except IndexMissingError:
        pass
    except Exception as exc:  # a corrupt index must not stop a full rebuild
        if incremental:
            raise
        log.warning("Index précédent ignoré : %s", exc)

    old_states: dict[str, tuple[str, int, int]] = {}
    if incremental:
        assert previous is not None
        manifest = read_manifest(previous)
        check_compatible(manifest, settings)
        verify_files(previous, manifest)  # never carry damaged files into the next generation
        old = Database(previous / SQLITE, readonly=True)
        old.check()
        old_states = old.article_states()
        old.close()

    todo, report.unchanged, report.removed = _diff(files, old_states)
    if incremental and not todo and not report.removed:
        report.articles, report.chunks = len(old_states), manifest["corpus"]["chunks"]
        report.seconds = time.perf_counter() - t0
        return report

    workdir = new_workdir(settings.index_dir)
    try:
        _fill(settings, embedder_factory, progress, workdir, previous, incremental, todo, report)
        if incremental and not (report.added or report.changed or report.removed):
            discard(workdir)  # only unreadable files to (re)index: the same index, kept as is
        else:
            report.generation = publish(settings.index_dir, workdir).name
    except BaseException:
        discard(workdir)
        raise
    report.seconds = time.perf_counter() - t0
    if report.generation:
        log.info("Génération %s publiée en %.1f s", report.generation, report.seconds)
    return report


def _diff(
    files: list[CorpusFile], old: dict[str, tuple[str, int, int]]
) -> tuple[list[tuple[CorpusFile, str | None]], int, list[str]]:
    """(files to (re)index with their old hash or None, unchanged count, removed sources)."""
    todo: list[tuple[CorpusFile, str | None]] = []
    unchanged = 0
    for f in files:
        state = old.get(f.source)
        if state is None:
            todo.append((f, None))
        elif (state[1], state[2]) == (f.size, f.mtime_ns):
            unchanged += 1
        else:
            try:
                sha = hashlib.sha256(f.path.read_bytes()).hexdigest()
            except OSError:
                sha = None
            if sha == state[0]:
                unchanged += 1
            else:
                todo.append((f, state[0]))
    present = {f.source for f in files}
    return todo, unchanged, sorted(s for s in old if s not in present)


def _fill(
    settings: Settings, embedder_factory: EmbedderFactory | None, progress: bool | None,
    workdir: Path, previous: Path | None, incremental: bool,
    todo: list[tuple[CorpusFile, str | None]], report: UpdateReport,
) -> None:
    identity = expected_identity(settings)
    db_path = workdir / SQLITE
    if incremental:
        assert previous is not None
        copy_database(previous / SQLITE, db_path)
        db = Database(db_path)
        dense = read_dense(previous / FAISS)
        sentence_dense = read_dense(previous / SENTENCES_FAISS)
    else:
        db = Database(db_path)
        if previous is not None:
            _import_cache(db, previous)
        dense = sentence_dense = None

    show = sys.stderr.isatty() if progress is None else progress
    removed = _Rows()
    for source in report.removed:
        removed.sentences += db.sentence_ids(source)
        removed.chunks += db.remove_article(source)

    splitter = make_splitter(settings)
    added = _Rows()
    items = todo
    if show:
        from tqdm import tqdm

        items = tqdm(todo, desc="Articles", unit="article", file=sys.stderr)
    for f, old_sha in items:
        try:
            article = read_article(f.path, f.source)
        except ArticleError as exc:
            log.warning("Article ignoré : %s (%s)", f.source, exc)
            report.skipped.append(Skipped(f.source, str(exc)))
            continue  # a changed article that became unreadable keeps its previous version
        if old_sha is not None:
            removed.sentences += db.sentence_ids(f.source)
            removed.chunks += db.remove_article(f.source)
            report.changed.append(f.source)
        else:
            report.added.append(f.source)
        chunks = chunk_article(article, splitter, min_chars=settings.chunk_min_chars)
        texts = [indexed_text(article.title, c.text) for c in chunks]
        tokens = [dump_tokens(analyze(t)) for t in texts]
        added.chunks += db.add_article(article, f.size, f.mtime_ns, chunks, tokens)
        added.chunk_texts += texts
        spans = split_sentences(article.text)
        added.sentences += db.add_sentences(article.source, spans)
        added.sentence_texts += [indexed_text(article.title, sentence_text(article.text, span))
                                 for span in spans]

    key = cache_key(identity["embedding"])
    texts = added.chunk_texts + added.sentence_texts
    vectors, fresh = _embed(db, key, texts, embedder_factory, settings, show)
    cut = len(added.chunk_texts)
    report.chunks_embedded = sum(fresh[:cut])
    report.chunks_reused = cut - report.chunks_embedded
    report.sentences_embedded = sum(fresh[cut:])
    dimension = vectors.shape[1] if len(vectors) else _dimension(previous, dense)

    ids, token_strings = db.all_tokens()
    dense = _updated_dense(dense, choose_index_type(settings.faiss_index, len(ids)), dimension,
                           removed.chunks, added.chunks, vectors[:cut])
    write_dense(dense, workdir / FAISS)
    n_sentences = db.sentence_count()
    sentence_dense = _updated_dense(
        sentence_dense, choose_index_type(settings.faiss_index, n_sentences), dimension,
        removed.sentences, added.sentences, vectors[cut:],
    )
    write_dense(sentence_dense, workdir / SENTENCES_FAISS)
    bm25 = BM25Index.build(ids, [load_tokens(t) for t in token_strings])
    (workdir / "bm25").mkdir()
    bm25.save(workdir / "bm25")

    db.commit()
    report.articles, report.chunks = db.counts()
    fingerprint = hashlib.sha256(
        "\n".join(f"{s}:{h}" for s, (h, _, _) in sorted(db.article_states().items())).encode()
    ).hexdigest()
    db.close()
    write_manifest(workdir, {
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "embedding": {**identity["embedding"], "dimension": dimension},
        "chunking": identity["chunking"],
        "analyzer": identity["analyzer"],
        "sentences": {**identity["sentences"], "count": n_sentences,
                      "faiss": index_kind(sentence_dense)},
        "faiss": {"type": index_kind(dense), "ntotal": int(dense.ntotal)},
        "corpus": {"articles": report.articles, "chunks": report.chunks,
                   "fingerprint": fingerprint},
        "files": file_digests(workdir),
    })


@dataclass
class _Rows:
    """Rows of one update: chunk and sentence ids (and, for added rows, their indexed texts)."""

    chunks: list[int] = field(default_factory=list)
    sentences: list[int] = field(default_factory=list)
    chunk_texts: list[str] = field(default_factory=list)
    sentence_texts: list[str] = field(default_factory=list)


def _embed(
    db: Database, key: str, texts: list[str], factory: EmbedderFactory | None,
    settings: Settings, progress: bool,
) -> tuple[np.ndarray, list[bool]]:
    """Vectors for `texts`, from the cache where known; only missing texts reach the model
    (once each). Returns the vectors and, per text, whether it was embedded now."""
    shas = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    cached = db.cached_vectors(key, shas)
    missing = list(dict.fromkeys(s for s in shas if s not in cached))
    if missing:
        embedder = (factory or (lambda: make_embedder(settings, batch=True)))()
        by_sha = dict(zip(shas, texts))
        vectors = embedder.embed_passages([by_sha[s] for s in missing], progress=progress)
        db.cache_vectors(key, zip(missing, vectors))
        cached.update(zip(missing, vectors))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32), []
    todo = set(missing)
    fresh = []
    for sha in shas:
        fresh.append(sha in todo)
        todo.discard(sha)  # a text repeated in the batch was embedded once
    return np.stack([cached[s] for s in shas]).astype(np.float32), fresh


def _dimension(previous: Path | None, dense: Any) -> int:
    if dense is not None:
        return int(dense.d)
    if previous is not None:
        return int(read_manifest(previous)["embedding"]["dimension"])
    return 0  # an empty corpus: any dimension will do


def _updated_dense(
    dense: Any, kind: str, dim: int, removed: list[int], new_ids: list[int], vectors: np.ndarray
) -> Any:
    """Apply removals and additions; rebuild when the index type must change (or is HNSW)."""
    ids_new = np.asarray(new_ids, dtype=np.int64)
    if dense is not None and index_kind(dense) == kind and kind != "hnsw":
        if removed:
            dense.remove_ids(np.asarray(removed, dtype=np.int64))
        if len(ids_new):
            dense.add_with_ids(vectors, ids_new)
        return dense
    # (Re)build from everything: the surviving vectors of the old index plus the new ones.
    all_ids, all_vecs = ids_new, vectors.reshape(len(ids_new), dim) if dim else vectors
    if dense is not None:
        old_ids, old_vecs = all_vectors(dense)
        keep = ~np.isin(old_ids, np.asarray(removed, dtype=np.int64))
        all_ids = np.concatenate([old_ids[keep], ids_new])
        all_vecs = np.concatenate([old_vecs[keep], vectors.reshape(len(ids_new), dim)])
    fresh = new_dense_index(kind, max(dim, 1), train=all_vecs if kind == "ivf" else None)
    if len(all_ids):
        fresh.add_with_ids(np.ascontiguousarray(all_vecs, dtype=np.float32), all_ids)
    return fresh


def _import_cache(db: Database, previous: Path) -> None:
    """Carry the previous generation's embedding cache into a full rebuild (best effort).

    Only from a SQLite file the manifest vouches for: damaged bytes could be wrong vectors.
    """
    old_sqlite = previous / SQLITE
    try:
        verify_files(previous, read_manifest(previous), only=SQLITE)
        db.conn.execute("ATTACH DATABASE ? AS old", (f"file:{old_sqlite}?mode=ro",))
        db.conn.execute("INSERT OR IGNORE INTO embedding_cache SELECT * FROM old.embedding_cache")
        db.conn.commit()
        db.conn.execute("DETACH DATABASE old")
    except Exception as exc:  # a damaged old index only costs re-embedding
        log.warning("Cache d'embeddings précédent inutilisable (%s)", exc)
