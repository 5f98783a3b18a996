"""The generation bookkeeping both Qdrant stores share: where a store lives
(`QdrantLocation`) and `GenerationalStore`, the base of the dense and lexical stores.
The connection it goes through: `qdrant_connection.py`.

Layout (a location is a connection, a collection prefix and a kind, "chunks" or "sentences"):
`<prefix><kind>_<G0>` is a physical collection, created by the first save of a build (G0 its
generation); the chunk one holds the named dense vector "dense" (cosine, dense store) and the
named sparse vector "bm25" (IDF modifier, lexical store) on the same points, point id = our id.
An update never copies a collection: each store stamps its points' payload with `<vector>_added`
(generation that added it) and `<vector>_removed` (generation that removed it, absent while
live); a store opened at a state of generation G sees the points with added <= G and no removed
<= G, checked on the payload of every hit (or by a payload filter, indexed on a server). Changes
are buffered and written by `save(G')`, so readers of G never see them. A point-without-vectors
marker (MARKER_ID) records `<vector>_writing`, the last generation a writer started: if it is
above the generation a writer opened, a writer was killed and `save` first removes what it left
(added > G dropped, removed > G reset); `<vector>_removals` lists the generations whose removed
points `prune` deletes once no kept state precedes them. `prune` also drops the physical
collections no kept state names (once no other store's marker key is left in them) and points
the alias `<prefix><kind>` at the newest kept one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import REBUILD_HINT, ConfigError, IndexCorruptError, IndexMismatchError
from .generations import GenerationNames, PendingRows
from .qdrant_connection import QdrantConnection, shared_connection

T = TypeVar("T")
FORMAT = 1
MARKER_ID = "00000000-0000-0000-0000-00000000a551"  # a UUID: never one of our integer ids
BATCH = 256  # points per write request


@dataclass(frozen=True)
class QdrantLocation(GenerationNames):
    """Where a store lives: a connection, a collection prefix, and the kind of ids it holds."""

    connection: QdrantConnection
    prefix: str = "assistant_"
    kind: str = "chunks"  # "chunks" (dense + lexical share it), "sentences" (dense only) or
    # "articles" (payload only: the catalog readers use, `qdrant_catalog.py`)
    shards: int | None = None  # shard_number of the collections it creates (None: server's)
    replicas: int | None = None  # their replication_factor (None: the server's default)

    def __post_init__(self) -> None:
        if self.kind not in ("chunks", "sentences", "articles") or not re.fullmatch(
                r"[A-Za-z0-9_-]*", self.prefix):
            raise ConfigError(f"Emplacement Qdrant invalide : {self.prefix!r}, {self.kind!r}")

    @classmethod
    def of(cls, settings: Any, kind: str) -> QdrantLocation:
        """The location of `kind` for `Settings` (qdrant_url / qdrant_path, qdrant_prefix,
        qdrant_shards / qdrant_replicas)."""
        return cls(shared_connection(settings), settings.qdrant_prefix, kind,
                   settings.qdrant_shards, settings.qdrant_replicas)



def lexical_config() -> dict[str, Any]:
    """The sparse vector of the lexical store: BM25 term parts, IDF applied by Qdrant."""
    from qdrant_client import models

    return {"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)}


def batched(items: list[T], size: int = BATCH) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class GenerationalStore(PendingRows):
    """What the Qdrant dense and lexical stores share: state, visibility, buffered removals,
    save's bookkeeping and prune (see the module docstring). Subclasses set `vector`."""

    name = "qdrant"
    vector = ""  # the named vector of the points (for a payload-only store: its flags' prefix)
    payload_only = False  # True: points without vectors (the articles of `qdrant_catalog.py`)

    def __init__(self, location: QdrantLocation, state: dict[str, Any] | None) -> None:
        self.location = location
        self.conn = location.connection
        state = dict(state or {})
        self._generation = int(state.get("generation", 0))
        self._collection: str | None = state.get("collection")
        self._count = int(state.get("count", 0))
        self._extra = state  # subclass fields (dimension, avgdl...)
        self._pending_add: dict[int, Any] = {}
        self._pending_remove: dict[int, dict[str, Any]] = {}  # id -> its saved payload
        self._pending_payload: dict[int, dict[str, Any]] = {}
        self.added_key, self.removed_key = f"{self.vector}_added", f"{self.vector}_removed"

    @classmethod
    def _checked(cls, location: QdrantLocation, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        if state.get("backend") != cls.name or state.get("format") != FORMAT or state.get(
                "vector") != cls.vector:
            raise IndexMismatchError(
                f"L'état d'index « {state.get('backend')} » ({state.get('vector')}, format "
                f"{state.get('format')}) n'est pas celui du magasin Qdrant {cls.vector}. "
                f"{REBUILD_HINT}")
        name = state.get("collection")
        if name is None:
            return
        if not location.owns(str(name)):
            raise IndexMismatchError(
                f"La collection Qdrant « {name} » n'est pas sous le préfixe "
                f"« {location.alias} » configuré. {REBUILD_HINT}")
        conn = location.connection
        if not conn.call(conn.client.collection_exists, name):
            raise IndexCorruptError(f"La collection Qdrant « {name} » manque sur {conn.where}. "
                                    f"{REBUILD_HINT}")

    def load(self) -> None:
        """Verify now that the collection holds what the state says (readers call it at start):
        the collection, this store's vector, and as many visible points as the state counted."""
        name = self._collection
        if name is None:
            return
        if not self._call("collection_exists", name):
            raise IndexCorruptError(f"La collection Qdrant « {name} » manque sur "
                                    f"{self.conn.where}. {REBUILD_HINT}")
        params = self._call("get_collection", name).config.params
        dense = params.vectors if isinstance(params.vectors, dict) else {}
        size = getattr(dense.get(self.vector), "size", None)
        if not self.payload_only and (
                self.vector not in {**dense, **(params.sparse_vectors or {})} or (
                    size is not None and size != self._extra.get("dimension", size))):
            raise IndexCorruptError(f"La collection Qdrant « {name} » n'a pas le vecteur "
                                    f"« {self.vector} » attendu. {REBUILD_HINT}")
        count = self._call("count", name, count_filter=self.visible_filter(), exact=True).count
        if count != self._count:
            raise IndexCorruptError(
                f"La collection Qdrant « {name} » montre {count} points à la génération "
                f"{self._generation}, l'état en attend {self._count}. {REBUILD_HINT}")

    # -- visibility ---------------------------------------------------------------------------

    def visible(self, payload: dict[str, Any] | None) -> bool:
        payload = payload or {}
        added, removed = payload.get(self.added_key), payload.get(self.removed_key)
        return (isinstance(added, int) and added <= self._generation
                and not (isinstance(removed, int) and removed <= self._generation))

    def visible_filter(self) -> Any:
        from qdrant_client import models

        return models.Filter(
            must=[models.FieldCondition(key=self.added_key,
                                        range=models.Range(lte=self._generation))],
            must_not=[models.FieldCondition(key=self.removed_key,
                                            range=models.Range(lte=self._generation))])

    def saved(self, ids: Iterable[int], payload: bool | list[str] = True,
              vectors: bool = False) -> dict[int, Any]:
        """The records of `ids` visible at the opened generation, by id."""
        wanted = [int(i) for i in ids]
        if self._collection is None or not wanted:
            return {}
        fields = True if payload is True else [*(payload or []), self.added_key,
                                               self.removed_key]
        out: dict[int, Any] = {}
        for part in batched(wanted, 1024):
            records = self.conn.call(self.conn.client.retrieve, self._collection, part,
                                     with_payload=fields,
                                     with_vectors=[self.vector] if vectors else False)
            out.update((int(r.id), r) for r in records if self.visible(r.payload))
        return out

    def query(self, query: Any, limit: int, allowed: Any | None, fields: list[str],
              with_vector: bool = False) -> list[Any]:
        """Hits of `query` on this store's vector that the opened generation sees, best first,
        at most `limit`. Asked without the generation filter first (cheap in local mode, where
        payload filters are evaluated point by point), checked on the hits' payload; if too many
        hits were invisible, asked again with the filter."""
        from qdrant_client import models

        if self._collection is None or limit <= 0:
            return []
        fields = [*fields, self.added_key, self.removed_key]
        vectors = [self.vector] if with_vector else False
        first = limit + 16
        hits = self.conn.call(self.conn.client.query_points, self._collection, query=query,
                              using=self.vector, limit=first, with_payload=fields,
                              with_vectors=vectors,
                              query_filter=None if allowed is None else models.Filter(
                                  must=[allowed]))
        seen = [h for h in hits.points if self.visible(h.payload)]
        if len(seen) >= limit or len(hits.points) < first:
            return seen[:limit]
        flt = self.visible_filter()
        if allowed is not None:
            flt.must.append(allowed)
        hits = self.conn.call(self.conn.client.query_points, self._collection, query=query,
                              using=self.vector, limit=limit, with_payload=fields,
                              with_vectors=vectors, query_filter=flt)
        return list(hits.points)

    def local_allowed(self, allowed: Any | None) -> list[Any] | None:
        """In local mode, the visible records of `allowed` with their vectors, for the caller to
        score: qdrant-client's local mode tests a HasIdCondition point by point, copying its id
        list each time (2.3 s at 100k points for 1,000 ids). None elsewhere: use the filter."""
        if allowed is None or not self.conn.local:
            return None
        return list(self.saved(allowed.ids.tolist(), payload=[], vectors=True).values())

    @staticmethod
    def allowed_condition(allowed: Any) -> Any:
        """The HasIdCondition of an IdSet, built once and kept in `allowed.derived`."""
        from qdrant_client import models

        with allowed.lock:
            if "qdrant" not in allowed.derived:
                allowed.derived["qdrant"] = models.HasIdCondition(
                    has_id=[int(i) for i in allowed.ids])
            return allowed.derived["qdrant"]

    # -- changes ------------------------------------------------------------------------------

    def any_saved(self, ids: list[int]) -> bool:
        return bool(self.saved(ids, payload=[]))

    def remove(self, ids: Any) -> None:
        rest = []
        for i in (int(x) for x in ids):
            if i in self._pending_add:
                del self._pending_add[i]
                self._pending_payload.pop(i, None)
            elif i not in self._pending_remove:
                rest.append(i)
        for i, record in self.saved(rest).items():
            self._pending_remove[i] = record.payload or {}

    def set_payload(self, ids: Any, payload: dict[str, Any]) -> None:
        """Extra payload (source, title, date...) for `ids`, written by the next `save`. Not
        versioned: readers of older generations see it too (set it on new ids)."""
        for i in ids:
            self._pending_payload.setdefault(int(i), {}).update(payload)

    # -- persistence --------------------------------------------------------------------------

    def collection_config(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(dense, sparse) vector configs of a collection this store creates."""
        raise NotImplementedError

    def point_vector(self, i: int) -> Any:
        raise NotImplementedError

    def point_payload(self, i: int) -> dict[str, Any]:
        return {}

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.conn.call(getattr(self.conn.client, method), *args, **kwargs)

    def _ensure_collection(self, name: str) -> None:
        from qdrant_client import models

        dense, sparse = self.collection_config()
        if not self._call("collection_exists", name):
            self._call("create_collection", name, vectors_config=dense,
                       sparse_vectors_config=sparse or None,
                       shard_number=self.location.shards,
                       replication_factor=self.location.replicas)
        else:
            params = self._call("get_collection", name).config.params
            have = dict(params.vectors or {}) if isinstance(params.vectors, dict) else {}
            for vec, cfg in dense.items():
                if vec not in have:
                    self._call("create_vector_name", name, vec, models.DenseVectorNameConfig(
                        dense=models.DenseVectorConfig(size=cfg.size, distance=cfg.distance)))
                elif have[vec].size != cfg.size:
                    raise IndexMismatchError(
                        f"La collection Qdrant « {name} » a des vecteurs de dimension "
                        f"{have[vec].size}, pas {cfg.size}. {REBUILD_HINT}")
            for vec, scfg in sparse.items():
                if vec not in (params.sparse_vectors or {}):
                    self._call("create_vector_name", name, vec,
                               models.SparseVectorNameConfig(sparse=scfg))
        if self.conn.local:  # local mode has no payload index (and warns when asked for one)
            return
        indexed = self._call("get_collection", name).payload_schema or {}
        for key, schema in self.payload_indexes().items():
            if key not in indexed:
                self._call("create_payload_index", name, key, field_schema=schema)

    def payload_indexes(self) -> dict[str, Any]:
        from qdrant_client import models

        indexes: dict[str, Any] = {self.added_key: models.PayloadSchemaType.INTEGER,
                                   self.removed_key: models.PayloadSchemaType.INTEGER}
        if self.location.kind == "chunks":  # filters by article and date on the server
            indexes.update(source=models.PayloadSchemaType.KEYWORD,
                           published=models.PayloadSchemaType.DATETIME)
        elif self.location.kind == "articles":  # a replica's lookups by article
            indexes.update(source=models.PayloadSchemaType.KEYWORD)
        return indexes

    def _marker(self, name: str) -> dict[str, Any]:
        records = self._call("retrieve", name, [MARKER_ID], with_payload=True)
        return dict(records[0].payload or {}) if records else {}

    def _set_marker(self, name: str, values: dict[str, Any]) -> None:
        from qdrant_client import models

        if self._call("retrieve", name, [MARKER_ID], with_payload=False):
            self._call("set_payload", name, values, points=[MARKER_ID])
        else:
            self._call("upsert", name, [models.PointStruct(id=MARKER_ID, vector={},
                                                           payload=values)])

    def scroll(self, name: str, flt: Any, payload: bool | list[str] = False) -> Iterable[Any]:
        """Every record matching `flt`. Local mode filters every point again for each page:
        one page there."""
        offset = None
        while True:
            records, offset = self._call("scroll", name, scroll_filter=flt, offset=offset,
                                         limit=1 << 30 if self.conn.local else 1024,
                                         with_payload=payload, with_vectors=False)
            yield from records
            if offset is None:
                return

    def _scroll_ids(self, name: str, flt: Any) -> list[int]:
        return [int(r.id) for r in self.scroll(name, flt) if not isinstance(r.id, str)]

    def _drop_own(self, name: str, ids: list[int]) -> None:
        """Take this store's vector and flags off `ids`; delete the points no store uses."""
        for part in batched(ids, 1024):
            records = self._call("retrieve", name, part, with_payload=True, with_vectors=False)
            others = [int(r.id) for r in records if any(
                k.endswith("_added") and k != self.added_key for k in (r.payload or {}))]
            alone = [int(r.id) for r in records if int(r.id) not in set(others)]
            if alone:
                self._call("delete", name, points_selector=alone)
            if others:
                self._call("delete_vectors", name, vectors=[self.vector], points=others)
                self._call("delete_payload", name, [self.added_key, self.removed_key],
                           points=others)

    def _clean_leftovers(self, name: str, above: int) -> None:
        """Undo what writers of generations > `above` wrote here and never published."""
        from qdrant_client import models

        added = self._scroll_ids(name, models.Filter(must=[models.FieldCondition(
            key=self.added_key, range=models.Range(gt=above))]))
        self._drop_own(name, added)
        removed = self._scroll_ids(name, models.Filter(must=[models.FieldCondition(
            key=self.removed_key, range=models.Range(gt=above))]))
        for part in batched(removed, 1024):
            self._call("delete_payload", name, [self.removed_key], points=part)

    def save(self, generation: int) -> dict[str, Any]:
        from qdrant_client import models

        if generation <= self._generation:
            raise ValueError(f"generation {generation} <= {self._generation}, already written")
        if not (self._pending_add or self._pending_remove or self._pending_payload):
            return self.state()
        name = self._collection or self.location.physical(generation)
        self._ensure_collection(name)
        marker = self._marker(name)
        if int(marker.get(f"{self.vector}_writing", 0)) > self._generation:
            self._clean_leftovers(name, self._generation)
        removals = [g for g in marker.get(f"{self.vector}_removals", []) if g <= self._generation]
        gone = [i for i in self._pending_remove if i not in self._pending_add]
        self._set_marker(name, {f"{self.vector}_writing": generation,
                                f"{self.vector}_removals": removals + ([generation] if gone
                                                                       else [])})
        self._write_added(name, generation)
        for part in batched(gone, 1024):
            self._call("set_payload", name, {self.removed_key: generation}, points=part)
        extra = [i for i in self._pending_payload if i not in self._pending_add]
        kept = [int(r.id) for part in batched(extra, 1024)
                for r in self._call("retrieve", name, part, with_payload=False)]
        if kept:
            self._call("batch_update_points", name, [models.SetPayloadOperation(
                set_payload=models.SetPayload(payload=self._pending_payload[i], points=[i]))
                for i in kept])
        self._count = len(self)
        self._generation, self._collection = generation, name
        self.saved_changes()
        self._pending_add, self._pending_remove, self._pending_payload = {}, {}, {}
        return self.state()

    def _write_added(self, name: str, generation: int) -> None:
        """Write the pending additions as points of `generation`, BATCH points a request. A
        point already there (the sibling store's, written by its save of this build, or one
        replaced) keeps the sibling's vector and payload. Local mode stores every point of every
        operation on its own (one SQLite commit each), so there the point is rewritten whole by
        one upsert (read back with its vectors): one write per point instead of three."""
        from qdrant_client import models

        local = self.conn.local
        for part in batched(sorted(self._pending_add)):
            there = {int(r.id): r for r in self._call("retrieve", name, part, with_payload=local,
                                                      with_vectors=local)}
            mine = {i: {self.added_key: generation, **self.point_payload(i),
                        **self._pending_payload.get(i, {})} for i in part}
            vectors = {i: {} if self.payload_only else {self.vector: self.point_vector(i)}
                       for i in part}
            new = [models.PointStruct(id=i, vector=vectors[i],
                                      payload={**mine[i], "role": self.location.kind[:-1]})
                   for i in part if i not in there]
            old = [i for i in part if i in there]
            if local:  # the whole point: its other vectors and payload, with this store's parts
                new += [models.PointStruct(
                    id=i, vector={**dict(there[i].vector or {}), **vectors[i]},
                    payload={**{k: v for k, v in (there[i].payload or {}).items()
                                if k != self.removed_key}, **mine[i]}) for i in old]
                old = []
            if new:
                self._call("upsert", name, new)
            if old:  # flags first, then vector
                ops: list[Any] = [models.SetPayloadOperation(set_payload=models.SetPayload(
                    payload=mine[i], points=[i])) for i in old]
                ops.append(models.DeletePayloadOperation(delete_payload=models.DeletePayload(
                    keys=[self.removed_key], points=list[Any](old))))
                if not self.payload_only:
                    ops.append(models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(
                        points=[models.PointVectors(id=i, vector=vectors[i]) for i in old])))
                self._call("batch_update_points", name, ops)

    def saved_changes(self) -> None:
        """Hook: fold what `save` just wrote into the subclass's state (before pending clears)."""

    def state(self) -> dict[str, Any]:
        return {"backend": self.name, "format": FORMAT, "vector": self.vector,
                "kind": self.location.kind, "collection": self._collection,
                "generation": self._generation, "count": self._count}

    def prune(self, keep: list[dict[str, Any]]) -> None:
        from qdrant_client import models

        gens: dict[str, list[int]] = {}
        for st in keep:
            if st and st.get("backend") == self.name and st.get("vector") == self.vector and \
                    st.get("collection"):
                gens.setdefault(str(st["collection"]), []).append(int(st["generation"]))
        if gens:  # the alias names the newest kept collection (for tools reading Qdrant)
            newest_name = max(gens, key=lambda n: max(gens[n]))
            aliases = {a.alias_name: a.collection_name
                       for a in self._call("get_aliases").aliases}
            if aliases.get(self.location.alias) != newest_name:
                self._call("update_collection_aliases", [
                    models.CreateAliasOperation(create_alias=models.CreateAlias(
                        collection_name=newest_name, alias_name=self.location.alias))])
        names = [c.name for c in self._call("get_collections").collections]
        for name in names:
            if not self.location.owns(name):
                continue
            marker = self._marker(name)
            if name not in gens:  # no kept state names it: leave it; dropped once no store uses it
                if any(k.endswith("_writing") and not k.startswith(self.vector + "_")
                       for k in marker):
                    self._call("delete_payload", name, [f"{self.vector}_writing",
                                                        f"{self.vector}_removals"],
                               points=[MARKER_ID])
                else:
                    self._call("delete_collection", name)
                continue
            oldest, newest = min(gens[name]), max(gens[name])
            if int(marker.get(f"{self.vector}_writing", 0)) > newest:
                self._clean_leftovers(name, newest)
            pending = marker.get(f"{self.vector}_removals", [])
            due = [g for g in pending if g <= oldest]
            if due:
                self._drop_own(name, self._scroll_ids(name, models.Filter(must=[
                    models.FieldCondition(key=self.removed_key, range=models.Range(lte=oldest))])))
            self._set_marker(name, {f"{self.vector}_writing": newest,
                                    f"{self.vector}_removals": [g for g in pending
                                                                if oldest < g <= newest]})

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "kind": self.location.kind, "where": self.conn.where,
                "collection": self._collection, "generation": self._generation,
                "count": len(self)}
