"""The embedded lexical store (assistant/index/lexical/bm25.py): bm25s's scores exactly, over
segments, tombstones and generations; bm25s is the oracle here, on real French token lists."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest

from assistant.errors import IndexCorruptError, IndexMismatchError
from assistant.index.dense.base import IdSet
from assistant.index.lexical import bm25
from assistant.index.lexical.base import idf
from assistant.index.lexical.bm25 import BM25Store
from assistant.text.analysis import analyze

ROOT = Path(__file__).resolve().parent.parent


def _french_documents() -> list[list[str]]:
    """Analyzed paragraphs and sentences of the seed articles: a few hundred token lists."""
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "corpus").glob("*.txt"))]
    paragraphs = [p for t in texts for p in t.split("\n") if p.strip()]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p) if s.strip()]
    return [terms for terms in map(analyze, paragraphs + sentences) if terms]


DOCS = _french_documents()
IDS = np.arange(len(DOCS), dtype=np.int64) * 7 + 3  # ids are not row numbers
QUESTIONS = [json.loads(line)["question"] for line in
             (ROOT / "tests" / "data" / "dev_questions.jsonl").read_text().splitlines()]
QUERIES = [analyze(q) for q in QUESTIONS][:16] + [
    analyze("cluster numérique cluster"),  # a repeated term counts twice, as in bm25s
    analyze("Valenciennes Valenciennes Valenciennes innovation"),
    ["zzzinconnu", analyze("Lorraine")[0]],  # an unknown term counts for nothing
    analyze("entreprises startups emplois région métropole financement"),
]


def _oracle(docs: list[list[str]], query: list[str]) -> np.ndarray:
    model = bm25s.BM25()
    model.index(docs, show_progress=False)
    known = [t for t in query if t in model.vocab_dict]
    return np.zeros(len(docs)) if not known else np.asarray(model.get_scores(known))


def _assert_matches(store: BM25Store, ids: np.ndarray, docs: list[list[str]]) -> None:
    """Scores of every document for every query equal bm25s's on the same documents, and a
    search returns the best of them, best first, ties by id."""
    assert len(QUERIES) == 20 and len(docs) >= 200
    for query in QUERIES:
        expected = _oracle(docs, query)
        np.testing.assert_allclose(store.score(query, ids), expected, rtol=1e-4, atol=1e-7)
        found, scores = store.search(query, 10)
        best = np.sort(expected[expected > 0])[::-1][:10]
        np.testing.assert_allclose(scores, best, rtol=1e-4)
        np.testing.assert_allclose(expected[np.searchsorted(ids, found)], scores, rtol=1e-4)
        assert all((a > b) or (a == b and i < j) for a, b, i, j in
                   zip(scores, scores[1:], found, found[1:]))


def test_scores_equal_bm25s_in_one_segment(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(IDS, DOCS)
    _assert_matches(store, IDS, DOCS)
    store.save(1)
    assert store.describe()["segments"] == 1
    _assert_matches(BM25Store.open(tmp_path, store.state()), IDS, DOCS)
    assert any(Counter(q).most_common(1)[0][1] > 1 for q in QUERIES)


def test_scores_equal_bm25s_over_three_segments_with_removals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25, "DELTA_FRACTION", 10.0)  # keep the segments apart
    monkeypatch.setattr(bm25, "TOMBSTONE_FRACTION", 10.0)
    thirds = np.array_split(np.arange(len(DOCS)), 3)
    store = BM25Store.open(tmp_path, None)
    for generation, part in enumerate(thirds[:2], start=1):
        store.add(IDS[part], [DOCS[i] for i in part])
        store = BM25Store.open(tmp_path, store.save(generation))
    removed = np.concatenate([thirds[0][::5], thirds[1][::4]])
    store.remove(IDS[removed])
    store.remove(np.array([-1, 10**12]))  # unknown ids are ignored
    readded = removed[::2]  # back, in the third segment, with the rest
    last = np.concatenate([thirds[2], readded])
    store.add(IDS[last], [DOCS[i] for i in last])
    live = np.setdiff1d(np.arange(len(DOCS)), np.setdiff1d(removed, readded))
    _assert_matches(store, IDS[live], [DOCS[i] for i in live])  # before saving: pending rows
    state = store.save(3)
    assert store.describe()["segments"] == 3 and len(state["segments"]) == 3
    assert [bool(s["deleted"]) for s in state["segments"]] == [True, True, False]
    reopened = BM25Store.open(tmp_path, state)
    assert len(reopened) == len(live)
    _assert_matches(reopened, IDS[live], [DOCS[i] for i in live])
    dead = IDS[np.setdiff1d(removed, readded)]
    assert not reopened.score(QUERIES[0] + QUERIES[5], dead).any()


def test_merge_policy_compacts_and_keeps_scores(tmp_path: Path) -> None:
    base = np.arange(300)
    store = BM25Store.open(tmp_path, None)
    store.add(IDS[base], [DOCS[i] for i in base])
    store.save(1)
    store.add(IDS[300:310], DOCS[300:310])  # 10 rows: under 10% of the base, a delta
    state = store.save(2)
    assert len(state["segments"]) == 2 and state["segments"][1]["rows"] == 10
    store.remove(IDS[:20])  # 20 of 310 rows removed: tombstones only
    state = store.save(3)
    assert len(state["segments"]) == 2 and state["segments"][0]["deleted"] is not None
    store.remove(IDS[20:40])  # 40 of 310: over 10%, compacted into one segment
    state = store.save(4)
    assert len(state["segments"]) == 1 and state["segments"][0]["deleted"] is None
    assert state["segments"][0]["rows"] == 270
    store.add(IDS[310:], DOCS[310:])  # over 10% of the base: compacted again
    state = store.save(5)
    assert len(state["segments"]) == 1
    live = np.arange(40, len(DOCS))
    _assert_matches(BM25Store.open(tmp_path, state), IDS[live], [DOCS[i] for i in live])


def test_round_trip_and_reader_unaffected_by_writer(tmp_path: Path) -> None:
    writer = BM25Store.open(tmp_path, None)
    writer.add(IDS, DOCS)
    state_n = writer.save(1)
    reader = BM25Store.open(tmp_path, state_n)
    before = [reader.search(q, 20) for q in QUERIES]
    assert reader.describe() == writer.describe()
    for (a_ids, a_scores), q in zip(before, QUERIES):
        b_ids, b_scores = writer.search(q, 20)
        assert np.array_equal(a_ids, b_ids) and np.array_equal(a_scores, b_scores)

    writer = BM25Store.open(tmp_path, state_n)
    writer.remove(IDS[:100])  # over 10%: the next generation is a new base
    writer.add(np.array([10**9]), [analyze("Une toute nouvelle serre numérique à Lille")])
    state_n1 = writer.save(2)
    assert {f["name"] for s in state_n1["segments"] for f in s["files"].values()}.isdisjoint(
        {f["name"] for s in state_n["segments"] for f in s["files"].values()})
    again = BM25Store.open(tmp_path, state_n)  # generation N still opens, unchanged
    for (a_ids, a_scores), q in zip(before, QUERIES):
        for store in (reader, again):
            b_ids, b_scores = store.search(q, 20)
            assert np.array_equal(a_ids, b_ids) and np.array_equal(a_scores, b_scores)
    assert len(again) == len(DOCS) and len(BM25Store.open(tmp_path, state_n1)) == len(DOCS) - 99

    writer.prune([state_n1])
    with pytest.raises(IndexCorruptError):
        BM25Store.open(tmp_path, state_n)
    assert np.array_equal(reader.search(QUERIES[0], 20)[0], before[0][0])  # still in memory
    assert BM25Store.open(tmp_path, state_n1).search(analyze("serre Lille"), 1)[0][0] == 10**9


def test_prune_removes_unreferenced_files_and_leftovers(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(IDS[:200], DOCS[:200])
    state1 = store.save(1)
    store.add(IDS[200:210], DOCS[200:210])
    state2 = store.save(2)
    store.remove(IDS[:5])
    state3 = store.save(3)
    (tmp_path / "seg-00000004.ids.npy.tmp").write_bytes(b"half")  # a writer killed half-way
    (tmp_path / "seg-00000004.rows.npy").write_bytes(b"unreferenced")
    (tmp_path / "README.txt").write_text("not ours")
    store.prune([state3, state2])
    kept = {p.name for p in tmp_path.iterdir()}
    referenced = {f["name"] for st in (state2, state3) for s in st["segments"]
                  for f in [*s["files"].values(), *([s["deleted"]] if s["deleted"] else [])]}
    assert kept == referenced | {"README.txt"}
    assert any(n.startswith("del-") for n in kept)
    BM25Store.open(tmp_path, state2)
    BM25Store.open(tmp_path, state1)  # state 1's files are all in state 2 (a delta was added)
    store.prune([state3])  # state 2's files are all in state 3 (tombstones were added)
    assert {p.name for p in tmp_path.iterdir()} == kept
    assert len(BM25Store.open(tmp_path, state3)) == 205


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.iterdir()}


def test_unchanged_save_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "lexical"
    store = BM25Store.open(root, None)
    assert store.save(1) == store.state() and not root.exists()  # empty: nothing at all
    store.add(IDS[:50], DOCS[:50])
    state = store.save(2)
    listing = _listing(root)
    assert store.save(3) == state
    store = BM25Store.open(root, state)
    store.remove(np.array([123456789]))  # unknown: no change
    store.add(np.zeros(0, dtype=np.int64), [])
    assert store.save(4) == state
    assert _listing(root) == listing
    with pytest.raises(ValueError):
        store.save(2)  # generations only go up


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "state"])
def test_corrupt_files_are_detected(tmp_path: Path, damage: str) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(IDS[:100], DOCS[:100])
    store.save(1)
    store.remove(IDS[:3])
    state = store.save(2)
    victim = tmp_path / state["segments"][0]["files"]["tf"]["name"]
    if damage == "flip":
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.write_bytes(bytes(data))
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-2])
    elif damage == "delete":
        (tmp_path / state["segments"][0]["deleted"]["name"]).unlink()
    else:
        state["segments"][0]["files"]["vocab"]["name"] = "../../etc/passwd"
    with pytest.raises(IndexCorruptError, match="assistant index build") as caught:
        BM25Store.open(tmp_path, state)
    assert "Index lexical endommagé" in str(caught.value)


def test_state_of_another_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(IndexMismatchError, match="qdrant"):
        BM25Store.open(tmp_path, {"backend": "qdrant", "format": 1})


def test_empty_store(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    ids, scores = store.search(["serr"], 5)
    assert len(store) == 0 and len(ids) == 0 and len(scores) == 0 and ids.dtype == np.int64
    assert not store.score(["serr"], IDS[:3]).any() and store.document_frequency("serr") == 0
    assert idf(store, "serr") == pytest.approx(math.log(4.0))
    assert store.describe() == {"backend": "bm25", "documents": 0, "vocabulary": 0,
                                "segments": 0, "removed": 0}
    store.add(IDS[:3], DOCS[:3])
    store.remove(IDS[:3])  # all gone before the save: an empty state again
    state = store.save(1)
    assert state["segments"] == [] and len(BM25Store.open(tmp_path, state)) == 0


def _reference(docs: list[list[str]], query: list[str]) -> np.ndarray:
    """BM25 (lucene) written plainly, for what bm25s cannot index (a document without terms)."""
    n, avgdl = len(docs), sum(map(len, docs)) / len(docs)
    out = np.zeros(n)
    for term in query:
        df = sum(term in d for d in docs)
        if df:
            weight = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for i, d in enumerate(docs):
                tf = d.count(term)
                out[i] += weight * tf / (tf + 1.5 * (1 - 0.75 + 0.75 * len(d) / avgdl))
    return out


def test_document_without_terms(tmp_path: Path) -> None:
    docs = [*DOCS[:30], [], *DOCS[30:60]]
    ids = np.arange(len(docs), dtype=np.int64)
    store = BM25Store.open(tmp_path, None)
    store.add(ids, docs)
    store = BM25Store.open(tmp_path, store.save(1))
    assert len(store) == 61
    for query in QUERIES:
        np.testing.assert_allclose(store.score(query, ids), _reference(docs, query), rtol=1e-6)
        assert 30 not in store.search(query, 100)[0]


def test_allowed_restricts_the_search(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(IDS[:300], DOCS[:300])
    store.save(1)
    store.add(IDS[300:], DOCS[300:])  # a pending segment too
    allowed = IdSet(np.concatenate([IDS[::3], [-5, 10**10]]))
    for query in QUERIES:
        all_ids, all_scores = store.search(query, len(DOCS))
        inside = np.isin(all_ids, allowed.ids)
        ids, scores = store.search(query, 7, allowed)
        assert np.isin(ids, allowed.ids).all()
        assert np.array_equal(ids, all_ids[inside][:7])
        assert np.array_equal(scores, all_scores[inside][:7])
    assert len(store.search(QUERIES[0], 5, IdSet(np.zeros(0)))[0]) == 0


def test_idf_and_document_frequency_match_live_documents(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(IDS, DOCS)
    store.save(1)
    store.remove(IDS[::6])
    live = [d for i, d in enumerate(DOCS) if i % 6]
    model = bm25s.BM25()
    model.index(live, show_progress=False)
    df_oracle = np.diff(model.scores["indptr"])
    for term in {t for q in QUERIES for t in q}:
        df = sum(term in d for d in live)
        assert store.document_frequency(term) == df
        if term in model.vocab_dict:
            assert df == df_oracle[model.vocab_dict[term]]
        assert idf(store, term) == pytest.approx(
            math.log(1 + (len(live) - df + 0.5) / (df + 0.5)))
    vocabulary = {t for d in live for t in d}
    assert store.describe()["vocabulary"] == len(vocabulary) < len({t for d in DOCS for t in d})


def test_add_refuses_ids_already_stored(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(IDS[:10], DOCS[:10])
    for ids in (IDS[5:6], np.array([1000, 1000])):
        with pytest.raises(ValueError):
            store.add(ids, [DOCS[0]] * len(ids))
    store.remove(IDS[5:6])
    store.add(IDS[5:6], DOCS[5:6])  # removed, then added again: fine
    assert len(store) == 10


def test_ties_are_broken_by_id_at_the_cut(tmp_path: Path) -> None:
    store = BM25Store.open(tmp_path, None)
    store.add(np.array([50, 10, 40]), [DOCS[0]] * 3)
    store.save(1)
    store.add(np.array([20, 30, 60]), [DOCS[0], DOCS[0], DOCS[1]])  # a second segment
    ids, scores = store.search(DOCS[0][:3], 2)
    assert ids.tolist() == [10, 20] and scores[0] == scores[1] > 0


def test_small_saves_merge_deltas_without_touching_the_base(tmp_path: Path) -> None:
    """40 updates of two documents on a big base: the deltas are merged among themselves (their
    tombstones dropped with their rows), the base's files are never rewritten, scores stay
    bm25s's, and readers of the state before a merge keep working until prune."""
    rng = np.random.default_rng(7)
    words = sorted({t for d in DOCS for t in d})
    filler = [list(rng.choice(words, size=len(DOCS[i % 300]))) for i in range(2100)]
    docs = {int(i): d for i, d in zip(IDS[:300], DOCS[:300])}
    docs.update({10**6 + i: d for i, d in enumerate(filler[:2000])})  # a base of 2,300
    store = BM25Store.open(tmp_path, None)
    store.add(np.array(list(docs), dtype=np.int64), list(docs.values()))
    first = store.save(1)
    base_files = {n: t for n, (_, t) in _listing(tmp_path).items()}
    states, merges, removed_from_base = [first], 0, 0
    for gen, i in enumerate(range(300, 340), start=2):
        previous = states[-1]
        will_merge = len(previous["segments"]) == bm25.MAX_SEGMENTS
        if will_merge:
            before = [BM25Store.open(tmp_path, previous).search(q, 10) for q in QUERIES]
            reader = BM25Store.open(tmp_path, previous)
        writer = BM25Store.open(tmp_path, previous)
        added = {int(IDS[i]): DOCS[i], 2 * 10**6 + gen: filler[2000 + gen]}
        writer.add(np.array(list(added)), list(added.values()))
        docs.update(added)
        if gen % 4 == 0:  # one document of the previous delta and one of the base
            gone = [int(IDS[i - 1]), int(IDS[gen])]
            writer.remove(np.array(gone))
            for g in gone:
                docs.pop(g)
            removed_from_base += 1
        state = writer.save(gen)
        segments = state["segments"]
        assert segments[0] == {**first["segments"][0], "deleted": segments[0]["deleted"]}
        assert 2 <= len(segments) <= bm25.MAX_SEGMENTS
        assert segments[-1]["generation"] == gen
        if will_merge:
            merges += 1
            assert len(segments) == 2 and segments[1]["generation"] == gen
            assert segments[1]["deleted"] is None  # the deltas' tombstones went with their rows
            assert segments[1]["rows"] == sum(IDS[300] <= d < 10**6 or d >= 2 * 10**6
                                              for d in docs)
            for store_n in (reader, BM25Store.open(tmp_path, previous)):
                for q, (ids, scores) in zip(QUERIES, before):
                    got_ids, got_scores = store_n.search(q, 10)
                    assert np.array_equal(got_ids, ids) and np.array_equal(got_scores, scores)
        else:
            assert [s["files"] for s in segments[:-1]] == [
                s["files"] for s in previous["segments"]]
        writer.prune([state, previous])
        states.append(state)
    assert merges == 2 and removed_from_base == 10
    listing = _listing(tmp_path)
    assert base_files == {n: listing[n][1] for n in base_files}
    ids = np.array(sorted(docs), dtype=np.int64)
    _assert_matches(BM25Store.open(tmp_path, states[-1]), ids, [docs[int(i)] for i in ids])
    with pytest.raises(IndexCorruptError):
        BM25Store.open(tmp_path, states[-3])  # pruned
