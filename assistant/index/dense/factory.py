"""Open a dense store by name: `faiss` (embedded default), `qdrant` or `postgres`, or
`module:Class` for a class of your own that has the same `open(settings, role, state)`
classmethod.

The name comes from the state a manifest recorded (an index is read with the backend that wrote
it) or, for a new index, from `Settings.store`.
"""

from __future__ import annotations

import importlib
from typing import Any

from ...config import Settings
from ...errors import ConfigError
from .base import DenseStore

ROLES = ("chunks", "sentences")


#: The dense backend each `Settings.store` writes.
BACKENDS = {"local": "faiss", "qdrant": "qdrant", "postgres": "postgres"}


def dense_backend(settings: Settings) -> str:
    return BACKENDS[settings.store]


def open_dense(settings: Settings, role: str, state: dict[str, Any] | None) -> DenseStore:
    """The dense store of `role` ("chunks" or "sentences") at `state` (None: a new one)."""
    name = state["backend"] if state else dense_backend(settings)
    if name == "faiss":
        from .faiss import FaissStore

        return FaissStore.open(settings.index_dir / "stores" / role, state,
                               index_type=settings.faiss_index)
    if name == "qdrant":
        from .qdrant import QdrantDenseStore

        return QdrantDenseStore.open_for(settings, role, state)
    if name == "postgres":
        from .postgres import PostgresDenseStore

        return PostgresDenseStore.open_for(settings, role, state)
    if ":" in name:
        module, _, cls = name.partition(":")
        return getattr(importlib.import_module(module), cls).open(settings, role, state)  # type: ignore[no-any-return]
    raise ConfigError(
        f"Stockage vectoriel inconnu : {name!r} (faiss, qdrant, postgres ou module:Classe).")
