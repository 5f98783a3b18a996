"""The Qdrant stores (assistant/index/{dense,lexical}/qdrant.py) in qdrant-client's local mode:
the DenseStore / LexicalStore contracts, generations (a reader of N never sees N+1), a writer
killed at every step, prune, filters, BM25 against a brute-force Lucene BM25, and the errors
when the server is unreachable or slow."""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from assistant.errors import IndexCorruptError, IndexMismatchError, StoreUnavailableError
from assistant.index.dense.base import IdSet
from assistant.index.dense.qdrant import QdrantDenseStore
from assistant.index.lexical.base import idf
from assistant.index.lexical.qdrant import K1, B, QdrantLexicalStore
from assistant.index.qdrant_connection import QdrantConnection, connect
from assistant.index.qdrant_generations import QdrantLocation

D = 16
WORDS = [f"mot{i}" for i in range(60)]
# "server" runs the code paths meant for a Qdrant server (payload indexes, HasIdCondition and
# count filters) on the local engine, which only warns that it has no payload index
pytestmark = pytest.mark.filterwarnings("ignore:Payload indexes have no effect:UserWarning")


def make_conn(mode: str) -> QdrantConnection:
    if mode == "local":
        return connect(path=":memory:")
    from qdrant_client import QdrantClient

    return QdrantConnection(QdrantClient(":memory:"), "http://memory", local=False)


@pytest.fixture(params=["local", "server"])
def conn(request: pytest.FixtureRequest) -> Any:
    c = make_conn(request.param)
    yield c
    c.close()


def unit(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, D)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def docs(ids: list[int], seed: int) -> dict[int, list[str]]:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)  # a Zipf-like vocabulary: common and rare words
    return {i: list(rng.choice(WORDS, size=int(rng.integers(3, 30)), p=weights / weights.sum()))
            for i in ids}


def brute_dense(vectors: dict[int, np.ndarray], q: np.ndarray, k: int) -> list[int]:
    ids = sorted(vectors)
    scores = np.stack([vectors[i] for i in ids]) @ q
    return [ids[j] for j in np.argsort(-scores, kind="stable")[:k]]


def brute_bm25(live: dict[int, list[str]], query: list[str], avgdl: float | None = None
               ) -> dict[int, float]:
    """Lucene BM25 (bm25s's default) over `live`, avgdl the live average unless given."""
    n = len(live)
    avg = avgdl or sum(len(d) for d in live.values()) / n
    df = Counter(t for d in live.values() for t in set(d))
    out = {}
    for i, d in live.items():
        tf = Counter(d)
        out[i] = sum(times * math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                     * tf[t] / (tf[t] + K1 * (1 - B + B * len(d) / avg))
                     for t, times in Counter(query).items() if tf[t])
    return out


def check_dense(store: QdrantDenseStore, expect: dict[int, np.ndarray]) -> None:
    assert len(store) == len(expect)
    for seed in range(3):
        q = unit(1, 100 + seed)[0]
        assert store.search(q, 5).tolist() == brute_dense(expect, q, 5)
    some = sorted(expect)[:7]
    np.testing.assert_allclose(store.vectors(np.array(some)), np.stack([expect[i] for i in some]),
                               atol=1e-6)


def check_lexical(store: QdrantLexicalStore, expect: dict[int, list[str]], avgdl: float) -> None:
    assert len(store) == len(expect)
    for query in (["mot0", "mot7"], ["mot3", "mot3", "mot41"], ["mot55", "absent"]):
        truth = brute_bm25(expect, query, avgdl)
        ids, scores = store.search(query, 8)
        best = sorted((s, -i) for i, s in truth.items() if s > 0)[::-1][:8]
        np.testing.assert_allclose(scores, [s for s, _ in best], rtol=1e-5)
        assert set(ids.tolist()) <= {i for i, s in truth.items() if s > 0}
        probe = np.array(sorted(expect)[:10] + [999_999])
        np.testing.assert_allclose(store.score(query, probe),
                                   [truth.get(int(i), 0.0) for i in probe], rtol=1e-5, atol=1e-7)
    for term in ("mot0", "mot30", "absent"):
        assert store.document_frequency(term) == sum(term in d for d in expect.values())


def test_dense_save_reopen_at_state(tmp_path: Any) -> None:
    path = str(tmp_path / "q")
    c = connect(path=path)
    vecs = dict(zip(range(1, 51), unit(50, 0)))
    store = QdrantDenseStore.open(QdrantLocation(c, "t_", "sentences"), None)
    assert store.dimension == 0 and len(store) == 0
    store.add(np.arange(1, 51), np.stack(list(vecs.values())))
    check_dense(store, vecs)  # pending changes are searched before save
    state = store.save(1)
    assert state["backend"] == "qdrant" and state["count"] == 50 and state["dimension"] == D
    assert store.save(2) == state  # nothing changed: nothing written, same state
    c.close()
    c = connect(path=path)  # a new process: only the state is known
    again = QdrantDenseStore.open(QdrantLocation(c, "t_", "sentences"), state)
    check_dense(again, vecs)
    assert again.describe()["count"] == 50
    with pytest.raises(ValueError):
        again.add(np.array([3]), unit(1, 9))  # already stored
    with pytest.raises(KeyError):
        again.vectors(np.array([77]))
    c.close()


def test_reader_of_n_never_sees_n_plus_1(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "t_", "chunks")
    v1 = dict(zip(range(1, 41), unit(40, 1)))
    d1 = docs(list(range(1, 41)), 1)
    dense, lex = QdrantDenseStore.open(loc, None), QdrantLexicalStore.open(loc, None)
    dense.add(np.array(list(v1)), np.stack(list(v1.values())))
    lex.add(np.array(list(d1)), list(d1.values()))
    s1, l1 = dense.save(1), lex.save(1)
    assert s1["collection"] == l1["collection"] == "t_chunks_1"  # one collection, two vectors
    avgdl = l1["avgdl"]
    assert avgdl == pytest.approx(sum(len(d) for d in d1.values()) / 40)
    reader, lreader = QdrantDenseStore.open(loc, s1), QdrantLexicalStore.open(loc, l1)
    check_lexical(lreader, d1, avgdl)  # first build: exactly bm25s / Lucene BM25

    writer, lwriter = QdrantDenseStore.open(loc, s1), QdrantLexicalStore.open(loc, l1)
    gone, new = [2, 3, 5, 8], list(range(41, 49))
    v2 = {**{i: v for i, v in v1.items() if i not in gone}, **dict(zip(new, unit(8, 2)))}
    d2 = {**{i: d for i, d in d1.items() if i not in gone}, **docs(new, 2)}
    for store in (writer, lwriter):
        store.remove(np.array(gone + [12345]))  # unknown ids are ignored
    writer.add(np.array(new), np.stack([v2[i] for i in new]))
    lwriter.add(np.array(new), [d2[i] for i in new])
    check_dense(writer, v2)
    check_lexical(lwriter, d2, avgdl)  # pending changes count in N, df and the scores
    s2, l2 = writer.save(2), lwriter.save(2)
    check_dense(reader, v1)  # the reader of 1 still sees 1, removed vectors included
    check_lexical(lreader, d1, avgdl)
    check_dense(QdrantDenseStore.open(loc, s2), v2)
    fresh = QdrantLexicalStore.open(loc, l2)
    check_lexical(fresh, d2, avgdl)  # avgdl stays the one frozen by the first save
    drift = brute_bm25(d2, ["mot0", "mot7"])
    frozen = brute_bm25(d2, ["mot0", "mot7"], avgdl)
    assert max(abs(drift[i] - frozen[i]) for i in d2) < 0.05 * max(drift.values())
    assert fresh.describe()["avgdl_now"] == pytest.approx(
        sum(len(d) for d in d2.values()) / len(d2))
    assert idf(fresh, "mot0") == pytest.approx(
        math.log(1 + (len(d2) - fresh.document_frequency("mot0") + 0.5)
                 / (fresh.document_frequency("mot0") + 0.5)))


def test_qdrant_idf_is_lucene_idf(conn: QdrantConnection) -> None:
    """Qdrant's own ranking (Modifier.IDF) gives Lucene BM25 when no other generation's points
    are in the collection: measured equal to 1e-6 relative."""
    from qdrant_client import models

    from assistant.index.lexical.qdrant import term_index

    loc = QdrantLocation(conn, "i_", "chunks")
    d = docs(list(range(1, 61)), 5)
    store = QdrantLexicalStore.open(loc, None)
    store.add(np.array(list(d)), list(d.values()))
    state = store.save(1)
    query = ["mot1", "mot9", "mot33"]
    hits = conn.client.query_points(state["collection"], using="bm25", limit=60, query=(
        models.SparseVector(indices=[term_index(t) for t in query], values=[1.0] * 3))).points
    truth = brute_bm25(d, query)
    for h in hits:
        assert h.score == pytest.approx(truth[int(h.id)], rel=1e-5)
    assert len(hits) == sum(s > 0 for s in truth.values())


def _run_writer(loc: QdrantLocation, s1: dict[str, Any], l1: dict[str, Any], gone: list[int],
                vecs: dict[int, np.ndarray], terms: dict[int, list[str]]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    dense, lex = QdrantDenseStore.open(loc, s1), QdrantLexicalStore.open(loc, l1)
    dense.remove(np.array(gone))
    lex.remove(np.array(gone))
    dense.add(np.array(list(vecs)), np.stack(list(vecs.values())))
    lex.add(np.array(list(terms)), list(terms.values()))
    dense.set_payload(list(vecs), {"source": "b.md"})
    return dense.save(2), lex.save(2)


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the stores catches it."""


class Dying:
    """The client, dying at its `n`th call (reads and writes alike)."""

    def __init__(self, client: Any, n: int) -> None:
        self.client, self.n = client, n

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.n -= 1
            if self.n == 0:
                raise Killed(name)
            return fn(*args, **kwargs)
        return call


@pytest.mark.parametrize("mode", ["local", "server"])
def test_writer_killed_at_any_call_leaves_n_intact_and_is_cleaned(mode: str) -> None:
    base_ids = list(range(1, 31))
    v1, d1 = dict(zip(base_ids, unit(30, 3))), docs(base_ids, 3)
    killed_new = list(range(31, 41))  # the killed writer's rows; the next one reuses 31..34
    v_new, d_new = dict(zip(range(31, 35), unit(4, 5))), docs(list(range(31, 35)), 5)
    n, finished = 0, False
    while not finished:
        n += 1
        c = make_conn(mode)
        loc = QdrantLocation(c, "k_", "chunks")
        dense, lex = QdrantDenseStore.open(loc, None), QdrantLexicalStore.open(loc, None)
        dense.add(np.array(base_ids), np.stack(list(v1.values())))
        lex.add(np.array(base_ids), list(d1.values()))
        s1, l1 = dense.save(1), lex.save(1)
        real = c.client
        c.client = Dying(real, n)
        try:
            _run_writer(loc, s1, l1, [1, 2, 3, 4], dict(zip(killed_new, unit(10, 4))),
                        docs(killed_new, 4))
            finished = True  # ran to the end: every earlier n killed it somewhere
        except Killed:
            pass
        c.client = real
        check_dense(QdrantDenseStore.open(loc, s1), v1)  # generation 1 fully usable
        check_lexical(QdrantLexicalStore.open(loc, l1), d1, l1["avgdl"])
        s2, l2 = _run_writer(loc, s1, l1, [5, 6], v_new, d_new)  # the next writer, same number
        QdrantDenseStore.open(loc, s2).prune([s2, s1])
        QdrantLexicalStore.open(loc, l2).prune([l2, l1])
        live = [i for i in base_ids if i not in (5, 6)]
        check_dense(QdrantDenseStore.open(loc, s2), {**{i: v1[i] for i in live}, **v_new})
        check_lexical(QdrantLexicalStore.open(loc, l2), {**{i: d1[i] for i in live}, **d_new},
                      l1["avgdl"])
        left = c.client.retrieve(s2["collection"], list(range(35, 41)))
        assert left == [], f"killed at call {n}: leftovers {left}"
        assert c.client.retrieve(s2["collection"], [31])[0].payload["source"] == "b.md"
        c.close()
    assert n > 10  # the kill points covered the whole update


def test_prune_deletes_removed_points_and_old_builds(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "p_", "sentences")
    v = dict(zip(range(1, 21), unit(20, 6)))
    store = QdrantDenseStore.open(loc, None)
    store.add(np.array(list(v)), np.stack(list(v.values())))
    s1 = store.save(1)
    store.remove(np.array([1, 2]))
    s2 = store.save(2)
    store.remove(np.array([3]))
    s3 = store.save(3)
    name = s1["collection"]
    store.prune([s3, s2])  # removed at 2: no kept generation sees them; removed at 3: 2 does
    assert [r.id for r in conn.client.retrieve(name, [1, 2, 3])] == [3]
    check_dense(QdrantDenseStore.open(loc, s2), {i: x for i, x in v.items() if i > 2})
    store.prune([s3])
    assert conn.client.retrieve(name, [1, 2, 3]) == []
    check_dense(QdrantDenseStore.open(loc, s3), {i: x for i, x in v.items() if i > 3})
    rebuilt = QdrantDenseStore.open(loc, None)  # a full build writes a new collection
    rebuilt.add(np.array([7]), unit(1, 7))
    s4 = rebuilt.save(4)
    assert s4["collection"] == "p_sentences_4" and s3["collection"] == name
    assert QdrantDenseStore.open(loc, s3).search(unit(1, 7)[0], 30).tolist() != [7]
    rebuilt.prune([s4])
    names = {c.name for c in conn.client.get_collections().collections}
    assert name not in names and "p_sentences_4" in names
    aliases = {a.alias_name: a.collection_name for a in conn.client.get_aliases().aliases}
    assert aliases == {"p_sentences": "p_sentences_4"}
    with pytest.raises(IndexCorruptError, match="p_sentences_1"):
        QdrantDenseStore.open(loc, s3)


def test_allowed_restricts_both_stores(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "a_", "chunks")
    ids = list(range(1, 81))
    v, d = dict(zip(ids, unit(80, 8))), docs(ids, 8)
    lex = QdrantLexicalStore.open(loc, None)  # lexical first: the dense store adds its vector
    lex.add(np.array(ids), list(d.values()))
    l1 = lex.save(1)
    dense = QdrantDenseStore.open(loc, None)
    dense.add(np.array(ids), np.stack(list(v.values())))
    s1 = dense.save(1)
    assert s1["collection"] == l1["collection"]
    allowed = IdSet(np.array([70, 5, 9, 33, 5, 61]))
    subset = {i: v[i] for i in allowed.ids.tolist()}
    q = unit(1, 11)[0]
    assert dense.search(q, 3, allowed).tolist() == brute_dense(subset, q, 3)
    assert ("qdrant" in allowed.derived) == (not conn.local)  # local mode scores them here
    lids, scores = lex.search(["mot0", "mot2"], 10, allowed)
    truth = brute_bm25(d, ["mot0", "mot2"])
    assert set(lids.tolist()) == {i for i in allowed.ids.tolist() if truth[i] > 0}
    np.testing.assert_allclose(scores, sorted((truth[i] for i in lids.tolist()), reverse=True),
                               rtol=1e-5)
    assert dense.search(q, 3, IdSet(np.zeros(0))).tolist() == []


def test_state_checks(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "s_", "chunks")
    store = QdrantLexicalStore.open(loc, None)
    store.add(np.array([1, 2]), [["a", "b"], []])  # a document without terms is live
    state = store.save(1)
    assert len(QdrantLexicalStore.open(loc, state)) == 2
    with pytest.raises(ValueError):
        store.save(1)  # generations only grow
    with pytest.raises(IndexMismatchError):
        QdrantDenseStore.open(loc, state)  # the lexical state is not a dense one
    with pytest.raises(IndexMismatchError):
        QdrantLexicalStore.open(QdrantLocation(conn, "other_", "chunks"), state)
    with pytest.raises(IndexMismatchError):
        QdrantLexicalStore.open(loc, {**state, "k1": 1.2})


# -- faults ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_url_is_one_french_line_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(StoreUnavailableError) as err:
        connect(url=url, timeout_s=2)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert url in message and "\n" not in message and "injoignable" in message


def test_slow_server_times_out_naming_the_url() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="à temps") as err:
            connect(url=url, timeout_s=1, attempts=2, backoff_s=0.1)
        assert time.monotonic() - start < 5
        assert url in str(err.value)


def test_transient_errors_are_retried_with_backoff() -> None:
    answers = [503, 502, 200]

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            status = answers.pop(0) if answers else 200
            body = b'{"result":{"collections":[]},"status":"ok","time":0}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        start = time.monotonic()
        c = connect(url=url, attempts=3, backoff_s=0.2)  # 503, 502, then answered
        assert time.monotonic() - start >= 0.2 + 0.4 - 0.05 and answers == []
        c.close()
        answers.extend([503, 503, 503])
        with pytest.raises(StoreUnavailableError, match=url):
            connect(url=url, attempts=3, backoff_s=0.01)
        answers.extend([401, 200])  # a refused key is not retried
        with pytest.raises(StoreUnavailableError, match="ASSISTANT_QDRANT_API_KEY"):
            connect(url=url, attempts=3, backoff_s=0.01)
        assert answers == [200]
    finally:
        server.shutdown()
        server.server_close()


def test_local_directory_held_by_another_client(tmp_path: Any) -> None:
    first = connect(path=str(tmp_path / "q"))
    try:
        with pytest.raises(StoreUnavailableError, match="déjà ouvert"):
            connect(path=str(tmp_path / "q"))
    finally:
        first.close()


def test_reader_filters_many_invisible_hits(conn: QdrantConnection) -> None:
    """When more than a page of best hits belongs to a later generation, the reader asks again
    with the generation filter and still gets its own best ones."""
    loc = QdrantLocation(conn, "f_", "chunks")
    q = unit(1, 20)[0]
    old = dict(zip(range(1, 11), unit(10, 21)))
    dense, lex = QdrantDenseStore.open(loc, None), QdrantLexicalStore.open(loc, None)
    dense.add(np.array(list(old)), np.stack(list(old.values())))
    lex.add(np.array(list(old)), [["mot1", "mot2"]] * 5 + [["mot3"]] * 5)
    s1, l1 = dense.save(1), lex.save(1)
    near = q + 0.05 * unit(60, 22)  # 60 later vectors, all closer to q than the old ones
    later = np.arange(100, 160)
    dense.add(later, near / np.linalg.norm(near, axis=1, keepdims=True))
    lex.add(later, [["mot1", "mot1"]] * 60)
    dense.save(2), lex.save(2)
    reader = QdrantDenseStore.open(loc, s1)
    assert reader.search(q, 4).tolist() == brute_dense(old, q, 4)
    allowed = IdSet(np.r_[later[:40], [2, 5, 7]])
    assert reader.search(q, 3, allowed).tolist() == brute_dense(
        {i: old[i] for i in (2, 5, 7)}, q, 3)
    ids, scores = QdrantLexicalStore.open(loc, l1).search(["mot1"], 3)
    assert sorted(ids.tolist()) == [1, 2, 3] and len(set(np.round(scores, 5))) == 1


def test_open_for_settings_shares_one_local_client(tmp_path: Any) -> None:
    from assistant.config import Settings
    from assistant.index.qdrant_connection import release_connections

    settings = Settings(store="qdrant", qdrant_path=tmp_path / "q", qdrant_prefix="x_")
    try:
        chunks = QdrantDenseStore.open_for(settings, "chunks", None)
        sentences = QdrantDenseStore.open_for(settings, "sentences", None)
        lexical = QdrantLexicalStore.open_for(settings, None)
        assert chunks.conn is sentences.conn is lexical.conn  # one client per directory
        chunks.add(np.array([1]), unit(1, 30))
        sentences.add(np.array([1, 2]), unit(2, 31))
        lexical.add(np.array([1]), [["mot1"]])
        states = chunks.save(1), sentences.save(1), lexical.save(1)
        assert [s["collection"] for s in states] == ["x_chunks_1", "x_sentences_1", "x_chunks_1"]
    finally:
        release_connections()
    c = connect(path=str(tmp_path / "q"))  # released: the directory opens again
    assert len(QdrantDenseStore.open(QdrantLocation(c, "x_", "sentences"), states[1])) == 2
    c.close()


def test_pending_edits_and_extra_payload(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "e_", "chunks")
    v = dict(zip(range(1, 11), unit(10, 40)))
    store = QdrantDenseStore.open(loc, None)
    store.add(np.array(list(v)), np.stack(list(v.values())))
    s1 = store.save(1)
    store.add(np.array([11, 12]), unit(2, 41))
    with pytest.raises(ValueError):
        store.add(np.array([12]), unit(1, 42))  # already waiting for save
    with pytest.raises(ValueError):
        store.add(np.array([13]), unit(1, 42)[:, :4])  # another dimension
    store.remove(np.array([12, 3]))  # a pending add is dropped, a saved row removed
    store.remove(np.array([3]))
    store.add(np.array([3]), unit(1, 43))  # a replaced row: remove, then add again
    expect = {**{i: x for i, x in v.items()}, 11: unit(2, 41)[0], 3: unit(1, 43)[0]}
    check_dense(store, expect)
    q = unit(1, 44)[0]
    allowed = IdSet(np.array([3, 11, 12, 4]))
    assert store.search(q, 5, allowed).tolist() == brute_dense(
        {i: expect[i] for i in (3, 4, 11)}, q, 5)
    store.set_payload([4, 11], {"source": "a.md"})
    s2 = store.save(2)
    check_dense(QdrantDenseStore.open(loc, s2), expect)
    got = {r.id: r.payload.get("source") for r in conn.client.retrieve(s2["collection"], [4, 11])}
    assert got == {4: "a.md", 11: "a.md"}
    assert len(QdrantDenseStore.open(loc, s1)) == 10


def test_prune_cleans_unpublished_writes_and_shared_collections(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "u_", "chunks")
    d = docs(list(range(1, 21)), 50)
    v = dict(zip(range(1, 21), unit(20, 50)))
    dense, lex = QdrantDenseStore.open(loc, None), QdrantLexicalStore.open(loc, None)
    dense.add(np.array(list(v)), np.stack(list(v.values())))
    lex.add(np.array(list(d)), list(d.values()))
    s1, l1 = dense.save(1), lex.save(1)
    orphan = QdrantLexicalStore.open(loc, l1)  # saved, then its manifest never published
    orphan.remove(np.array([1, 2]))
    orphan.add(np.array([30]), [["mot1"]])
    orphan.save(2)
    QdrantLexicalStore.open(loc, l1).prune([l1])
    check_lexical(QdrantLexicalStore.open(loc, l1), d, l1["avgdl"])
    record = conn.client.retrieve(l1["collection"], [1, 30], with_vectors=True)
    assert [r.id for r in record] == [1] and "bm25_removed" not in record[0].payload
    # a full build of both stores into a new collection; the old one goes once both let go
    dense5, lex5 = QdrantDenseStore.open(loc, None), QdrantLexicalStore.open(loc, None)
    dense5.add(np.array([1]), unit(1, 51))
    lex5.add(np.array([1]), [["mot1"]])
    s5, l5 = dense5.save(5), lex5.save(5)
    dense5.prune([s5])
    assert conn.client.collection_exists(s1["collection"])  # the lexical store still uses it
    check_lexical(QdrantLexicalStore.open(loc, l1), d, l1["avgdl"])
    lex5.prune([l5])
    assert not conn.client.collection_exists(s1["collection"])
    assert len(QdrantLexicalStore.open(loc, l5)) == len(QdrantDenseStore.open(loc, s5)) == 1


def test_load_verifies_the_collection(conn: QdrantConnection) -> None:
    loc = QdrantLocation(conn, "l_", "sentences")
    store = QdrantDenseStore.open(loc, None)
    store.load()  # nothing saved yet: nothing to check
    store.add(np.arange(1, 6), unit(5, 60))
    state = store.save(1)
    QdrantDenseStore.open(loc, state).load()
    conn.client.delete(state["collection"], points_selector=[2])  # damage from outside
    with pytest.raises(IndexCorruptError, match="4 points"):
        QdrantDenseStore.open(loc, state).load()
    with pytest.raises(IndexCorruptError, match="vecteur"):
        QdrantDenseStore.open(loc, {**state, "dimension": D + 1}).load()


def test_french_chunks_score_as_bm25s(conn: QdrantConnection) -> None:
    """Real analyzed French text (the seed articles' paragraphs): the same scores as bm25s,
    the embedded backend's oracle, for every document and query."""
    import re
    from pathlib import Path

    import bm25s

    from assistant.text.analysis import analyze

    root = Path(__file__).resolve().parent.parent / "corpus"
    paragraphs = [p for f in sorted(root.glob("*.txt"))
                  for p in f.read_text(encoding="utf-8").split("\n") if p.strip()]
    texts = paragraphs + [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p)]
    french = [t for t in map(analyze, texts) if t][:300]
    ids = np.arange(len(french), dtype=np.int64) * 7 + 3
    store = QdrantLexicalStore.open(QdrantLocation(conn, "fr_", "chunks"), None)
    store.add(ids, french)
    store = QdrantLexicalStore.open(QdrantLocation(conn, "fr_", "chunks"), store.save(1))
    oracle = bm25s.BM25()
    oracle.index(french, show_progress=False)
    for question in ("Quand la Serre numérique a-t-elle été inaugurée ?",
                     "cluster numérique cluster", "entreprises startups emplois région"):
        query = analyze(question)
        known = [t for t in query if t in oracle.vocab_dict]
        expected = np.asarray(oracle.get_scores(known))
        np.testing.assert_allclose(store.score(query, ids), expected, rtol=1e-4, atol=1e-7)
        found, scores = store.search(query, 10)
        np.testing.assert_allclose(scores, np.sort(expected)[::-1][:10], rtol=1e-4)


class Counting:
    """The client, counting the points each write request names."""

    def __init__(self, client: Any) -> None:
        self.client, self.points = client, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.client, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "upsert":
                self.points[name] += len(args[1])
            elif name in ("batch_update_points", "set_payload", "delete_payload",
                          "update_vectors", "delete_vectors"):
                self.points[name] += 1
            return fn(*args, **kwargs)
        return call


def test_local_mode_writes_a_chunk_point_once_per_store(tmp_path: Any) -> None:
    """Local mode commits every point of every operation on its own: when both stores of the
    chunk collection save, each point is written by one upsert per store (the second rewrites
    it whole), in batches, and keeps both vectors and both stores' payload."""
    c = connect(path=str(tmp_path / "q"))
    loc = QdrantLocation(c, "w_", "chunks")
    ids = list(range(1, 601))
    v, d = dict(zip(ids, unit(600, 70))), docs(ids, 70)
    real, counting = c.client, Counting(c.client)
    c.client = counting
    dense, lex = QdrantDenseStore.open(loc, None), QdrantLexicalStore.open(loc, None)
    dense.add(np.array(ids), np.stack(list(v.values())))
    lex.add(np.array(ids), list(d.values()))
    dense.set_payload(ids[:5], {"source": "a.md"})
    s1, l1 = dense.save(1), lex.save(1)
    # + the writers' marker point: made by the first store, its payload set by the second
    assert counting.points == {"upsert": 2 * len(ids) + 1, "set_payload": 1}
    c.client = real
    check_dense(QdrantDenseStore.open(loc, s1), v)
    check_lexical(QdrantLexicalStore.open(loc, l1), d, l1["avgdl"])
    point = c.client.retrieve(s1["collection"], [3], with_vectors=True)[0]
    assert set(point.vector) == {"dense", "bm25"}
    assert {"dense_added", "bm25_added", "source", "terms", "dl", "role"} <= set(point.payload)
    # removed at 2, added again at 3 (the point was not pruned): written whole, flags reset
    dense, lex = QdrantDenseStore.open(loc, s1), QdrantLexicalStore.open(loc, l1)
    dense.remove(np.array([3])), lex.remove(np.array([3]))
    s2, l2 = dense.save(2), lex.save(2)
    dense, lex = QdrantDenseStore.open(loc, s2), QdrantLexicalStore.open(loc, l2)
    v[3], d[3] = unit(1, 71)[0], ["mot1", "mot2"]
    dense.add(np.array([3]), v[3][None])
    lex.add(np.array([3]), [d[3]])
    s3, l3 = dense.save(3), lex.save(3)
    point = c.client.retrieve(s1["collection"], [3], with_vectors=True)[0]
    assert not {"dense_removed", "bm25_removed"} & set(point.payload)
    assert point.payload["terms"] == ["mot1", "mot2"]
    check_dense(QdrantDenseStore.open(loc, s3), v)
    check_lexical(QdrantLexicalStore.open(loc, l3), d, l1["avgdl"])
    assert len(QdrantDenseStore.open(loc, s2)) == len(ids) - 1
    c.close()
