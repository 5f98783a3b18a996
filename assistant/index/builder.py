"""Build and update the index: diff the corpus against the index, embed only what is new, write
only what changed.

An update opens the catalog and the stores at the generation being served, marks the rows of
removed or changed articles removed, adds the rows of new ones (their vectors read back from
the stores when the same text was embedded before), saves the stores' new segments and writes
a new generation's manifest, published atomically (`generations.py`). `build` does the same
from an empty catalog and empty stores, taking known vectors from the previous index when it
was built with the same model. Afterwards, what no kept generation refers to is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import __version__
from ..config import Settings
from ..embed.backends import make_embedder
from ..embed.base import Embedder
from ..errors import REBUILD_HINT, ArticleError, IndexMismatchError, IndexMissingError
from ..ingest.chunking import chunk_article, indexed_text, make_splitter
from ..ingest.corpus import CorpusFile, Skipped, read_article, scan_corpus
from ..text.analysis import analyze
from ..text.sentences import sentence_text, split_sentences
from .catalog import CATALOG_DIR, Catalog, catalog_file, vec_key
from .dense.base import DenseStore
from .dense.factory import ROLES, dense_backend, open_dense
from .generations import (
    clean_abandoned,
    current_generation,
    discard,
    new_workdir,
    next_number,
    publish,
    read_manifest,
    write_manifest,
    writer_lock,
)
from .manifest import check_compatible, expected_identity, only_rules_changed
from .served import announce, catch_up
from .stores import Stores, prune_unreferenced, store_lock, writer_settings

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]


@dataclass
class UpdateReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0  # vectors found again (same text embedded before)
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
    settings = writer_settings(settings)
    with writer_lock(settings.index_dir, wait=wait), store_lock(settings, wait):
        clean_abandoned(settings.index_dir)
        return _write(settings, embedder, progress, incremental=False)


def update(
    settings: Settings, embedder: EmbedderFactory | None = None, *, progress: bool | None = None,
    wait: float = 0.0,
) -> UpdateReport:
    """Apply corpus changes to the index (building it if there is none, or rebuilding it when
    an upgrade of this package changed its text rules: known vectors are reused)."""
    settings = writer_settings(settings)
    with writer_lock(settings.index_dir, wait=wait), store_lock(settings, wait):
        clean_abandoned(settings.index_dir)
        try:
            served = current_generation(settings.index_dir)
        except IndexMissingError:
            log.info("Pas encore d'index : construction complète.")
            return _write(settings, embedder, progress, incremental=False)
        if only_rules_changed(read_manifest(served), settings):
            log.warning("Index construit avec d'autres règles de découpage ou d'analyse (version "
                        "précédente) : reconstruction complète, vecteurs connus repris.")
            return _write(settings, embedder, progress, incremental=False)
        return _write(settings, embedder, progress, incremental=True)


@dataclass
class _Source:
    """Where known vectors can be read back: a catalog and the dense stores of its generation
    (role -> store; a damaged one is left out: its texts are embedded again)."""

    catalog: Catalog
    dense: dict[str, DenseStore]


def _write(
    settings: Settings, embedder_factory: EmbedderFactory | None, progress: bool | None,
    *, incremental: bool,
) -> UpdateReport:
    t0 = time.perf_counter()
    report = UpdateReport(rebuilt=not incremental)
    files = scan_corpus(settings.corpus_dir)
    previous: dict[str, Any] | None = None
    try:
        served = current_generation(settings.index_dir)
        previous = read_manifest(served)
        catch_up(settings, served.name, previous)
        if incremental:
            check_compatible(previous, settings)
            _check_backends(previous, settings)
    except IndexMissingError:
        pass
    except IndexMismatchError:
        raise
    except Exception as exc:  # a corrupt index must not stop a full rebuild
        if incremental:
            raise
        log.warning("Index précédent ignoré : %s", exc)
        previous = None
    if previous is None:
        catch_up(settings, None, None)  # on Qdrant: refused if another index publishes there

    if incremental:
        assert previous is not None
        catalog = Catalog(catalog_file(settings.index_dir, previous), previous["generation"],
                          writable=True)
        catalog.recover()
        old_states = catalog.article_states()
    else:
        catalog, old_states = None, {}
    todo, report.unchanged, report.removed, touched = _diff(files, old_states)
    if incremental and not todo and not report.removed:
        assert catalog is not None and previous is not None
        for source, size, mtime_ns in touched:
            catalog.touch_article(source, size, mtime_ns)
        catalog.commit()
        catalog.close()
        report.articles, report.chunks = len(old_states), int(previous["corpus"]["chunks"])
        report.seconds = time.perf_counter() - t0
        return report

    number = next_number(settings.index_dir)
    workdir = new_workdir(settings.index_dir)
    known: _Source | None
    try:
        if incremental:
            assert catalog is not None and previous is not None
            stores = Stores.open(settings, previous["stores"])
            known = _Source(catalog, {role: stores.dense(role) for role in ROLES})
        else:
            path = settings.index_dir / CATALOG_DIR / f"catalog-{number:06d}.sqlite"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a killed build's leftover of the same number
            catalog = Catalog(path, 0, writable=True, create=True)
            stores = Stores.open(settings, None)
            known = _previous_source(settings, previous)
        manifest = _fill(settings, embedder_factory, progress, catalog, stores, known, number,
                         todo, touched, report, previous if incremental else None, old_states)
        if incremental and not (report.added or report.changed or report.removed):
            discard(workdir)  # only unreadable files to (re)index: the same index, kept as is
            catalog.close()
        else:
            write_manifest(workdir, manifest)
            report.generation = publish(settings.index_dir, workdir, number).name
            announce(settings, report.generation, manifest)
            prune_unreferenced(settings, catalog, stores)
    except BaseException:
        discard(workdir)
        raise
    report.seconds = time.perf_counter() - t0
    if report.generation:
        log.info("Génération %s publiée en %.1f s", report.generation, report.seconds)
    return report


def _check_backends(manifest: dict[str, Any], settings: Settings) -> None:
    """An update writes with the backends that wrote the index; asking for others is an error
    naming the two ways out (readers simply follow the manifest)."""
    have = manifest["stores"]["chunks"].get("backend")
    want = dense_backend(settings)
    if have != want:
        raise IndexMismatchError(
            f"L'index a été écrit avec le stockage « {have} », le réglage demande « {want} » "
            f"(ASSISTANT_STORE={settings.store}). Copiez-le avec `assistant index export --to "
            f"{settings.store}`, ou : {REBUILD_HINT}")


def _diff(
    files: list[CorpusFile], old: dict[str, tuple[str, int, int]]
) -> tuple[list[tuple[CorpusFile, str | None]], int, list[str], list[tuple[str, int, int]]]:
    """(files to (re)index with their old hash or None, unchanged count, removed sources,
    files touched but identical as (source, size, mtime_ns))."""
    todo: list[tuple[CorpusFile, str | None]] = []
    touched: list[tuple[str, int, int]] = []
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
                touched.append((f.source, f.size, f.mtime_ns))
            else:
                todo.append((f, state[0]))
    present = {f.source for f in files}
    return todo, unchanged, sorted(s for s in old if s not in present), touched


@dataclass
class _Rows:
    """Rows of one update: ids removed, and ids added with the texts to embed for them."""

    removed: dict[str, list[int]] = field(
        default_factory=lambda: {"chunks": [], "sentences": []})
    ids: dict[str, list[int]] = field(default_factory=lambda: {"chunks": [], "sentences": []})
    texts: dict[str, list[str]] = field(
        default_factory=lambda: {"chunks": [], "sentences": []})
    terms: list[list[str]] = field(default_factory=list)


def _fill(
    settings: Settings, embedder_factory: EmbedderFactory | None, progress: bool | None,
    catalog: Catalog, stores: Stores, known: _Source | None, number: int,
    todo: list[tuple[CorpusFile, str | None]], touched: list[tuple[str, int, int]],
    report: UpdateReport, previous: dict[str, Any] | None,
    old_states: dict[str, tuple[str, int, int]],
) -> dict[str, Any]:
    """Write generation `number`'s rows and segments (on top of `previous`, the manifest of the
    generation served, for an update); its manifest."""
    show = sys.stderr.isatty() if progress is None else progress
    rows = _Rows()
    fingerprint = int(previous["corpus"]["fingerprint"], 16) if previous else 0
    for source in report.removed:
        _remove(catalog, stores, source, number, rows)
        fingerprint -= _article_hash(source, old_states[source][0])
    for source, size, mtime_ns in touched:
        catalog.touch_article(source, size, mtime_ns)

    splitter = make_splitter(settings)
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
            _remove(catalog, stores, f.source, number, rows)
            fingerprint -= _article_hash(f.source, old_sha)
            report.changed.append(f.source)
        else:
            report.added.append(f.source)
        chunks = chunk_article(article, splitter, min_chars=settings.chunk_min_chars)
        chunk_texts = [indexed_text(article.title, c.text) for c in chunks]
        spans = split_sentences(article.text)
        sentence_texts = [indexed_text(article.title, sentence_text(article.text, span))
                          for span in spans]
        article_id, chunk_ids, sentence_ids = catalog.add_article(
            article, f.size, f.mtime_ns, number, chunks, [vec_key(t) for t in chunk_texts],
            spans, [vec_key(t) for t in sentence_texts])
        stores.describe(article_id, article, chunks, chunk_ids, spans, sentence_ids)
        rows.ids["chunks"] += chunk_ids
        rows.ids["sentences"] += sentence_ids
        rows.texts["chunks"] += chunk_texts
        rows.texts["sentences"] += sentence_texts
        rows.terms += [analyze(t) for t in chunk_texts]
        fingerprint += _article_hash(article.source, article.sha256)

    vectors, fresh = _embed(settings, embedder_factory, known, rows.texts, show)
    report.chunks_embedded = sum(fresh["chunks"])
    report.chunks_reused = len(fresh["chunks"]) - report.chunks_embedded
    report.sentences_embedded = sum(fresh["sentences"])
    for role in ROLES:
        stores.dense(role).remove(np.asarray(rows.removed[role], dtype=np.int64))
        stores.dense(role).add(np.asarray(rows.ids[role], dtype=np.int64), vectors[role])
    stores.lexical.remove(np.asarray(rows.removed["chunks"], dtype=np.int64))
    stores.lexical.add(np.asarray(rows.ids["chunks"], dtype=np.int64), rows.terms)
    catalog.commit()  # rows of `number`: invisible until its manifest is published

    states = stores.save(number)
    for role in ROLES:
        log.debug("Génération %d, %s : %s", number, role, stores.dense(role).describe())
    log.debug("Génération %d, lexical : %s", number, stores.lexical.describe())
    catalog.generation = number
    if previous is None:
        counts = catalog.counts()
    else:  # the previous counts and the change: nothing scanned (the reader checks them)
        old = previous["catalog"]
        counts = {"articles": old["articles"] + len(report.added) - len(report.removed)}
        for role in ROLES:
            counts[role] = old[role] + len(rows.ids[role]) - len(rows.removed[role])
    report.articles, report.chunks = counts["articles"], counts["chunks"]
    identity = expected_identity(settings)
    dimension = stores.chunks.dimension or stores.sentences.dimension
    if not dimension and known is not None:
        dimension = max((store.dimension for store in known.dense.values()), default=0)
    return {
        "generation": number,
        "package_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "embedding": {**identity["embedding"], "dimension": dimension},
        "chunking": identity["chunking"],
        "analyzer": identity["analyzer"],
        "sentences": identity["sentences"],
        "catalog": {"file": catalog.path.name, **counts},
        "stores": states,
        "corpus": {"articles": counts["articles"], "chunks": counts["chunks"],
                   "fingerprint": f"{fingerprint % 2**256:064x}"},
    }


def _article_hash(source: str, sha256: str) -> int:
    """One article's share of the corpus fingerprint: the fingerprint is the sum (mod 2**256) of
    these over the articles, so an update adjusts it by the change alone, and any two indexes of
    the same files have the same one, however they were built."""
    return int.from_bytes(hashlib.sha256(f"{source}:{sha256}".encode()).digest(), "big")


def _remove(catalog: Catalog, stores: Stores, source: str, number: int,
            rows: _Rows) -> None:
    article_id, chunk_ids, sentence_ids = catalog.remove_article(source, number)
    stores.forget(article_id)
    rows.removed["chunks"] += chunk_ids
    rows.removed["sentences"] += sentence_ids


def _embed(
    settings: Settings, factory: EmbedderFactory | None, known: _Source | None,
    texts: dict[str, list[str]], progress: bool,
) -> tuple[dict[str, np.ndarray], dict[str, list[bool]]]:
    """Vectors of the texts of each role, read back from `known` where the same text was
    embedded before; only the others reach the model (once each, chunks and sentences in one
    batch). Returns the vectors and, per text, whether it was embedded now."""
    keys = {role: [vec_key(t) for t in texts[role]] for role in ROLES}
    found: dict[bytes, np.ndarray] = {}
    if known is not None:
        for role in ROLES:  # a sentence may equal a chunk: look in both
            for table in ROLES:
                wanted = [k for k in keys[role] if k not in found]
                if not wanted:
                    break
                if table not in known.dense:
                    continue
                ids = known.catalog.rows_with_keys(table, wanted)
                if ids:
                    got = known.dense[table].vectors(
                        np.fromiter(ids.values(), dtype=np.int64, count=len(ids)))
                    found.update(zip(ids.keys(), got))
    by_key = {k: t for role in ROLES for k, t in zip(keys[role], texts[role])}
    missing = [k for k in by_key if k not in found]
    if missing:
        embedder = (factory or (lambda: make_embedder(settings, batch=True)))()
        vectors = embedder.embed_passages([by_key[k] for k in missing], progress=progress)
        found.update(zip(missing, np.asarray(vectors, dtype=np.float32)))
    out, fresh = {}, {}
    todo = set(missing)
    dim = len(next(iter(found.values()))) if found else 0
    for role in ROLES:
        flags = []
        for k in keys[role]:
            flags.append(k in todo)
            todo.discard(k)  # a text repeated in the batch was embedded once
        fresh[role] = flags
        out[role] = (np.stack([found[k] for k in keys[role]]).astype(np.float32)
                     if keys[role] else np.zeros((0, dim), dtype=np.float32))
    return out, fresh


def _previous_source(settings: Settings, previous: dict[str, Any] | None) -> _Source | None:
    """The previous index as a source of known vectors for a full rebuild: only when built with
    the same model (and readable: a damaged store only costs re-embedding its texts)."""
    if previous is None:
        return None
    if previous.get("embedding", {}) != {**expected_identity(settings)["embedding"],
                                         "dimension": previous["embedding"].get("dimension")}:
        return None
    try:
        catalog = Catalog(catalog_file(settings.index_dir, previous), previous["generation"])
        catalog.check()
    except Exception as exc:  # noqa: BLE001 - best effort: re-embedding is the fallback
        log.warning("Catalogue de l'index précédent inutilisable (%s)", exc)
        return None
    dense = {}
    for role in ROLES:
        try:
            store = open_dense(settings, role, previous["stores"][role])
            store.load()  # damaged files show here
            dense[role] = store
        except Exception as exc:  # noqa: BLE001
            log.warning("Vecteurs « %s » de l'index précédent inutilisables (%s)", role, exc)
    return _Source(catalog, dense)
