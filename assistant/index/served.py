"""Which generation readers serve, and where they read it from.

Local store: the generation `CURRENT` names in the index directory, with its SQLite catalog.
Qdrant (`ASSISTANT_STORE=qdrant`): the generation announced in Qdrant, read with its catalog from
Qdrant alone (`qdrant_catalog.py`), so a replica needs no index directory, only the Qdrant URL and
the model; an index never announced there (written by an older version) is read from the index
directory as before. A writer announces each generation it publishes after switching `CURRENT`;
one killed in between leaves replicas on the previous generation, and the next writer catches up.
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
    if settings.store == "qdrant":
        from .qdrant_catalog import published
        from .qdrant_connection import shared_connection

        conn = shared_connection(settings)
        found = published(conn, settings.qdrant_prefix)
        if found is not None:
            name, manifest = found
            if not isinstance(manifest.get("stores", {}).get("articles"), dict):
                raise IndexCorruptError(f"La génération {name} annoncée dans {conn.where} n'a "
                                        f"pas d'articles. {REBUILD_HINT}")
            return Served(name, manifest, conn.where, True)
    path = current_generation(settings.index_dir)
    return Served(path.name, read_manifest(path), str(settings.index_dir), False)


_polled: dict[tuple[Any, ...], tuple[float, str | None]] = {}
_polled_lock = threading.Lock()


def served_marker(settings: Settings) -> str | None:
    """A cheap token that changes when a new generation is published (for hot reload): the
    name in `CURRENT`, or on Qdrant the name announced (asked at most every `POLL_S`)."""
    if settings.store != "qdrant":
        return current_marker(settings.index_dir)
    from .qdrant_catalog import published_name
    from .qdrant_connection import shared_connection

    key = (settings.qdrant_url, settings.qdrant_path, settings.qdrant_prefix,
           str(settings.index_dir))
    now = time.monotonic()
    with _polled_lock:
        seen = _polled.get(key)
        if seen is not None and now - seen[0] < POLL_S:
            return seen[1]
    name = published_name(shared_connection(settings), settings.qdrant_prefix)
    marker = name if name is not None else current_marker(settings.index_dir)
    with _polled_lock:
        _polled[key] = (now, marker)
    return marker


def open_catalog(settings: Settings, generation: Served, chunks: Any,
                 sentences: Any) -> CatalogReader:
    """The catalog of `generation`: the SQLite file, or on Qdrant the articles' points (with
    the chunk and sentence stores `chunks` and `sentences`, whose payloads it reads)."""
    manifest = generation.manifest
    if not generation.remote:
        return Catalog(catalog_file(settings.index_dir, manifest), manifest["generation"])
    from .qdrant_catalog import QdrantArticles, QdrantCatalog

    articles = QdrantArticles.open_for(settings, manifest["stores"]["articles"])
    return QdrantCatalog(articles, chunks, sentences)


def announce(settings: Settings, name: str, manifest: dict[str, Any]) -> None:
    """Tell replicas that generation `name` is published (Qdrant indexes only)."""
    if manifest["stores"]["chunks"].get("backend") != "qdrant":
        return
    from .qdrant_catalog import announce as write
    from .qdrant_connection import shared_connection

    write(shared_connection(settings), settings.qdrant_prefix, name, manifest,
          settings.qdrant_replicas)
    with _polled_lock:
        _polled.clear()


def withdraw(settings: Settings) -> None:
    """Stop announcing a generation in Qdrant (the index left it: `export --to local`); its
    readers then fall back to the index directory, if they have one."""
    from .qdrant_catalog import withdraw as delete
    from .qdrant_connection import shared_connection

    delete(shared_connection(settings), settings.qdrant_prefix)
    with _polled_lock:
        _polled.clear()


def catch_up(settings: Settings, name: str | None, manifest: dict[str, Any] | None) -> None:
    """At the start of a writer that writes to Qdrant (`settings.store` or the index served
    locally, `name` / `manifest`, None if there is none): announce the local generation if
    Qdrant still names an older one (a writer was killed between switching `CURRENT` and
    announcing); refuse to write if Qdrant serves a NEWER generation than this index directory
    knows (another index directory publishes there: writing would mix the two)."""
    on_qdrant = manifest is not None and manifest["stores"]["chunks"].get("backend") == "qdrant"
    if not on_qdrant and settings.store != "qdrant":
        return
    from .qdrant_catalog import published
    from .qdrant_connection import shared_connection

    conn = shared_connection(settings)
    found = published(conn, settings.qdrant_prefix)
    mine = 0 if manifest is None else int(manifest["generation"])
    if found is not None and int(found[1].get("generation", 0)) > mine:
        raise IndexMismatchError(
            f"Qdrant ({conn.where}, préfixe « {settings.qdrant_prefix} ») sert la génération "
            f"{found[0]}, plus récente que celles de {settings.index_dir} : un autre dossier "
            "d'index y publie. Lancez les mises à jour depuis ce dossier-là, ou choisissez un "
            "autre ASSISTANT_QDRANT_PREFIX.")
    if manifest is None or name is None or not on_qdrant or found is not None and found[0] == name:
        return
    if isinstance(manifest["stores"].get("articles"), dict):  # written by this version
        announce(settings, name, manifest)
