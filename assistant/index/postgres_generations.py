"""The generation bookkeeping the PostgreSQL stores share: where a store lives (`PgLocation`)
and `PgGenerational`, the base of the dense, lexical and article stores.

Layout: a store's rows live in the table `<prefix><kind>_<G0>` (kind "chunks" or "sentences":
vectors; "lexical": BM25 documents, with their postings in `..._postings`; "articles": the
catalog readers use, with `..._chunks` and `..._sentences`), created by the first save of a build
(G0 its generation: a rebuild starts new tables, since its row ids start again). An update never
copies a table: each row carries `added` (the generation that wrote it) and `removed` (the one
that removed it, NULL while live), and a store opened at generation G sees the rows with
`added <= G AND (removed IS NULL OR removed > G)` (`VISIBLE`).

`save(G')` writes the changes in ONE transaction: either all of a store's rows of G' are there
or none. Readers do not see them before the manifest naming G' is announced
(`postgres_catalog.announce`, one row, one commit). A writer killed before that leaves rows
above the published generation; the next `save` or `prune` deletes them (`added > G`) and
resets what they removed (`removed > G`) in the same transaction as its own writes. `prune`
deletes the rows no kept generation sees and drops the tables no kept state names.
The connection it goes through: `postgres_connection.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import REBUILD_HINT, ConfigError, IndexCorruptError, IndexMismatchError
from .generations import GenerationNames, PendingRows
from .postgres_connection import PostgresConnection, reader_connection, shared_connection

FORMAT = 1
VISIBLE = "{t}added <= %(g)s AND ({t}removed IS NULL OR {t}removed > %(g)s)"
KINDS = ("chunks", "sentences", "lexical", "articles")


def visible(alias: str = "") -> str:
    """The SQL condition of the rows generation %(g)s sees (`alias`: the table's, if any)."""
    return VISIBLE.format(t=f"{alias}." if alias else "")


@dataclass(frozen=True)
class PgLocation(GenerationNames):
    """Where a store lives: the primary (writes), the connection reads go through (a read
    replica, or the primary), a table prefix, and the kind of rows."""

    connection: PostgresConnection
    reader: PostgresConnection
    prefix: str = "assistant_"
    kind: str = "chunks"

    def __post_init__(self) -> None:
        if self.kind not in KINDS or not re.fullmatch(r"[a-z_][a-z0-9_]*", self.prefix):
            raise ConfigError(f"Emplacement PostgreSQL invalide : {self.prefix!r}, {self.kind!r}")

    @classmethod
    def of(cls, settings: Any, kind: str) -> PgLocation:
        return cls(shared_connection(settings), reader_connection(settings),
                   settings.postgres_prefix, kind)



def ids_param(ids: Iterable[int]) -> str:
    """Ids as a PostgreSQL bigint[] literal (one parameter, however many ids)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


class PgGenerational(PendingRows):
    """What the PostgreSQL stores share: state, visibility, pending changes, save and prune
    (see the module docstring). Subclasses create their tables and write their rows."""

    name = "postgres"
    children: tuple[str, ...] = ()  # suffixes of the tables hanging off the main one

    def __init__(self, location: PgLocation, state: dict[str, Any] | None) -> None:
        self.location = location
        self.conn = location.connection
        self.reader = location.reader
        state = dict(state or {})
        self._generation = int(state.get("generation", 0))
        self._table: str | None = state.get("table")
        self._count = int(state.get("count", 0))
        self._extra = state
        self._pending_add: dict[int, Any] = {}
        self._pending_remove: set[int] = set()

    @classmethod
    def checked(cls, location: PgLocation, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        if (state.get("backend"), state.get("format"), state.get("kind")) != (
                cls.name, FORMAT, location.kind):
            raise IndexMismatchError(
                f"L'état d'index « {state.get('backend')} » ({state.get('kind')}, format "
                f"{state.get('format')}) n'est pas celui du magasin PostgreSQL "
                f"{location.kind}. {REBUILD_HINT}")
        table = state.get("table")
        if table is not None and not location.owns(str(table)):
            raise IndexMismatchError(
                f"La table PostgreSQL « {table} » n'est pas sous le préfixe « {location.alias} » "
                f"configuré (ASSISTANT_POSTGRES_PREFIX). {REBUILD_HINT}")

    # -- reading ------------------------------------------------------------------------------
    @property
    def params(self) -> dict[str, Any]:
        return {"g": self._generation}

    def load(self) -> None:
        """Verify now that the table holds what the state says: readers call it at start."""
        if self._table is None:
            return
        if self.reader.rows("SELECT to_regclass(%s)", (self._table,))[0][0] is None:
            raise IndexCorruptError(f"La table PostgreSQL « {self._table} » manque sur "
                                    f"{self.reader.where}. {REBUILD_HINT}")
        count = self.reader.rows(f'SELECT count(*) FROM "{self._table}" WHERE {visible()}',
                                 self.params)[0][0]
        if count != self._count:
            raise IndexCorruptError(
                f"La table PostgreSQL « {self._table} » montre {count} lignes à la génération "
                f"{self._generation}, l'état en attend {self._count}. {REBUILD_HINT}")

    def saved_ids(self, ids: Iterable[int], columns: str = "id") -> list[Any]:
        """Rows (`columns`) of the saved `ids` visible at the opened generation, read from the
        primary (a writer's question)."""
        wanted = [int(i) for i in ids]
        if self._table is None or not wanted:
            return []
        return self.conn.rows(f'SELECT {columns} FROM "{self._table}" WHERE id = ANY(%(ids)s) '
                              f"AND {visible()}", {**self.params, "ids": ids_param(wanted)})

    # -- changes ------------------------------------------------------------------------------
    def any_saved(self, ids: list[int]) -> bool:
        return bool(self.saved_ids(ids))

    def remove(self, ids: Any) -> None:
        rest = []
        for i in (int(x) for x in ids):
            if i in self._pending_add:
                del self._pending_add[i]
            elif i not in self._pending_remove:
                rest.append(i)
        found = self.saved_ids(rest, self.remove_columns)
        self._pending_remove.update(int(r[0]) for r in found)
        self.removing(found)

    remove_columns = "id"

    def removing(self, rows: list[Any]) -> None:
        """Hook: the saved rows (`remove_columns`) about to be removed."""

    # -- persistence --------------------------------------------------------------------------
    def create_tables(self, tx: Any, table: str) -> None:
        raise NotImplementedError

    def write_added(self, tx: Any, table: str, generation: int) -> None:
        """Write the pending additions as rows of `generation`."""
        raise NotImplementedError

    def saved_changes(self, tx: Any, table: str) -> None:
        """Hook, in save's transaction once the rows are written (an index to build...)."""

    def tables(self, table: str) -> list[str]:
        return [f"{table}_{suffix}" for suffix in self.children] + [table]

    def clean_leftovers(self, tx: Any, table: str, above: int) -> None:
        """Undo what writers of generations > `above` wrote in `table` and never published."""
        tx.execute(f'DELETE FROM "{table}" WHERE added > %s', (above,))
        tx.execute(f'UPDATE "{table}" SET removed = NULL WHERE removed > %s', (above,))

    def save(self, generation: int) -> dict[str, Any]:
        if generation <= self._generation:
            raise ValueError(f"generation {generation} <= {self._generation}, already written")
        if not (self._pending_add or self._pending_remove):
            return self.state()
        table = self._table or self.location.physical(generation)
        with self.conn.transaction() as tx:
            unbounded(tx, self.conn.timeout_s)
            if self._table is None:  # a build: its own tables (a killed one's are replaced)
                tx.execute(f'DROP TABLE IF EXISTS {_names(self.tables(table))} CASCADE')
                self.create_tables(tx, table)
            else:
                self.clean_leftovers(tx, table, self._generation)
            self.write_added(tx, table, generation)
            if self._pending_remove:
                tx.execute(f'UPDATE "{table}" SET removed = %s WHERE id = ANY(%s) '
                           "AND removed IS NULL", (generation, ids_param(self._pending_remove)))
            self.saved_changes(tx, table)
        self._count = len(self)
        self._generation, self._table = generation, table
        self._pending_add, self._pending_remove = {}, set()
        return self.state()

    def state(self) -> dict[str, Any]:
        return {"backend": self.name, "format": FORMAT, "kind": self.location.kind,
                "table": self._table, "generation": self._generation, "count": self._count}

    def prune(self, keep: list[dict[str, Any]]) -> None:
        gens: dict[str, list[int]] = {}
        for st in keep:
            if st and st.get("backend") == self.name and st.get("kind") == self.location.kind \
                    and st.get("table"):
                gens.setdefault(str(st["table"]), []).append(int(st["generation"]))
        names = [r[0] for r in self.conn.rows(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        for name in filter(self.location.owns, names):
            with self.conn.transaction() as tx:
                unbounded(tx, self.conn.timeout_s)
                if name not in gens:
                    tx.execute(f"DROP TABLE IF EXISTS {_names(self.tables(name))} CASCADE")
                    continue
                self.clean_leftovers(tx, name, max(gens[name]))
                tx.execute(f'DELETE FROM "{name}" WHERE removed <= %s', (min(gens[name]),))

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "kind": self.location.kind, "where": self.conn.where,
                "table": self._table, "generation": self._generation, "count": len(self)}


def unbounded(tx: Any, lock_timeout_s: float) -> None:
    """A writer's transaction: no statement timeout (one COPY of a large build, or its HNSW
    index, takes minutes), but waiting for a lock stays bounded (`lock_timeout`)."""
    tx.execute("SET LOCAL statement_timeout = 0")
    tx.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_s * 1000)}")


def _names(tables: list[str]) -> str:
    return ", ".join(f'"{t}"' for t in tables)


def copy_rows(tx: Any, table: str, columns: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY `rows` into `table` (`columns`: its column list, SQL)."""
    with tx.cursor().copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
