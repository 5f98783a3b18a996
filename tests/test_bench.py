"""Smoke runs of the benchmark scripts with tiny parameters: files and tables come out, numbers
are sane. Speed itself is never asserted (the machine is shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

pytestmark = pytest.mark.slow


def run_script(name: str, out: Path, *flags: str, timeout: int = 240) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *flags, "--out", str(out)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / f"{name}.md").exists()
    return json.loads((out / f"{name}.json").read_text(encoding="utf-8"))


def _rate(value: Any) -> bool:
    return isinstance(value, float | int) and 0.0 <= value <= 1.0


def test_quality(tmp_path: Path) -> None:
    data = run_script("quality", tmp_path, "--quick", "--limit", "4", timeout=600)
    md = (tmp_path / "quality.md").read_text(encoding="utf-8")
    assert "(e) LangChain tutorial" in md and "all-MiniLM-L6-v2" in md and "By kind" in md
    assert "cross-validated by article" in md and "short" in md
    assert data["tutorial"]["chunk_size"] == 4000  # the splitter's class defaults, untouched
    assert data["tutorial"]["chunks"] < data["index"]["default"]["chunks"]
    assert data["index"]["default"]["articles"] > 5  # the neighbouring articles are in
    for totals in (data["project"]["totals"], data["minilm"]["totals"],
                   data["tutorial"]["totals"], *data["sweep"].values()):
        assert all(_rate(totals[key]) for key in ("hit@1", "hit@k", "mrr"))
        assert totals["hit@1"] <= totals["hit@k"]
    assert set(data["sweep"]) >= {"0/0", "1/0", "0.3/0.4"}


def test_short_answers(tmp_path: Path) -> None:
    failures = tmp_path / "failures.jsonl"
    data = run_script("short_answers", tmp_path, "--limit", "12", "--failures", str(failures))
    md = (tmp_path / "short_answers.md").read_text(encoding="utf-8")
    assert "| all |" in md and "short answer right" in md
    asked = sum(sum(c.values()) for c in data["counts"].values())
    assert asked == 12
    right = sum(c.get("right", 0) for c in data["counts"].values())
    assert right >= 6  # most of our first questions get their fact
    lines = failures.read_text("utf-8").splitlines()
    assert len(lines) == data["failures"]
    assert all({"question", "short", "got", "sentence"} <= json.loads(x).keys() for x in lines)


def test_short_answer_holds_the_written_fact() -> None:
    from short_answers import holds
    assert holds("14,6 millions d'euros", "14,6 millions d'euros")
    assert holds("une quarantaine de mentors", "une quarantaine de mentors bénévoles")  # half
    assert holds("Lorraine Signal, baptisée", "Lorraine Signal")
    assert not holds("1.000", "entre 1.000 et 1.500 emplois")
    assert not holds(None, "Urbik") and not holds("Ville de Paris", "Urbik")


def test_speed(tmp_path: Path) -> None:
    data = run_script("speed", tmp_path, "--tiny", timeout=900)
    models = data["models"]
    assert len(models) == 2 and models[0] == data["default_model"]
    tp = data["throughput"]
    assert tp["texts"] > tp["chunks"] > 0 and tp["sentences"] > 0  # sentence rows embedded too
    assert list(tp["models"]) == models
    for per_model in tp["models"].values():
        assert set(per_model["texts_per_s"]) == {"build", "embed", "bare"}
        assert all(v > 0 for v in per_model["texts_per_s"].values())
        assert per_model["build_vs_bare"] > 0
    lat = data["latency"]
    for model in models:
        assert lat[f"embed|first|{model}"]["n"] == lat["first_questions"]
        for call in ("search", "ask"):
            cold, repeated = lat[f"{call}|cold|{model}"], lat[f"{call}|repeated|{model}"]
            assert cold["p50"] > 0 and cold["n"] == lat["questions"]
            assert repeated["embeds_per_call"] == 0  # the question-vector cache answered
        assert lat[f"search|cold|{model}"]["embeds_per_call"] == 1  # cold: really embedded
    assert lat["profile"]["ask"]["cumulative"]
    assert all(data["startup"][k]["median_s"] > 0 for k in ("python", "import", "search", "ask"))
    for measured in (data["seed_build"], *data["serving"].values()):
        assert 50 < measured["max_rss_mb"] < 8000  # a real peak, not the parent's
    assert set(data["serving"]) == set(models)
    sizes = [r["articles"] for r in data["incremental"]]
    assert sizes == [3, 10]
    for row in data["incremental"]:
        assert row["chunks"] >= row["articles"]
        runs = [row[key]["all"] for key in ("no_change_s", "add_one_s", "remove_one_s")]
        assert len(runs[0]) == len(runs[1]) == len(runs[2]) >= 1
        assert all(v > 0 for v in runs[1] + runs[2])
        # Doing nothing costs less than adding an article (a no-change update that rewrote the
        # index would not); its median may round to 0.000 s.
        assert 0 <= row["no_change_s"]["median"] < row["add_one_s"]["median"]
    assert data["incremental"][-1]["add_one_profile"][0]["step"] == "total"
    md = (tmp_path / "speed.md").read_text(encoding="utf-8")
    assert "Incremental update" in md and "all-MiniLM-L6-v2" in md and "repeated" in md


def test_embed_speed(tmp_path: Path) -> None:
    data = run_script("embed_speed", tmp_path, "--quick", timeout=900)
    assert len(data["models"]) == 2
    backend = data["default_backend"]
    for per_model in data["models"].values():
        assert set(per_model["speed"]) == {"torch", backend}
        exported = per_model["speed"][backend]
        assert exported["1"]["texts_per_s"] > 0 and exported["2"]["query_ms"]["p50"] > 0
        assert exported["cosine_mean"] > 0.98  # same prompts and pooling as bare torch
        assert per_model["chunks"]["torch"]["x_torch"] == 1.0
        assert per_model["chunks"][backend]["chunks_per_s"] > 0
        if backend.startswith(("onnx", "openvino")):
            anatomy = per_model["anatomy"]
            assert anatomy["tokens"] and anatomy["runtime"]["p50"] > 0
            assert anatomy["tokenize"]["p50"] < anatomy["embed_query"]["p50"]
        for q in per_model["quality"].values():
            assert 0 <= q["hybrid"]["hit@1"] <= q["hybrid"]["hit@5"] <= q["questions"]
    md = (tmp_path / "embed_speed.md").read_text(encoding="utf-8")
    assert "multilingual-e5-small (default)" in md and "all-MiniLM-L6-v2" in md
    assert "chunks/s 2 thr, batch" in md and "Anatomy of a warm question" in md


def test_scale(tmp_path: Path) -> None:
    data = run_script("scale", tmp_path, "--sizes", "3000", "--queries", "20", "--single", "5",
                      "--hnsw-max", "3000")
    kinds = {r["kind"]: r for r in data["dense"]}
    assert set(kinds) == {"flat", "ivf", "hnsw"}
    assert kinds["flat"]["settings"][0]["recall@10"] == 1.0
    for row in data["dense"]:
        assert row["n"] == 3000 and row["build_s"] >= 0
        assert all(_rate(s["recall@10"]) for s in row["settings"])
    assert data["lexical"][0]["latency_ms"]["p50"] > 0
    assert "recall@10" in (tmp_path / "scale.md").read_text(encoding="utf-8")


def test_update_cost(tmp_path: Path) -> None:
    from update_cost import long_article

    assert long_article(7) == long_article(7) != long_article(8)
    edited = long_article(7, edit=1)
    assert edited != long_article(7)
    assert edited.split("\n\n")[1:-1] == long_article(7).split("\n\n")[1:-1]  # one paragraph

    data = run_script("update_cost", tmp_path, "--articles", "200", "--reps", "2", "--no-cold")
    size, cases = data["update"]["size"], data["update"]["cases"]
    assert size["articles"] == 200 and 10 * 200 <= size["chunks"] <= 20 * 200  # real length
    assert size["chunk_vectors"] == size["chunks"] and size["sentence_vectors"] > size["chunks"]
    assert size["vector_bytes"] == 4 * 384 * (size["chunk_vectors"] + size["sentence_vectors"])
    assert 0 < size["extra_bytes"] == size["bytes"] - size["vector_bytes"]
    assert size["generations"] == 1 and sum(size["parts"].values()) == size["bytes"]
    for case in ("add", "change", "remove", "no_change"):
        assert len(cases[case]["runs"]) == 2 and all(s > 0 for s in cases[case]["seconds"])
    for run in cases["add"]["runs"]:  # a whole new article embedded, new segment files
        assert run["added"] == 1 and run["chunks_embedded"] >= 10 and run["new_file_bytes"] > 0
    for run in cases["change"]["runs"]:  # only the rewritten end embedded again
        assert run["changed"] == 1 and 0 < run["chunks_embedded"] < run["chunks_reused"]
    for run in cases["remove"]["runs"]:
        assert run["removed"] == 1 and run["chunks_embedded"] == 0
    for run in cases["no_change"]["runs"]:
        assert run["generation"] is None and run["new_files"] == {}
    if data["write_bytes_counted"]:
        add, nothing = cases["add"]["median_write_bytes"], cases["no_change"]["median_write_bytes"]
        assert nothing < add < size["bytes"]
        assert cases["add"]["write_share"] == round(add / size["bytes"], 5)
    profiles = data["update"]["profiles"]
    assert set(profiles) == {"add", "change", "remove"}
    assert all(p["top"][0]["cumulative_s"] > 0 for p in profiles.values())
    md = (tmp_path / "update_cost.md").read_text(encoding="utf-8")
    assert "Update cost at scale (200 synthetic articles" in md and "hashing embedder" in md
    assert "| add 1 article |" in md and "| no change |" in md and "beyond the vectors" in md
    assert "Not measured in this run (`--no-cold`)" in md


def test_stores(tmp_path: Path) -> None:
    from stores import BACKENDS, MEASURES

    data = run_script("stores", tmp_path, "--sizes", "300", "--queries", "4",
                      "--cold-queries", "2", "--reps", "2")
    per = data["results"]["300"]
    assert set(per) == set(BACKENDS) == {"local", "qdrant-memory", "qdrant-dir"}
    for backend, r in per.items():
        assert "error" not in r, r
        assert r["n"] == 300 and r["build_s"] > 0 and r["peak_rss_mb"] > 50
        assert r["dense_ms"]["n"] == 4 and r["dense_ms"]["p50"] > 0
        assert r["bm25_cold_ms"]["n"] == 2 and r["bm25_warm_ms"]["n"] == 4
        assert len(r["add_s"]["all"]) == len(r["remove_s"]["all"]) == 2
        assert all(s > 0 for s in r["add_s"]["all"] + r["remove_s"]["all"])
        assert ("reopen_s" in r) == (backend != "qdrant-memory")  # memory cannot be reopened
    assert per["local"]["faiss_kind"] == "flat"
    for backend in ("qdrant-memory", "qdrant-dir"):  # exact search on both sides: same hits
        assert per[backend]["same_dense_top"] == per[backend]["same_bm25_top"] == 1.0
        ratios = per[backend]["ratios"]
        assert set(ratios) == {label for label, _ in MEASURES}
        build = ratios["first build (dense + BM25, saved), s"]
        assert build == round(per[backend]["build_s"] / per["local"]["build_s"], 2)
    md = (tmp_path / "stores.md").read_text(encoding="utf-8")
    assert "### Stores side by side" in md and "Qdrant `:memory:`" in md
    assert "| 300 | dense search k=10, p50 ms |" in md and "directory ÷ local" in md
    assert f"qdrant-client {data['qdrant_client']}" in md


def test_postgres_bench(tmp_path: Path) -> None:
    """bench/postgres.py on 300 chunks: every backend measured, exact search as the local one."""
    from postgres import BACKENDS

    data = run_script("postgres", tmp_path, "--sizes", "300", "--queries", "3")
    for backend in BACKENDS:
        r = data["results"][f"{backend}@300"]
        assert r["build_s"] > 0 and r["add_one_s"] > 0 and r["dense_ms"]["n"] == 3
        assert r["bm25_ms"]["p50"] > 0
    assert data["results"]["postgres-exact@300"]["recall@10"] == 1.0
    md = (tmp_path / "postgres.md").read_text(encoding="utf-8")
    assert "| 300 | postgres-hnsw |" in md and "pgvector 0.8.2" in md


def test_run_all_rewrites_only_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "benchmarks.md"
    readme.write_text("# Titre\n\n## Benchmarks\n<!-- bench:start -->\nold\n<!-- bench:end -->\n"
                      "\n## Development\nkeep me\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--only", "scale", "--quick",
         "--page", str(readme), "--out", str(tmp_path / "out"),
         "--charts", str(tmp_path / "charts")],
        capture_output=True, text=True, timeout=240, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# Titre\n\n## Benchmarks\n<!-- bench:start -->\n")
    assert text.endswith("<!-- bench:end -->\n\n## Development\nkeep me\n")
    assert "old" not in text and "Dense search at scale" in text and "make bench" in text
    assert "![" not in text and not (tmp_path / "charts").exists()  # no chart reads scale.json


def test_replace_section_without_markers() -> None:
    from run_all import replace_section

    assert replace_section("# README\nno markers\n", "body") is None
    assert replace_section("a<!-- bench:start -->x<!-- bench:end -->b", "new") == (
        "a<!-- bench:start -->\nnew\n<!-- bench:end -->b")


def test_synthetic_articles_are_reproducible_and_distinct(tmp_path: Path) -> None:
    from synthetic import synthetic_article, write_corpus

    assert synthetic_article(3, seed=1) == synthetic_article(3, seed=1)
    assert synthetic_article(3, seed=1) != synthetic_article(3, seed=2)
    paths = write_corpus(tmp_path, 50)
    texts = {p.read_text(encoding="utf-8") for p in paths}
    assert len(texts) == 50 and all("n°" in t for t in texts)


def test_soak_helpers(tmp_path: Path) -> None:
    """The soak's corpus changes (added, then rewritten, never half-written), its per-minute row,
    its memory reading and its table; the soak itself runs for minutes (`bench/soak.py`)."""
    import os

    from common import machine
    from soak import change_corpus, markdown, minute_row, rss_mb

    assert change_corpus(tmp_path, 0) == "added soak-000.txt"
    first = (tmp_path / "soak-000.txt").read_text(encoding="utf-8")
    assert change_corpus(tmp_path, 1) == "changed soak-000.txt"
    assert (tmp_path / "soak-000.txt").read_text(encoding="utf-8") != first
    assert change_corpus(tmp_path, 2) == "added soak-001.txt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["soak-000.txt", "soak-001.txt"]
    rss = rss_mb(os.getpid())
    assert rss is not None and rss > 10
    row = minute_row(0, [(0, "ask", 200, 0.01), (0, "search", 200, 0.03), (0, "openai", 0, 1.0)],
                     rss, "added soak-000.txt")
    assert (row["minute"], row["requests"], row["ok"], row["errors"]) == (1, 3, 2, 1)
    assert row["p50_ms"] == 20.0 and row["statuses"] == [0, 200]
    data = {"minutes": 2, "clients": 1, "rate_per_s": 1.0, "per_minute": [row, row],
            "requests": 6, "errors": 2, "rss_growth": 0.0, "articles_at_end": 6,
            "machine": machine()}
    md = markdown(data)
    assert "| minute | requests | errors |" in md and "MISSED" in md  # errors: target missed
    assert "every minute" in md and "--update-every" not in md
    md = markdown({**data, "update_every_s": 15.0})
    assert "every 15 s" in md and "`python bench/soak.py --minutes 2 --update-every 15`" in md


def _row(answerable: bool, prob: float, reader: float) -> dict[str, Any]:
    """One out-of-fold row of `bench/train_reader.py` (what `choose_refusal` reads)."""
    return {"answerable": answerable, "near": not answerable, "typed": False, "gated": False,
            "prob": prob, "threshold": 0.5, "reader": [reader] * 4}


def test_the_reader_in_the_refusal_is_chosen_within_its_reading_budget() -> None:
    """`choose_refusal` refuses more unanswerable questions where the reader disagrees with an
    unsure answers head, no more answerable ones; with every question in the band (more than
    `MAX_READ` read by any use), it chooses none rather than failing."""
    import train_reader

    sure = [_row(True, 0.95, 3.0)] * 60 + [_row(False, 0.05, -3.0)] * 30
    unsure = [_row(True, 0.52, 3.0)] * 4 + [_row(False, 0.52, -4.0)] * 4
    use = train_reader.choose_refusal(sure + unsure)
    assert use is not None
    assert use["by"]["near refused"] == 30 and use["by"]["near refused with reader"] == 34
    assert use["by"]["answerable refused with reader"] <= use["by"]["answerable refused"] == 0
    assert train_reader.choose_refusal(unsure * 10) is None


def test_the_training_questions_pass_their_checks(tmp_path: Path) -> None:
    """Every training question of bench/data holds what it claims in the articles
    (`bench/check_questions.py`, run as a script); a drafted file with a pattern absent from
    its article, one spanning two sentences, a short answer elsewhere, an unanswerable question
    with a source, an unknown article and a repeated question is reported line by line."""
    proc = subprocess.run([sys.executable, str(BENCH / "check_questions.py")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no problem" in proc.stdout
    source = "dijon-incubateur-sarment-alimentation"
    drafts = [
        {"id": "x1", "question": "Combien de candidatures ?", "sources": [source],
         "answer_pattern": "87 candidatures", "kind": "fact", "asks": "number",
         "short": "87 candidatures"},
        {"id": "x2", "question": "Quelle surface ?", "sources": [source],
         "answer_pattern": "9 999 m²", "kind": "fact", "asks": "area", "short": None},
        {"id": "x3", "question": "Où et combien ?", "sources": [source],
         "answer_pattern": "rue de Longvic.*1 200 m²", "kind": "fact", "asks": "area",
         "short": None},
        {"id": "x4", "question": "Qui dirige Sarment ?", "sources": [source],
         "answer_pattern": "Roussotte, directrice de Sarment", "kind": "fact",
         "asks": "person", "short": "Jeanne Dupont"},
        {"id": "x5", "question": "Quel loyer ?", "sources": [source], "answer_pattern": None,
         "kind": "out_of_scope", "asks": "money", "short": None, "near": True},
        {"id": "x6", "question": "Quel budget ?", "sources": ["no-such-article"],
         "answer_pattern": "budget", "kind": "fact", "asks": "money", "short": None},
        {"id": "x7", "question": "combien de candidatures", "sources": [], "answer_pattern": None,
         "kind": "out_of_scope", "asks": "number", "short": None, "near": False},
    ]
    path = tmp_path / "drafts.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in drafts), "utf-8")
    proc = subprocess.run([sys.executable, str(BENCH / "check_questions.py"), str(path)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 1
    reported = {line.split(": ")[1]: line for line in proc.stderr.splitlines()}
    assert set(reported) == {"x2", "x3", "x4", "x5", "x6", "x7"}, proc.stderr
    assert "not found" in reported["x2"] and "two sentences" in reported["x3"]
    assert "Jeanne Dupont" in reported["x4"] and "no sources" in reported["x5"]
    assert "no-such-article" in reported["x6"] and "same question as x1" in reported["x7"]


def test_the_places_list_leaves_out_the_words_our_articles_use() -> None:
    """`assistant/data/places.txt` (written by `bench/places.py` from GeoNames, CLDR and the
    French dictionary) holds the places a typed question may name, as `places_in` reads them:
    towns of France, countries and cities of the world in French; none whose only word the
    project's articles write as a common word in lower case ("vitré", "tours", "suisse"), and
    no arrondissement."""
    import places

    from assistant.text.analysis import data_lines
    from assistant.text.question import place_words

    names = [line.strip() for line in data_lines("places.txt")]
    assert len(names) > 2500 and {"limoges", "clermont ferrand", "la rochelle", "caen",
                                  "lisbonne", "tel aviv", "estonie", "guingamp"} <= set(names)
    assert all(name == places.key(name) for name in names)  # as `places_in` compares them
    common = places.common_words(places.ARTICLES)
    assert {"vitre", "tours", "sens", "suisse"} <= common
    assert not [n for n in names if all(w in common for w in place_words(n))]
    assert not [n for n in names if any(ch.isdigit() for ch in n)]


def test_the_places_builder_leaves_out_common_words(tmp_path: Path) -> None:
    """`bench/places.py`'s filters on a hand-made dictionary: a word the articles write in lower
    case is no place; a country or a city of CLDR is none where the dictionary has it as a word
    other than a noun ("sale"), a city of the dictionary's proper nouns none where it has it at
    all ("chine" as a noun), a small town none where its stem is a common word's ("contes")."""
    import places

    dic = tmp_path / "fr.dic"
    dic.write_text("5\nsale/S. po:adj\nchine/S. po:nom\nconte/S. po:nom\nLisbonne po:npr\n"
                   "Massimo po:prn\n", "utf-8")
    dictionary = places.Dictionary(dic)
    assert dictionary.proper == {"Lisbonne"}  # a first name is no place
    common = {"vitre", "maison", "blanche"}
    assert not places.kept("vitre", common)
    assert not places.kept("maison blanche", common) and places.kept("la rochelle", common)
    assert not places.kept("sale", common, dictionary)
    assert places.kept("chine", common, dictionary)
    assert not places.kept("chine", common, dictionary, nouns=True)
    stems = places.stems(set(dictionary.lower))
    assert not places.kept("contes", common, dictionary, nouns=True, common_stems=stems)
    assert places.kept("mazamet", common, dictionary, nouns=True, common_stems=stems)
    assert places.key("Clermont-Ferrand") == "clermont ferrand"
    assert places.key("Côte d’Ivoire") == "cote d ivoire"
