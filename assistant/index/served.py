"""Which generation readers serve, and where they read it from.

Local store: the generation `CURRENT` names in the index directory, with its SQLite catalog.
Qdrant (`ASSISTANT_STORE=qdrant`): the generation announced in Qdrant, read with its catalog from
Qdrant alone (`qdrant_catalog.py`), so a replica needs no index directory, only the Qdrant URL and
the model; an index never announced there (written by an older version) is read from the index
directory as before. PostgreSQL (`ASSISTANT_STORE=postgres`) the same way, from the database
(`postgres_catalog.py`; readers may go to a read replica, `ASSISTANT_POSTGRES_READ_URL`).
A writer announces each generation it publishes after switching `CURRENT`; one killed in
between leaves replicas on the previous generation, and the next writer catches up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from .catalog import Catalog, CatalogReader, catalog_file
from .generations import current_generation, current_marker, read_manifest

POLL_S = 1.0  # a replica asks Qdrant which generation is announced at most this often
REMOTE = ("qdrant", "postgres")  # the stores that announce generations to replicas


class _Remote:
    """Where a remote store announces its generations: the connection and the functions of
    `qdrant_catalog` or `postgres_catalog` (`announce`, `withdraw`, `published`...)."""

    def __init__(self, settings: Settings, backend: str, *, reader: bool = False) -> None:
        if backend == "qdrant":
            from . import qdrant_catalog as module
            from .qdrant_connection import shared_connection

            self.conn: Any = shared_connection(settings)
            self.prefix = settings.qdrant_prefix
            self.variable = "ASSISTANT_QDRANT_PREFIX"
        else:
            from . import postgres_catalog as module  # type: ignore[no-redef]
            from .postgres_connection import reader_connection
            from .postgres_connection import shared_connection as primary

            self.conn = reader_connection(settings) if reader else primary(settings)
            self.prefix = settings.postgres_prefix
            self.variable = "ASSISTANT_POSTGRES_PREFIX"
        self.module: Any = module
        self.name = "Qdrant" if backend == "qdrant" else "PostgreSQL"

    def published(self) -> tuple[str, dict[str, Any]] | None:
        return self.module.published(self.conn, self.prefix)  # type: ignore[no-any-return]

    def published_name(self) -> str | None:
        return self.module.published_name(self.conn, self.prefix)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Served:
    """The generation to serve: its name, its manifest, and whether it came from Qdrant."""

    name: str
    manifest: dict[str, Any]
    where: str  # the index directory, or the Qdrant it was announced in
    remote: bool


def served(settings: Settings) -> Served:
    """The generation readers of `settings` serve (IndexMissingError / IndexCorruptError with
    the command that fixes it otherwise)."""
    if settings.store in REMOTE:
        remote = _Remote(settings, settings.store, reader=True)
        found = remote.published()
        if found is not None:
            name, manifest = found
            if not isinstance(manifest.get("stores", {}).get("articles"), dict):
                raise IndexCorruptError(f"La génération {name} annoncée dans {remote.conn.where} "
                                        f"n'a pas d'articles. {REBUILD_HINT}")
            return Served(name, manifest, remote.conn.where, True)
    path = current_generation(settings.index_dir)
    return Served(path.name, read_manifest(path), str(settings.index_dir), False)


_polled: dict[tuple[Any, ...], tuple[float, str | None]] = {}
_polled_lock = threading.Lock()


def served_marker(settings: Settings) -> str | None:
    """A cheap token that changes when a new generation is published (for hot reload): the
    name in `CURRENT`, or on Qdrant or PostgreSQL the name announced (asked at most every
    `POLL_S`)."""
    if settings.store not in REMOTE:
        return current_marker(settings.index_dir)
    key = (settings.store, settings.qdrant_url, settings.qdrant_path, settings.qdrant_prefix,
           settings.postgres_url, settings.postgres_read_url, settings.postgres_prefix,
           str(settings.index_dir))
    now = time.monotonic()
    with _polled_lock:
        seen = _polled.get(key)
        if seen is not None and now - seen[0] < POLL_S:
            return seen[1]
    name = _Remote(settings, settings.store, reader=True).published_name()
    marker = name if name is not None else current_marker(settings.index_dir)
    with _polled_lock:
        _polled[key] = (now, marker)
    return marker


def open_catalog(settings: Settings, generation: Served, chunks: Any,
                 sentences: Any) -> CatalogReader:
    """The catalog of `generation`: the SQLite file, on PostgreSQL its tables, or on Qdrant the
    articles' points (with the chunk and sentence stores `chunks` and `sentences`, whose
    payloads it reads)."""
    manifest = generation.manifest
    if not generation.remote:
        return Catalog(catalog_file(settings.index_dir, manifest), manifest["generation"])
    if manifest["stores"]["articles"].get("backend") == "postgres":
        from .postgres_catalog import PostgresArticles, PostgresCatalog

        return PostgresCatalog(PostgresArticles.open_for(settings, manifest["stores"]["articles"]))
    from .qdrant_catalog import QdrantArticles, QdrantCatalog

    articles = QdrantArticles.open_for(settings, manifest["stores"]["articles"])
    return QdrantCatalog(articles, chunks, sentences)


def announce(settings: Settings, name: str, manifest: dict[str, Any]) -> None:
    """Tell replicas that generation `name` is published (Qdrant and PostgreSQL indexes)."""
    backend = manifest["stores"]["chunks"].get("backend")
    if backend not in REMOTE:
        return
    remote = _Remote(settings, backend)
    if backend == "qdrant":
        remote.module.announce(remote.conn, remote.prefix, name, manifest,
                               settings.qdrant_replicas)
    else:
        remote.module.announce(remote.conn, remote.prefix, name, manifest)
    with _polled_lock:
        _polled.clear()


def withdraw(settings: Settings, backend: str = "qdrant") -> None:
    """Stop announcing a generation in Qdrant or PostgreSQL (`backend`: the index left it,
    `export --to local`); its readers then fall back to the index directory, if they have
    one."""
    remote = _Remote(settings, backend)
    remote.module.withdraw(remote.conn, remote.prefix)
    with _polled_lock:
        _polled.clear()


def catch_up(settings: Settings, name: str | None, manifest: dict[str, Any] | None) -> None:
    """At the start of a writer that writes to Qdrant or PostgreSQL (`settings.store` or the
    index served locally, `name` / `manifest`, None if there is none): announce the local
    generation if the store still names an older one (a writer was killed between switching
    `CURRENT` and announcing); refuse to write if it serves a NEWER generation than this index
    directory knows (another index directory publishes there: writing would mix the two)."""
    have = None if manifest is None else manifest["stores"]["chunks"].get("backend")
    for backend in dict.fromkeys(b for b in (have, settings.store) if b in REMOTE):
        _catch_up(settings, backend, name, manifest, on_it=backend == have)


def _catch_up(settings: Settings, backend: str, name: str | None,
              manifest: dict[str, Any] | None, *, on_it: bool) -> None:
    remote = _Remote(settings, backend)
    found = remote.published()
    mine = 0 if manifest is None else int(manifest["generation"])
    if found is not None and int(found[1].get("generation", 0)) > mine:
        raise IndexMismatchError(
            f"{remote.name} ({remote.conn.where}, préfixe « {remote.prefix} ») sert la "
            f"génération {found[0]}, plus récente que celles de {settings.index_dir} : un autre "
            "dossier d'index y publie. Lancez les mises à jour depuis ce dossier-là, ou "
            f"choisissez un autre {remote.variable}.")
    if manifest is None or name is None or not on_it or found is not None and found[0] == name:
        return
    if isinstance(manifest["stores"].get("articles"), dict):  # written by this version
        announce(settings, name, manifest)
