"""The PostgreSQL connection: connecting, retries, errors, and the process's shared connections.

Every statement goes through `PostgresConnection` (`rows`, `transaction`): a small pool of
psycopg 3 connections (autocommit) to one libpq URL, opened as needed, at most POOL_SIZE at once
(more threads wait for one), each checked for the `vector` extension (pgvector) when opened. A
lost connection is opened again and the statement retried; what still fails becomes one
StoreUnavailableError, one line in French naming the server without its password (`where`):
down, bad credentials, too slow (`statement_timeout`), or the extension missing (the message
gives the SQL to run). `shared_connection(settings)` makes one pool per process and URL;
`reader_connection` the one readers use (`ASSISTANT_POSTGRES_READ_URL`, a read replica, else the
same). The stores built on it: `postgres_generations.py`.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import ConfigError, StoreUnavailableError, missing_extra

EXTENSION_SQL = "CREATE EXTENSION vector;"
POOL_SIZE = 8  # connections a process opens to one server, at most (more threads wait)


def public_url(url: str) -> str:
    """`url` without its password (for messages and logs): user@host:port/dbname."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - an unparsable URL: say so without echoing it
        return "postgresql://(adresse illisible)"
    user = f"{info['user']}@" if info.get("user") else ""
    host = str(info.get("host") or "localhost")
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{host}{port}/{info.get('dbname') or ''}"


class PostgresConnection:
    """One psycopg connection (autocommit), opened again when lost; `where` names the server."""

    def __init__(self, url: str, *, timeout_s: float = 10.0, attempts: int = 3,
                 backoff_s: float = 0.25, check_extension: bool = True,
                 session: dict[str, str] | None = None) -> None:
        self.url = url
        self.session = dict(session or {})  # settings of every session (`SET name = value`)
        self.where = public_url(url)
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self.check_extension = check_extension
        self._idle: list[Any] = []  # open connections no thread is using
        self._free = threading.BoundedSemaphore(POOL_SIZE)  # connections that may be lent
        self._lock = threading.Lock()  # guards _idle and _epoch
        self._epoch = 0  # bumped by close(): connections lent before are closed when returned

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise missing_extra("postgres", "psycopg") from None
        ms = int(self.timeout_s * 1000)
        options = " ".join(f"-c {k}={v}" for k, v in
                           {"statement_timeout": str(ms), **self.session}.items())
        try:
            conn = psycopg.connect(self.url, autocommit=True,
                                   connect_timeout=max(1, math.ceil(self.timeout_s)),
                                   application_name=f"assistant-{os.getpid()}", options=options)
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None
        except ValueError as exc:  # a malformed URL
            raise ConfigError(f"ASSISTANT_POSTGRES_URL invalide ({exc}) : attendu "
                              "postgresql://utilisateur:motdepasse@hôte:5432/base.") from None
        try:
            if self.check_extension:
                self._ensure_extension(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _ensure_extension(self, conn: Any) -> None:
        import psycopg

        have = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        if have:
            return
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
                return  # created by another process meanwhile
            reason = " ".join(str(exc).split())[:120]
            raise StoreUnavailableError(
                f"L'extension pgvector (« vector ») manque dans la base {self.where} ({reason}) "
                f": un administrateur doit y lancer `{EXTENSION_SQL}`, puis réessayez.") from None

    @contextlib.contextmanager
    def _lent(self) -> Iterator[Any]:
        """A connection of the pool for the block (an idle one, or a new one), given back
        after it, or closed if it broke."""
        if not self._free.acquire(timeout=max(self.timeout_s, 1.0)):
            raise StoreUnavailableError(
                f"PostgreSQL ne répond pas à temps à {self.where} : les {POOL_SIZE} connexions "
                "de ce processus sont toutes occupées, réessayez plus tard.")
        conn = None
        try:
            with self._lock:
                epoch = self._epoch
                while self._idle and conn is None:
                    conn = self._idle.pop()
                    if conn.closed or conn.broken:
                        conn = None
            if conn is None:
                conn = self._open()
            yield conn
        finally:
            if conn is not None:
                with self._lock:
                    if epoch == self._epoch and not (conn.closed or conn.broken):
                        self._idle.append(conn)
                        conn = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._free.release()

    # -- statements ---------------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None, *,
             binary: bool = False) -> list[Any]:
        """The rows of one statement (none for a statement without a result), retried once the
        connection is lost; outside `transaction` it commits at once. `binary`: values in
        PostgreSQL's binary format (`bytea` as is, not as hexadecimal text)."""
        return self._retried(lambda conn: _fetch(conn.execute(sql, params, binary=binary)))

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> None:
        self.rows(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction on one connection of the pool, the thread's for the block: the
        psycopg connection, whose statements commit together when the block ends, or not at
        all."""
        import psycopg

        with self._lent() as conn:
            try:
                with conn.transaction():
                    yield conn
            except psycopg.Error as exc:
                raise self.translate(exc) from None

    @contextlib.contextmanager
    def dedicated(self) -> Iterator[PostgresConnection]:
        """A connection of its own, outside the pool, for the block (what must stay on one
        session, as an advisory lock): closed after it, which ends what the session held."""
        own = PostgresConnection(self.url, timeout_s=self.timeout_s, attempts=1,
                                 check_extension=False, session=self.session)
        try:
            yield own
        finally:
            own.close()

    def _retried(self, work: Any) -> Any:
        import psycopg

        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                with self._lent() as conn:
                    return work(conn)
            except psycopg.OperationalError as exc:
                if _kind(exc) != "down" or attempt == self.attempts:
                    raise self.unavailable(exc) from None
                self._drop_idle()  # the server went away: the idle ones are gone too
                time.sleep(delay)
                delay *= 2
            except psycopg.Error as exc:
                raise self.translate(exc) from None
        raise AssertionError("unreachable")

    def translate(self, exc: Exception) -> Exception:
        """A psycopg error as the StoreUnavailableError it means, or itself (a bug of ours)."""
        import psycopg

        if isinstance(exc, psycopg.OperationalError) or _kind(exc) is not None:
            return self.unavailable(exc)
        return exc

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        kind = _kind(exc)
        detail = " ".join(str(exc).replace(self.url, self.where).split())[:160]
        if kind == "slow":
            return StoreUnavailableError(
                f"PostgreSQL ne répond pas à temps à {self.where} (plus de {self.timeout_s:g} s) "
                ": serveur surchargé ou requête trop longue, réessayez plus tard.")
        if kind == "auth":
            return StoreUnavailableError(
                f"PostgreSQL refuse l'accès à {self.where} : vérifiez l'utilisateur et le mot de "
                "passe de ASSISTANT_POSTGRES_URL.")
        if kind == "readonly":
            return StoreUnavailableError(
                f"PostgreSQL à {self.where} n'accepte que des lectures (réplique) : les écritures "
                "vont à ASSISTANT_POSTGRES_URL, le serveur principal.")
        return StoreUnavailableError(
            f"PostgreSQL est injoignable à {self.where} ({detail or type(exc).__name__}) : "
            "vérifiez ASSISTANT_POSTGRES_URL et que le serveur tourne, puis réessayez.")

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        """Close every connection: the idle ones now, those in use when given back."""
        with self._lock:
            self._epoch += 1
        self._drop_idle()


def _fetch(cur: Any) -> list[Any]:
    return list(cur.fetchall()) if cur.description is not None else []


def _kind(exc: BaseException) -> str | None:
    """"slow", "auth", "readonly" or "down" for the failures explained, None for the others."""
    import psycopg
    from psycopg import errors

    if isinstance(exc, (errors.QueryCanceled, errors.LockNotAvailable)):
        return "slow"
    if isinstance(exc, (errors.InvalidPassword, errors.InvalidAuthorizationSpecification)):
        return "auth"
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        return "readonly"
    text = str(exc).lower()
    if "password authentication failed" in text or "authentication failed" in text:
        return "auth"
    if "timeout expired" in text:
        return "slow"
    if isinstance(exc, psycopg.OperationalError):
        return "down"
    return None


_SHARED: dict[tuple[Any, ...], PostgresConnection] = {}
_SHARED_LOCK = threading.Lock()


def _shared(url: str, settings: Any) -> PostgresConnection:
    # HNSW searches: candidates looked at, and more of them when a filter drops some
    session = {"hnsw.ef_search": str(settings.postgres_hnsw_ef_search),
               "hnsw.iterative_scan": "relaxed_order"}
    key = (url, settings.postgres_timeout, *session.values())
    with _SHARED_LOCK:
        if not _SHARED:
            atexit.register(release_connections)
        conn = _SHARED.get(key)
        if conn is None:
            conn = _SHARED[key] = PostgresConnection(url, timeout_s=settings.postgres_timeout,
                                                     session=session)
    return conn


def shared_connection(settings: Any) -> PostgresConnection:
    """The process's connection to the primary (`postgres_url`): writers, and readers without
    a read URL. Opened at the first statement."""
    if not settings.postgres_url:
        raise ConfigError("PostgreSQL : indiquez ASSISTANT_POSTGRES_URL "
                          "(postgresql://utilisateur:motdepasse@hôte:5432/base).")
    return _shared(settings.postgres_url, settings)


def reader_connection(settings: Any) -> PostgresConnection:
    """The connection readers use: `postgres_read_url` (a read replica) when set."""
    if settings.postgres_read_url:
        return _shared(settings.postgres_read_url, settings)
    return shared_connection(settings)


def check_reachable(settings: Any) -> None:
    """StoreUnavailableError (one line naming the server) unless PostgreSQL answers now."""
    reader_connection(settings).rows("SELECT 1")


@contextlib.contextmanager
def advisory_lock(conn: PostgresConnection, prefix: str, wait: float = 0.0) -> Iterator[None]:
    """The writers' lock of the tables under `prefix`: a session advisory lock, freed when this
    process ends however it ends. Held elsewhere past `wait` seconds: IndexLockedError naming
    the holder (its pid, from its application_name)."""
    key = f"assistant:{prefix}"
    deadline = time.monotonic() + wait
    with conn.dedicated() as own:  # the lock is its session's: held until the block ends
        while not own.rows("SELECT pg_try_advisory_lock(hashtext(%s))", (key,))[0][0]:
            if time.monotonic() >= deadline:
                _refuse(own, key)
            time.sleep(0.2)
        yield


def _refuse(conn: PostgresConnection, key: str) -> None:
    from ..errors import IndexLockedError

    holder = conn.rows(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.objid = hashtext(%s)::oid", (key,))
    pid = str(holder[0][0]).removeprefix("assistant-") if holder else "?"
    raise IndexLockedError(
        f"Une autre construction de l'index est en cours (pid {pid}, sur "
        f"{conn.where}). Attendez qu'elle se termine, puis relancez la commande.")


def release_connections() -> None:
    """Close the shared pools' connections (they open again at their next statement)."""
    with _SHARED_LOCK:
        for conn in _SHARED.values():
            conn.close()
