"""The Qdrant connection: connecting, retries, errors, and the process's shared connections.

`connect(url=..., api_key=...)` for a server or cluster, `connect(path=...)` for qdrant-client's
local mode (in-process, same API; ":memory:" keeps nothing). Every call goes through
`QdrantConnection.call`: transient failures (connection refused or reset, timeouts, HTTP
408/429/5xx) are retried with exponential backoff, then raise one StoreUnavailableError, one line
in French naming the URL. Local mode is not thread-safe: its calls are serialised by a lock.
`shared_connection(settings)` makes one connection per process and place (local mode allows one
client per directory); `check_reachable` is the health check. The stores built on it:
`qdrant_generations.py`.
"""

from __future__ import annotations

import atexit
import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ConfigError, StoreUnavailableError

T = TypeVar("T")
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class QdrantConnection:
    """One QdrantClient, where it points (for messages) and the retry policy."""

    def __init__(self, client: Any, where: str, *, local: bool, attempts: int = 3,
                 backoff_s: float = 0.25, timeout_s: int = 10) -> None:
        self.client = client
        self.where = where
        self.local = local
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._lock = threading.RLock() if local else None

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)`, retried on transient failures; StoreUnavailableError after."""
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                if self._lock is None:
                    return fn(*args, **kwargs)
                with self._lock:
                    return fn(*args, **kwargs)
            except Exception as exc:
                kind = _failure(exc)
                if kind is None:
                    raise
                if kind == "auth" or attempt == self.attempts:
                    raise self.unavailable(kind, exc) from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def unavailable(self, kind: str, exc: BaseException) -> StoreUnavailableError:
        detail = " ".join(str(getattr(exc, "source", None) or exc).split())[:160]
        if kind == "slow":
            return StoreUnavailableError(
                f"Qdrant ne répond pas à temps à {self.where} (plus de {self.timeout_s} s, "
                f"{self.attempts} essais) : serveur surchargé ou injoignable, réessayez plus tard.")
        if kind == "auth":
            return StoreUnavailableError(
                f"Qdrant refuse l'accès à {self.where} ({detail}) : vérifiez "
                "ASSISTANT_QDRANT_API_KEY.")
        return StoreUnavailableError(
            f"Qdrant est injoignable à {self.where} ({detail or type(exc).__name__}) : vérifiez "
            "ASSISTANT_QDRANT_URL et que le serveur tourne, puis réessayez.")

    def close(self) -> None:
        self.client.close()


def _failure(exc: BaseException) -> str | None:
    """"slow", "auth" or "down" for the failures retry or explain, None for the others."""
    import httpx
    from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    source = exc.source if isinstance(exc, ResponseHandlingException) else exc
    if isinstance(source, (httpx.TimeoutException, TimeoutError)):
        return "slow"
    if isinstance(source, (httpx.TransportError, ConnectionError, ResourceExhaustedResponse)):
        return "down"
    if isinstance(exc, UnexpectedResponse):
        if exc.status_code in (401, 403):
            return "auth"
        if exc.status_code in TRANSIENT_STATUS:
            return "slow" if exc.status_code in (408, 504) else "down"
    return None


def _held(lock_path: str) -> bool:
    """Whether a client holds local mode's directory lock (asked before qdrant-client, whose
    failed attempt leaks the lock file's handle)."""
    import portalocker

    if not os.path.exists(lock_path):
        return False
    with open(lock_path, "r+") as f:
        try:
            portalocker.lock(f, portalocker.LockFlags.EXCLUSIVE
                             | portalocker.LockFlags.NON_BLOCKING)
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(f)
        return False


def connect(*, url: str | None = None, api_key: str | None = None, path: str | None = None,
            timeout_s: int = 10, attempts: int = 3, backoff_s: float = 0.25) -> QdrantConnection:
    """A checked connection to a Qdrant server (`url`, `api_key`) or to local mode (`path`, a
    directory or ":memory:"). Unreachable, refused or too slow -> StoreUnavailableError."""
    from qdrant_client import QdrantClient

    if (url is None) == (path is None):
        raise ConfigError("Qdrant : donnez soit ASSISTANT_QDRANT_URL, soit ASSISTANT_QDRANT_PATH.")
    if path is not None:
        if path != ":memory:" and _held(os.path.join(path, ".lock")):
            raise StoreUnavailableError(
                f"Le dossier Qdrant local {path} est déjà ouvert par un autre client ou "
                "processus : arrêtez-le, ou servez ce dossier avec un serveur Qdrant.")
        client = (QdrantClient(":memory:") if path == ":memory:" else
                  QdrantClient(path=path, force_disable_check_same_thread=True))
        return QdrantConnection(client, f"local:{path}", local=True, timeout_s=timeout_s)
    assert url is not None
    client = QdrantClient(url=url, api_key=api_key, timeout=timeout_s, check_compatibility=False)
    conn = QdrantConnection(client, url, local=False, attempts=attempts, backoff_s=backoff_s,
                            timeout_s=timeout_s)
    try:
        conn.call(client.get_collections)
    except Exception:
        conn.close()
        raise
    return conn


_SHARED: dict[tuple[Any, ...], QdrantConnection] = {}
_SHARED_LOCK = threading.Lock()


def shared_connection(settings: Any) -> QdrantConnection:
    """The process's connection for `settings` (qdrant_url + qdrant_api_key, or qdrant_path),
    made once: local mode allows one client per directory and process."""
    url, path = settings.qdrant_url, settings.qdrant_path
    key = (url, settings.qdrant_api_key, None if url else str(path), settings.qdrant_timeout)
    with _SHARED_LOCK:
        if not _SHARED:
            atexit.register(release_connections)  # closed before the interpreter tears down
        if key not in _SHARED:
            _SHARED[key] = connect(url=url, api_key=settings.qdrant_api_key,
                                   path=None if url else (str(path) if path else None),
                                   timeout_s=max(1, math.ceil(settings.qdrant_timeout)))
        return _SHARED[key]


def check_reachable(settings: Any) -> None:
    """StoreUnavailableError (one line naming the URL) unless the Qdrant of `settings` answers
    a cheap request now (for health checks: a replica whose Qdrant is down says so)."""
    conn = shared_connection(settings)
    conn.call(conn.client.get_collections)


def release_connections() -> None:
    """Close the shared connections (local mode then frees its directories)."""
    with _SHARED_LOCK:
        for conn in _SHARED.values():
            conn.close()
        _SHARED.clear()
