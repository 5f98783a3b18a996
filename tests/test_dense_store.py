"""The FAISS dense store: segments on disk (base, deltas, tombstones), reopened equal to a numpy
brute force over the live vectors; readers of an older state; prune; compaction; corruption."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from assistant.index.dense import faiss as faiss_store
from assistant.index.dense import faiss_index
from assistant.index.dense.base import IdSet
from assistant.index.dense.faiss import FaissStore

DIM = 16
KINDS = ["flat", "ivf", "hnsw"]


def unit(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class Model:
    """What the store should hold: id -> vector, searched by brute force."""

    def __init__(self) -> None:
        self.rows: dict[int, np.ndarray] = {}

    def add(self, store: FaissStore, ids: np.ndarray, vectors: np.ndarray) -> None:
        store.add(ids, vectors)
        self.rows.update(zip(ids.tolist(), vectors))

    def remove(self, store: FaissStore, ids: np.ndarray) -> None:
        store.remove(ids)
        for i in ids.tolist():
            self.rows.pop(i, None)

    def top(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[int]:
        ids = np.array(sorted(self.rows), dtype=np.int64)
        if allowed is not None:
            ids = ids[np.isin(ids, allowed)]
        if not len(ids):
            return []
        scores = np.stack([self.rows[i] for i in ids.tolist()]).astype(np.float64) @ query
        return ids[np.argsort(-scores, kind="stable")[:k]].tolist()


def assert_matches(store: FaissStore, model: Model, *, queries: int = 8, k: int = 10,
                   allowed: np.ndarray | None = None, min_recall: float = 1.0) -> None:
    assert len(store) == len(model.rows)
    idset = None if allowed is None else IdSet(allowed)
    hits = total = 0
    for q in unit(queries, seed=999):
        got = store.search(q, k, idset).tolist()
        want = model.top(q, k, allowed)
        assert len(got) == len(want) and len(set(got)) == len(got)
        if min_recall == 1.0:
            assert got == want
        hits += len(set(got) & set(want))
        total += len(want)
    assert hits >= min_recall * total


def recall(kind: str) -> float:
    return 0.9 if kind == "hnsw" else 1.0  # HNSW is approximate; flat and small IVF are exact


def files(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in root.iterdir()}


def state_files(state: dict[str, Any]) -> set[str]:
    return {e["file"] for e in [state["base"], state["base_ids"], *state["deltas"],
                                state["tombstones"]] if e}


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_equals_brute_force(tmp_path: Path, kind: str) -> None:
    store, model = FaissStore.open(tmp_path / "d", None, index_type=kind), Model()
    model.add(store, np.arange(1, 301, dtype=np.int64) * 7, unit(300, 1))
    state = store.save(1)
    assert state["backend"] == "faiss" and state["kind"] == kind and state["count"] == 300
    assert state["dimension"] == DIM and state["deltas"] == [] and state["tombstones"] is None
    assert_matches(store, model, min_recall=recall(kind))
    reopened = FaissStore.open(tmp_path / "d", state, index_type=kind)
    assert reopened.describe()["kind"] == kind and reopened.dimension == DIM
    assert_matches(reopened, model, min_recall=recall(kind))
    for q in unit(5, 3):  # the same index, the same answers, approximate or not
        assert store.search(q, 10).tolist() == reopened.search(q, 10).tolist()


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_generations_of_adds_and_removes_reopen_equal(tmp_path: Path, kind: str) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None, index_type=kind)
    model.add(store, np.arange(1000, dtype=np.int64), unit(1000, 1))
    state = store.save(1)
    rng = np.random.default_rng(5)
    next_id = 1000
    for gen in range(2, 8):
        store = FaissStore.open(root, state, index_type=kind)
        if gen % 2:  # changed after a search (loaded) | before anything is loaded
            assert_matches(store, model)
        live = np.array(sorted(model.rows), dtype=np.int64)
        model.remove(store, rng.choice(live, size=6, replace=False))
        fresh = np.arange(next_id, next_id + 9, dtype=np.int64)
        next_id += 9
        model.add(store, fresh, unit(9, gen))
        model.remove(store, fresh[:2])  # added and removed before the save: never written
        model.remove(store, np.array([10**9], dtype=np.int64))  # unknown: ignored
        state = store.save(gen)
        delta = state["deltas"][-1]
        assert delta["file"] == f"delta-{gen}.npz" and delta["rows"] == 7
        assert state["tombstones"]["rows"] == 6 * (gen - 1)
        assert state["base"]["file"] == "base-1.faiss"  # under every compaction threshold
        assert_matches(store, model)
    reopened = FaissStore.open(root, state, index_type=kind)
    assert_matches(reopened, model)
    live = np.array(sorted(model.rows), dtype=np.int64)
    assert_matches(reopened, model, allowed=live[::3])


def test_reader_of_previous_state_keeps_working(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_store, "DELTA_MAX_RATIO", 0.0)  # every save compacts
    root, model = tmp_path / "d", Model()
    writer = FaissStore.open(root, None)
    model.add(writer, np.arange(200, dtype=np.int64), unit(200, 1))
    state_n = writer.save(1)
    reader = FaissStore.open(root, state_n)
    lazy = FaissStore.open(root, state_n)  # opened (files held), never searched before prune
    snapshot = Model()
    snapshot.rows = dict(model.rows)

    writer = FaissStore.open(root, state_n)
    model.remove(writer, np.arange(0, 100, dtype=np.int64))
    model.add(writer, np.arange(500, 550, dtype=np.int64), unit(50, 2))
    state_n1 = writer.save(2)
    assert state_n1["base"]["file"] == "base-2.faiss"
    assert_matches(reader, snapshot)  # the reader of N, loaded before
    assert_matches(FaissStore.open(root, state_n), snapshot)  # and one opened now, before prune
    assert_matches(FaissStore.open(root, state_n1), model)
    writer.prune([state_n1])
    assert_matches(reader, snapshot)  # in memory: still serving until it reloads
    assert_matches(lazy, snapshot)  # read now, from the files as they were opened
    with pytest.raises(IndexCorruptError, match="introuvable"):
        FaissStore.open(root, state_n)


def test_prune_keeps_listed_files_only(tmp_path: Path) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(500, dtype=np.int64), unit(500, 1))
    states = [store.save(1)]
    for gen in range(2, 5):
        model.add(store, np.array([1000 + gen], dtype=np.int64), unit(1, gen))
        model.remove(store, np.array([gen], dtype=np.int64))
        states.append(store.save(gen))
    (root / "delta-9.npz.tmp").write_bytes(b"half-written")  # a writer killed half-way
    (root / "base-9.faiss").write_bytes(b"unpublished")
    kept = states[2:]
    store.prune(kept)
    assert set(os.listdir(root)) == state_files(kept[0]) | state_files(kept[1])
    assert "delta-2.npz" in os.listdir(root)  # still listed by the kept states
    assert "tomb-2.npy" not in os.listdir(root)  # superseded by tomb-3 and tomb-4
    assert_matches(FaissStore.open(root, states[3]), model)
    with pytest.raises(IndexCorruptError):
        FaissStore.open(root, states[1])


def test_compaction_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(100, dtype=np.int64), unit(100, 1))
    assert store.save(1)["base"]["rows"] == 100
    model.add(store, np.arange(100, 110, dtype=np.int64), unit(10, 2))  # 10%: a delta
    state = store.save(2)
    assert state["base"]["file"] == "base-1.faiss" and len(state["deltas"]) == 1
    model.add(store, np.array([110], dtype=np.int64), unit(1, 3))  # 11 rows > 10%: compact
    state = store.save(3)
    assert state["base"] == {**state["base"], "file": "base-3.faiss", "rows": 111}
    assert state["deltas"] == [] and state["tombstones"] is None
    assert_matches(FaissStore.open(root, state), model)

    model.remove(store, np.arange(11, dtype=np.int64))  # 11 of 111 rows: tombstones
    state = store.save(4)
    assert state["tombstones"]["rows"] == 11 and state["base"]["file"] == "base-3.faiss"
    model.remove(store, np.array([50], dtype=np.int64))  # 12 > 11.1: compact
    state = store.save(5)
    assert state["base"]["file"] == "base-5.faiss" and state["base"]["rows"] == 99
    assert state["tombstones"] is None
    assert_matches(FaissStore.open(root, state), model)

    monkeypatch.setattr(faiss_store, "DELTA_MAX_RATIO", 1.0)
    monkeypatch.setattr(faiss_store, "DELTA_MAX_FILES", 3)
    for gen in range(6, 9):
        model.add(store, np.array([200 + gen], dtype=np.int64), unit(1, gen))
        state = store.save(gen)
    assert len(state["deltas"]) == 3
    model.add(store, np.array([300], dtype=np.int64), unit(1, 9))  # a 4th delta: merged
    state = store.save(9)
    assert state["base"]["file"] == "base-5.faiss" and state["tombstones"] is None
    assert state["deltas"] == [{**state["deltas"][0], "file": "delta-9.npz", "rows": 4}]
    assert_matches(FaissStore.open(root, state), model)


def test_auto_switches_flat_to_ivf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faiss_index, "FLAT_MAX", 300)
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(300, dtype=np.int64), unit(300, 1))
    state = store.save(1)
    assert state["kind"] == "flat"
    store = FaissStore.open(root, state)
    model.add(store, np.arange(300, 310, dtype=np.int64), unit(10, 2))
    state = store.save(2)
    assert state["kind"] == "ivf" and state["base"]["file"] == "base-2.faiss"
    assert store.describe()["kind"] == "ivf"
    assert_matches(FaissStore.open(root, state), model)
    model.remove(store, np.arange(20, dtype=np.int64))  # 290 > 300 * 0.9: stays IVF
    state = store.save(3)
    assert state["kind"] == "ivf" and state["tombstones"]["rows"] == 20
    model.remove(store, np.arange(20, 40, dtype=np.int64))  # 270: back to flat
    state = store.save(4)
    assert state["kind"] == "flat" and state["base"]["file"] == "base-4.faiss"
    assert_matches(FaissStore.open(root, state), model)
    # asking for another kind than the saved one rewrites the base, once
    store = FaissStore.open(root, state, index_type="hnsw")
    state = store.save(5)
    assert state["kind"] == "hnsw" and state["base"]["file"] == "base-5.faiss"
    assert_matches(FaissStore.open(root, state, index_type="hnsw"), model, min_recall=0.9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("exact_max", [4096, 5])  # scored exactly | searched with a selector
def test_allowed_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
                     exact_max: int) -> None:
    monkeypatch.setattr(faiss_store, "EXACT_MAX", exact_max)
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None, index_type=kind)
    model.add(store, np.arange(400, dtype=np.int64), unit(400, 1))
    store = FaissStore.open(root, store.save(1), index_type=kind)
    allowed = np.append(np.arange(0, 400, 2), 5000)  # half of the rows, and one unknown id
    assert_matches(store, model, allowed=allowed, k=5, min_recall=recall(kind))
    few = np.array([3, 17, 42, 99, 150, 151, 152, 230, 301, 399, 5000], dtype=np.int64)
    if kind != "hnsw" or exact_max > len(few):  # HNSW's graph walk may miss in a tiny filter
        assert_matches(store, model, allowed=few, k=50)  # k beyond the allowed: all of them
    idset = IdSet(allowed)
    store.search(unit(1, 7)[0], 3, idset)
    assert ("faiss" in idset.derived) == (exact_max < len(allowed))
    assert store.search(unit(1, 7)[0], 3, IdSet(np.zeros(0, dtype=np.int64))).tolist() == []


def test_vectors_by_id(tmp_path: Path) -> None:
    root = tmp_path / "d"
    store = FaissStore.open(root, None)
    base, extra = unit(200, 1), unit(5, 2)
    store.add(np.arange(200, dtype=np.int64), base)
    state = store.save(1)
    store = FaissStore.open(root, state)
    store.add(np.arange(900, 905, dtype=np.int64), extra)
    store = FaissStore.open(root, store.save(2))
    got = store.vectors(np.array([903, 7, 199, 900], dtype=np.int64))
    assert got.dtype == np.float32 and got.shape == (4, DIM)
    np.testing.assert_array_equal(got, np.stack([extra[3], base[7], base[199], extra[0]]))
    assert store.vectors(np.zeros(0, dtype=np.int64)).shape == (0, DIM)
    with pytest.raises(KeyError):
        store.vectors(np.array([12345], dtype=np.int64))


def test_replacing_and_readding_ids(tmp_path: Path) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(300, dtype=np.int64), unit(300, 1))
    state = store.save(1)
    store = FaissStore.open(root, state)
    model.remove(store, np.array([5], dtype=np.int64))
    model.add(store, np.array([5, 6], dtype=np.int64), unit(2, 2))  # re-add 5, replace 6
    assert len(store) == 300
    state = store.save(2)
    assert state["base"]["file"] == "base-2.faiss"  # a tombstone would hide the new copies
    reopened = FaissStore.open(root, state)
    np.testing.assert_array_equal(reopened.vectors(np.array([5, 6])), unit(2, 2))
    assert_matches(reopened, model)


def test_hnsw_is_rewritten_on_change(tmp_path: Path) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None, index_type="hnsw")
    model.add(store, np.arange(300, dtype=np.int64), unit(300, 1))
    state = store.save(1)
    store = FaissStore.open(root, state, index_type="hnsw")
    model.remove(store, np.arange(0, 300, 3, dtype=np.int64))
    model.add(store, np.array([1000], dtype=np.int64), unit(1, 2))
    state = store.save(2)
    assert state["base"]["file"] == "base-2.faiss" and not state["deltas"]
    assert state["tombstones"] is None and state["count"] == 201
    assert_matches(FaissStore.open(root, state, index_type="hnsw"), model, min_recall=0.9)


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


SEGMENTS = {"base": "base-1.faiss", "ids": "base-1.ids.npy", "delta": "delta-2.npz",
            "tomb": "tomb-2.npy"}


@pytest.mark.parametrize("segment", list(SEGMENTS))
@pytest.mark.parametrize("damage", [damage_flip, damage_truncate, Path.unlink])
def test_damaged_segment_is_refused(tmp_path: Path, segment: str, damage: Any) -> None:
    root = tmp_path / "d"
    store = FaissStore.open(root, None)
    store.add(np.arange(300, dtype=np.int64), unit(300, 1))
    store.save(1)
    store.add(np.array([400, 401], dtype=np.int64), unit(2, 2))
    store.remove(np.array([3], dtype=np.int64))
    state = store.save(2)
    damage(root / SEGMENTS[segment])
    with pytest.raises(IndexCorruptError) as info:
        if damage is damage_flip:  # same size: `open` (a stat) cannot tell, the first search
            reader = FaissStore.open(root, state)  # verifies every file's sha256
            assert len(reader) == 301 and reader.dimension == DIM
            reader.search(unit(1, 3)[0], 5)
        else:
            FaissStore.open(root, state)
    assert REBUILD_HINT in str(info.value)
    assert "introuvable" in str(info.value) or "endommagé" in str(info.value)


def test_bad_states_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "d"
    store = FaissStore.open(root, None)
    store.add(np.arange(10, dtype=np.int64), unit(10, 1))
    state = store.save(1)
    with pytest.raises(IndexMismatchError):
        FaissStore.open(root, {**state, "backend": "qdrant"})
    lying = FaissStore.open(root, {**state, "kind": "ivf"})  # the base is read on first need
    with pytest.raises(IndexCorruptError, match="ne correspond pas"):
        lying.search(unit(1, 2)[0], 3)
    with pytest.raises(IndexCorruptError, match="compte"):
        FaissStore.open(root, {**state, "count": 11})
    with pytest.raises(IndexCorruptError, match="invalide"):
        FaissStore.open(root, {**state, "base": {**state["base"], "file": "../x.faiss"}})
    with pytest.raises(IndexCorruptError, match="invalide"):
        FaissStore.open(root, {"backend": "faiss"})


def test_empty_store(tmp_path: Path) -> None:
    root = tmp_path / "d"
    store = FaissStore.open(root, None)
    assert root.is_dir() and len(store) == 0 and store.dimension == 0
    assert store.search(unit(1, 1)[0], 5).tolist() == []
    assert store.vectors(np.zeros(0, dtype=np.int64)).shape == (0, 0)
    store.remove(np.array([1, 2], dtype=np.int64))
    state = store.save(1)
    assert state["base"] is None and state["count"] == 0 and state["dimension"] == 0
    assert list(root.iterdir()) == []
    store = FaissStore.open(root, state)
    assert len(store) == 0 and store.describe()["count"] == 0
    store.add(np.array([1, 2], dtype=np.int64), unit(2, 1))  # an empty store can grow
    state = store.save(2)
    store = FaissStore.open(root, state)
    model = Model()
    model.rows = {1: unit(2, 1)[0], 2: unit(2, 1)[1]}
    assert_matches(store, model)
    store.remove(np.array([1, 2], dtype=np.int64))  # and empty again, dimension kept
    state = store.save(3)
    reopened = FaissStore.open(root, state)
    assert len(reopened) == 0 and reopened.dimension == DIM
    assert reopened.search(unit(1, 1)[0], 5).tolist() == []


def test_unchanged_save_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "d"
    store = FaissStore.open(root, None)
    store.add(np.arange(300, dtype=np.int64), unit(300, 1))
    store.save(1)
    store.add(np.array([500], dtype=np.int64), unit(1, 2))
    store.remove(np.array([4], dtype=np.int64))
    state = store.save(2)
    before = files(root)
    store = FaissStore.open(root, state)
    store.add(np.array([600], dtype=np.int64), unit(1, 3))
    store.remove(np.array([600], dtype=np.int64))  # a change undone in memory
    store.remove(np.array([4], dtype=np.int64))  # already removed
    again = store.save(3)
    assert files(root) == before
    assert state_files(again) == state_files(state) and again["generation"] == 3
    assert again["count"] == state["count"] == 300
    with pytest.raises(ValueError):
        store.save(3)  # generations strictly increase


def test_writer_failing_mid_save_leaves_state_usable(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(300, dtype=np.int64), unit(300, 1))
    state = store.save(1)
    writer = FaissStore.open(root, state)
    writer.add(np.array([900], dtype=np.int64), unit(1, 2))
    writer.remove(np.array([1], dtype=np.int64))

    def killed(src: Any, dst: Any) -> None:
        raise OSError("killed")

    monkeypatch.setattr(os, "replace", killed)  # where segments are renamed into place
    with pytest.raises(OSError):
        writer.save(2)
    monkeypatch.undo()
    assert (root / "delta-2.npz.tmp").exists()
    assert_matches(FaissStore.open(root, state), model)
    store.prune([state])
    assert set(os.listdir(root)) == {"base-1.faiss", "base-1.ids.npy"}


def test_threads_share_one_selector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setattr(faiss_store, "EXACT_MAX", 5)
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None, index_type="ivf")
    model.add(store, np.arange(600, dtype=np.int64), unit(600, 1))
    store = FaissStore.open(root, store.save(1), index_type="ivf")
    allowed = np.arange(0, 600, 3)
    idset, queries = IdSet(allowed), unit(64, 4)
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: store.search(q, 10, idset).tolist(), queries))
    assert got == [model.top(q, 10, allowed) for q in queries]
    selector = idset.derived["faiss"]
    store.search(queries[0], 10, idset)
    assert idset.derived["faiss"] is selector  # built once, reused


def test_writer_adds_without_reading_the_base(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(1000, dtype=np.int64), unit(1000, 1))
    state = store.save(1)
    base = root / state["base"]["file"]
    good = base.read_bytes()

    writer = FaissStore.open(root, state)  # the sizes checked: now the base turns unreadable
    base.write_bytes(bytes(len(good)))
    before = files(root)

    def no_base(*args: Any) -> Any:
        raise AssertionError("the base was read")

    monkeypatch.setattr(faiss_store, "read_index", no_base)
    model.add(writer, np.arange(5000, 5015, dtype=np.int64), unit(15, 2))
    assert len(writer) == 1015 and writer.dimension == DIM
    assert writer.describe()["kind"] == "flat"
    new = writer.save(2)
    after = files(root)
    assert set(after) - set(before) == {"delta-2.npz"}
    assert {n: t for n, t in after.items() if n in before} == before  # nothing else rewritten
    assert new["base"] == state["base"] and new["base_ids"] == state["base_ids"]
    assert new["deltas"] == [{**new["deltas"][0], "file": "delta-2.npz", "rows": 15}]
    assert new["tombstones"] is None and new["count"] == 1015
    model.remove(writer, np.array([7, 5003], dtype=np.int64))  # from base and from a delta
    model.add(writer, np.array([6000, 6001], dtype=np.int64), unit(2, 3))
    newer = writer.save(3)
    assert set(files(root)) - set(after) == {"delta-3.npz", "tomb-3.npy"}
    assert newer["tombstones"]["rows"] == 2 and newer["deltas"][-1]["rows"] == 2

    monkeypatch.undo()
    with pytest.raises(IndexCorruptError, match="endommagé"):  # a reader verifies it
        FaissStore.open(root, newer).search(unit(1, 3)[0], 5)
    base.write_bytes(good)
    assert_matches(FaissStore.open(root, newer), model)  # the segments the writer wrote


def test_concurrent_first_searches_load_once(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(500, dtype=np.int64), unit(500, 1))
    store.save(1)
    model.add(store, np.arange(600, 620, dtype=np.int64), unit(20, 2))
    model.remove(store, np.arange(10, dtype=np.int64))
    reader = FaissStore.open(root, store.save(2))
    reads, real = [], faiss_store.read_index

    def slow_read(*args: Any) -> Any:
        reads.append(threading.get_ident())
        time.sleep(0.2)  # the other threads arrive meanwhile
        return real(*args)

    monkeypatch.setattr(faiss_store, "read_index", slow_read)
    queries, start = unit(8, 4), threading.Barrier(8)

    def first_search(q: np.ndarray) -> list[int]:
        start.wait()
        return reader.search(q, 10).tolist()

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(first_search, queries))
    assert len(reads) == 1
    assert got == [model.top(q, 10) for q in queries]
    assert_matches(reader, model)


def test_state_without_base_ids_still_opens(tmp_path: Path) -> None:
    """A state written before the ids sidecar existed: its ids are read from the index."""
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None)
    model.add(store, np.arange(300, dtype=np.int64), unit(300, 1))
    store.save(1)
    model.remove(store, np.array([4], dtype=np.int64))
    state = store.save(2)
    old = {k: v for k, v in state.items() if k != "base_ids"}
    (root / state["base_ids"]["file"]).unlink()
    assert_matches(FaissStore.open(root, old), model)
    writer = FaissStore.open(root, old)
    model.remove(writer, np.array([5], dtype=np.int64))
    model.add(writer, np.array([4, 900], dtype=np.int64), unit(2, 2))
    state = writer.save(3)
    assert state["base_ids"]["file"] == "base-3.ids.npy"  # 4 was re-added: compacted
    assert_matches(FaissStore.open(root, state), model)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_small_saves_merge_deltas_without_touching_the_base(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """40 updates of 3 rows on a big base: the deltas are merged among themselves (their
    tombstones dropped with their rows), the base is never read by a writer nor rewritten, and
    readers of the state before a merge keep working until prune."""
    root, model = tmp_path / "d", Model()
    store = FaissStore.open(root, None, index_type=kind)
    model.add(store, np.arange(3000, dtype=np.int64), unit(3000, 1))
    first = store.save(1)
    base_files = {n: t for n, t in files(root).items() if n.startswith("base-")}
    forbidden, real_read = [True], faiss_store.read_index

    def guarded_read(*args: Any) -> Any:
        assert not forbidden[0], "a writer read the base"
        return real_read(*args)

    monkeypatch.setattr(faiss_store, "read_index", guarded_read)
    states, merges, base_removed = [first], 0, 0
    rng = np.random.default_rng(3)
    for gen in range(2, 42):
        previous = states[-1]
        will_merge = len(previous["deltas"]) == faiss_store.DELTA_MAX_FILES
        if will_merge:  # readers of the state before the merge: loaded, and lazy
            forbidden[0] = False
            snapshot = Model()
            snapshot.rows = dict(model.rows)
            loaded, lazy = FaissStore.open(root, previous), FaissStore.open(root, previous)
            loaded.load()
        writer = FaissStore.open(root, previous, index_type=kind)
        if gen % 12 == 6:  # a writer that searched first (loaded): the merge at 18 too
            forbidden[0] = False
            assert_matches(writer, model, queries=2)
        forbidden[0] = True
        fresh = np.arange(10_000 + 3 * gen, 10_003 + 3 * gen, dtype=np.int64)
        model.add(writer, fresh, unit(3, gen))
        if gen % 4 == 0:  # one row of a delta and one of the base
            in_deltas = sorted(i for i in model.rows if i >= 10_000 and i not in fresh)
            model.remove(writer, np.array([rng.choice(in_deltas), 5 * gen], dtype=np.int64))
            base_removed += 1
        state = writer.save(gen)
        forbidden[0] = False
        assert state["base"] == first["base"] and state["base_ids"] == first["base_ids"]
        assert 1 <= len(state["deltas"]) <= faiss_store.DELTA_MAX_FILES
        if will_merge:
            merges += 1
            assert state["deltas"] == [{**state["deltas"][0], "file": f"delta-{gen}.npz",
                                        "rows": sum(i >= 10_000 for i in model.rows)}]
            assert state["tombstones"]["rows"] == base_removed  # the deltas' ones dropped
            for reader in (loaded, lazy, FaissStore.open(root, previous)):
                assert_matches(reader, snapshot, queries=3)
        else:
            assert state["deltas"][:-1] == previous["deltas"]
        writer.prune([state, previous])
        states.append(state)
    assert merges == 2
    assert {n: t for n, t in files(root).items() if n.startswith("base-")} == base_files
    monkeypatch.undo()
    assert_matches(FaissStore.open(root, states[-1], index_type=kind), model)
    live = np.array(sorted(model.rows), dtype=np.int64)
    assert_matches(FaissStore.open(root, states[-1], index_type=kind), model, allowed=live[::5])
    with pytest.raises(IndexCorruptError, match="introuvable"):
        FaissStore.open(root, states[-3])  # pruned


@pytest.mark.parametrize("kind", KINDS)
def test_unloaded_vectors_read_only_what_is_asked(tmp_path: Path, kind: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer not loaded reads vectors back from the base (mapped), the deltas and its own
    adds, equal to a loaded store's, without the full load; tombstoned ids are refused."""
    root = tmp_path / "d"
    store = FaissStore.open(root, None, index_type=kind)
    store.add(np.arange(400, dtype=np.int64), unit(400, 1))
    store.save(1)
    store.add(np.arange(1000, 1010, dtype=np.int64), unit(10, 2))
    store.remove(np.array([3, 1004], dtype=np.int64))
    state = store.save(2)
    if kind != "hnsw":  # HNSW compacts on any change
        assert state["deltas"] and state["tombstones"]
    writer = FaissStore.open(root, state, index_type=kind)
    writer.add(np.array([2000, 2001, 9], dtype=np.int64), unit(3, 3))  # 9: a base id replaced
    writer.remove(np.array([2001], dtype=np.int64))
    loaded = FaissStore.open(root, state, index_type=kind)
    loaded.add(np.array([2000, 2001, 9], dtype=np.int64), unit(3, 3))
    loaded.remove(np.array([2001], dtype=np.int64))
    loaded.load()
    ids = np.array([2000, 1009, 0, 9, 399, 1000, 5, 1005], dtype=np.int64)

    def no_full_load(*args: Any) -> Any:
        raise AssertionError("the store was loaded")

    monkeypatch.setattr(FaissStore, "_load", no_full_load)
    monkeypatch.setattr(faiss_store, "read_index", no_full_load)
    got = writer.vectors(ids)
    assert got.dtype == np.float32 and got.shape == (len(ids), DIM)
    monkeypatch.undo()
    np.testing.assert_array_equal(got, loaded.vectors(ids))
    np.testing.assert_array_equal(got[[0, 3]], unit(3, 3)[[0, 2]])
    np.testing.assert_array_equal(got[1], unit(10, 2)[9])
    np.testing.assert_array_equal(got[2], unit(400, 1)[0])
    for gone in (3, 1004, 2001, 77777):
        with pytest.raises(KeyError):
            writer.vectors(np.array([0, gone], dtype=np.int64))
    assert not writer._loaded  # still lazy: the next save writes its adds as a delta
    state = writer.save(3)
    reopened = FaissStore.open(root, state, index_type=kind)
    np.testing.assert_array_equal(reopened.vectors(ids), got)
