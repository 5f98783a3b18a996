"""Copy the served index into another kind of store (`local`, `qdrant`, `postgres`), without
the model.

    assistant index export --to qdrant     # FAISS + BM25 files -> Qdrant collections
    assistant index export --to postgres   # ... -> PostgreSQL tables (pgvector)
    assistant index export --to local      # and back

Under the writer lock: the generation being served is opened as it is (catalog, and its three
stores at the states its manifest records), every chunk and sentence vector is read back by id
(`DenseStore.vectors`), the BM25 terms of each chunk are analysed again from the catalog's text
(exactly the text that was embedded: checked by its hash), and the payloads are those an index
build gives (`stores.Stores.describe`). New stores of the target backend receive them, are
saved under a new generation number, and a manifest equal to the source's but for
`generation`, `stores` and `built_at` is published; then, as after an update, what no kept
generation refers to is pruned (`stores.prune_unreferenced`). Nothing is embedded; the catalog
file is shared, unchanged. A failure before the publish leaves the source generation serving.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import REBUILD_HINT, ConfigError, IndexCorruptError, IndexMismatchError
from ..ingest.chunking import indexed_text
from ..records import Chunk
from ..text.analysis import analyze
from .catalog import Catalog, catalog_file, vec_key
from .dense.factory import ROLES, dense_backend
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
from .served import REMOTE, announce, catch_up, withdraw
from .stores import Stores, prune_unreferenced, store_lock, writer_settings

log = logging.getLogger(__name__)

#: `Settings.store` values, and the dense backend each writes.
TARGETS = {"local": "faiss", "qdrant": "qdrant", "postgres": "postgres"}
ARTICLES_PER_BATCH = 256  # articles whose rows are read and copied at once


@dataclass
class ExportReport:
    source: str  # "local", "qdrant" or "postgres": the store the served generation was in
    target: str  # the store it was copied into
    where: str  # the target's location (Qdrant or PostgreSQL, or the stores folder)
    from_generation: str  # generation copied
    generation: str = ""  # generation published
    articles: int = 0
    chunks: int = 0  # chunk vectors and BM25 documents copied
    sentences: int = 0  # sentence vectors copied
    texts_embedded: int = 0  # always 0: vectors are copied, never computed again
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (f"Index copié de « {self.source} » vers « {self.target} » ({self.where}) : "
                f"{self.articles} article(s), {self.chunks} passage(s), {self.sentences} "
                f"phrase(s), {self.texts_embedded} texte vectorisé ; génération "
                f"{self.generation} publiée en {self.seconds:.1f} s")


def export(settings: Settings, to: str, *, wait: float = 0.0) -> ExportReport:
    """Copy the served generation into the store `to` ("local", "qdrant" or "postgres") and
    publish it."""
    t0 = time.perf_counter()
    settings = writer_settings(settings)
    target = _target_settings(settings, to)
    with writer_lock(settings.index_dir, wait=wait), store_lock(target, wait), \
            store_lock(settings, wait):  # a PostgreSQL lock taken twice is held twice
        clean_abandoned(settings.index_dir)
        path = current_generation(settings.index_dir)
        previous = read_manifest(path)
        catch_up(settings, path.name, previous)
        source = _source_name(previous, to)
        catalog = Catalog(catalog_file(settings.index_dir, previous), previous["generation"],
                          writable=True)
        workdir = None
        try:
            catalog.check()
            catalog.recover()  # rows a killed writer left must not become visible to the copy
            origin = Stores.open(settings, previous["stores"])
            for role in ROLES:
                origin.dense(role).load()  # damage is refused before anything is written
            stores = Stores.open(target, None)
            report = ExportReport(source, to, _where(target, stores), path.name)
            _copy(catalog, origin, stores, previous, report)
            number = next_number(settings.index_dir)
            workdir = new_workdir(settings.index_dir)
            states = stores.save(number)
            manifest = {**previous, "generation": number, "stores": states,
                        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            write_manifest(workdir, manifest)
            report.generation = publish(settings.index_dir, workdir, number).name
            if to in REMOTE:
                announce(target, report.generation, manifest)
            if source in REMOTE:  # its replicas must not follow a generation about to be pruned
                withdraw(settings, source)
        except BaseException:
            if workdir is not None:
                discard(workdir)
            catalog.close()
            raise
        prune_unreferenced(target, catalog, stores)
    report.seconds = time.perf_counter() - t0
    log.info("Génération %s publiée (copie vers %s) en %.1f s", report.generation, to,
             report.seconds)
    return report


def _target_settings(settings: Settings, to: str) -> Settings:
    if to not in TARGETS:
        raise ConfigError(f"Stockage cible inconnu : {to!r} (local, qdrant ou postgres).")
    if to == "qdrant" and not (settings.qdrant_url or settings.qdrant_path):
        raise ConfigError(
            "Pour copier l'index dans Qdrant, donnez l'adresse du serveur "
            "(ASSISTANT_QDRANT_URL, et ASSISTANT_QDRANT_API_KEY s'il en demande une) ou un "
            "dossier pour le mode local (ASSISTANT_QDRANT_PATH).")
    if to == "postgres" and not settings.postgres_url:
        raise ConfigError(
            "Pour copier l'index dans PostgreSQL, donnez l'adresse de la base "
            "(ASSISTANT_POSTGRES_URL, postgresql://utilisateur:motdepasse@hôte:5432/base).")
    return settings.replace(store=to)


def _source_name(manifest: dict[str, Any], to: str) -> str:
    """The store the generation is in ("local", "qdrant" or "postgres"); an error if it is
    already `to`."""
    have = manifest["stores"]["chunks"].get("backend")
    source = {backend: name for name, backend in TARGETS.items()}.get(have)
    if source is None:
        raise IndexMismatchError(
            f"L'index est dans un stockage que l'export ne connaît pas (« {have} ») : "
            f"seuls local, qdrant et postgres sont copiés. {REBUILD_HINT}")
    if source == to:
        other = "local" if to != "local" else "qdrant` ou `--to postgres"
        raise ConfigError(
            f"L'index servi (génération {manifest['generation']}) est déjà dans le stockage "
            f"« {to} » : rien à copier. Pour l'autre sens : `assistant index export --to "
            f"{other}`.")
    return source


def _where(settings: Settings, stores: Stores) -> str:
    if dense_backend(settings) in REMOTE:
        return str(stores.chunks.describe().get("where", ""))
    return str(settings.index_dir / "stores")


def _copy(catalog: Catalog, origin: Stores, stores: Stores, manifest: dict[str, Any],
          report: ExportReport) -> None:
    """Every visible row of `catalog` from the `origin` stores into `stores` (not saved)."""
    sources = sorted(catalog.article_states())
    for start in range(0, len(sources), ARTICLES_PER_BATCH):
        part = sources[start:start + ARTICLES_PER_BATCH]
        chunk_spans = catalog.chunk_spans(part)
        sentence_spans = catalog.sentences_of(part)
        sentence_ids = [sid for rows in sentence_spans.values() for sid, _, _ in rows]
        chunk_ids: list[int] = []
        terms: list[list[str]] = []
        keys: list[bytes] = []
        for source in part:
            record = catalog.article_record(source)
            assert record is not None  # listed by the same catalog, at the same generation
            article_id, article = record
            text = article.text
            chunks = [Chunk(source, ordinal, text[a:b], a, b)
                      for ordinal, (_, a, b) in enumerate(chunk_spans[source])]
            ids = [cid for cid, _, _ in chunk_spans[source]]
            texts = [indexed_text(article.title, c.text) for c in chunks]
            chunk_ids += ids
            terms += [analyze(t) for t in texts]
            keys += [vec_key(t) for t in texts]
            stores.describe(article_id, article, chunks, ids,
                            [(a, b) for _, a, b in sentence_spans[source]],
                            [sid for sid, _, _ in sentence_spans[source]])
        found = catalog.rows_with_keys("chunks", keys)
        if len(found) != len(set(keys)):
            raise IndexCorruptError(
                f"{catalog.path} : le texte de {len(set(keys)) - len(found)} passage(s) ne "
                f"correspond plus à ce qui a été indexé. {REBUILD_HINT}")
        for role, ids in (("chunks", chunk_ids), ("sentences", sentence_ids)):
            array = np.asarray(ids, dtype=np.int64)
            try:
                vectors = origin.dense(role).vectors(array)
            except KeyError as exc:
                raise IndexCorruptError(
                    f"Vecteurs « {role} » manquants dans l'index servi ({exc}). "
                    f"{REBUILD_HINT}") from None
            stores.dense(role).add(array, vectors)
        stores.lexical.add(np.asarray(chunk_ids, dtype=np.int64), terms)
        report.articles += len(part)
        report.chunks += len(chunk_ids)
        report.sentences += len(sentence_ids)
    expected = (manifest["corpus"]["articles"], manifest["catalog"].get("chunks"),
                manifest["catalog"].get("sentences"))
    copied = (report.articles, report.chunks, report.sentences)
    if copied != expected or len(origin.lexical) != report.chunks:
        raise IndexCorruptError(
            f"Index incohérent : {copied[0]} articles, {copied[1]} passages, {copied[2]} "
            f"phrases lus ; le manifeste en annonce {expected[0]}, {expected[1]}, "
            f"{expected[2]}. {REBUILD_HINT}")
