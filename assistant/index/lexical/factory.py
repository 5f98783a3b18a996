"""Open a lexical store by name: `bm25` (embedded default), `qdrant` or `postgres`, or
`module:Class` for a class of your own with an `open(settings, state)` classmethod (see
`dense/factory.py`)."""

from __future__ import annotations

import importlib
from typing import Any

from ...config import Settings
from ...errors import ConfigError
from .base import LexicalStore


def lexical_backend(settings: Settings) -> str:
    return {"local": "bm25"}.get(settings.store, settings.store)


def open_lexical(settings: Settings, state: dict[str, Any] | None) -> LexicalStore:
    """The lexical store of the chunks at `state` (None: a new one)."""
    name = state["backend"] if state else lexical_backend(settings)
    if name == "bm25":
        from .bm25 import BM25Store

        return BM25Store.open(settings.index_dir / "stores" / "lexical", state)
    if name == "qdrant":
        from .qdrant import QdrantLexicalStore

        return QdrantLexicalStore.open_for(settings, state)
    if name == "postgres":
        from .postgres import PostgresLexicalStore

        return PostgresLexicalStore.open_for(settings, state)
    if ":" in name:
        module, _, cls = name.partition(":")
        return getattr(importlib.import_module(module), cls).open(settings, state)  # type: ignore[no-any-return]
    raise ConfigError(
        f"Stockage lexical inconnu : {name!r} (bm25, qdrant, postgres ou module:Classe).")
