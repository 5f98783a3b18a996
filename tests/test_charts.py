"""The benchmarks' charts (bench/charts.py): real matplotlib, headless, on small JSON fixtures
cut from real runs (tests/data/bench/). Valid SVGs come out, the same bytes twice, a missing or
older result is skipped or drawn with what it has, and each chart sits under its table."""

from __future__ import annotations

import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import charts  # noqa: E402  (bench/ is not a package)

FIXTURES = ROOT / "tests" / "data" / "bench"
SVG = "{http://www.w3.org/2000/svg}svg"
EXPECTED = {"quality-by-kind": ("Quality by kind of question", "held out", "paraphrase"),
            "query-latency": ("Query latency", "search, cold", "ask, repeated"),
            "update-cost": ("Update cost", "Index size", "add 1 article"),
            "memory": ("Peak memory", "serving target", "import assistant")}


def _texts(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag == SVG, f"{path.name} is not an SVG"
    return " ".join(" ".join(el.itertext()) for el in root.iter())


def test_every_chart_from_the_fixtures(tmp_path: Path) -> None:
    written = charts.draw_all(FIXTURES, tmp_path / "charts")
    assert set(written) == set(EXPECTED) == {c.name for c in charts.CHARTS_DRAWN}
    for name, words in EXPECTED.items():
        path = tmp_path / "charts" / f"{name}.svg"
        assert written[name] == path and path.stat().st_size > 5_000
        text = _texts(path)
        for word in (*words, "2026-01-01 00:00"):  # the run the chart comes from is named
            assert word in text, f"{name}.svg lacks {word!r}"


def test_same_results_same_bytes(tmp_path: Path) -> None:
    first = charts.draw_all(FIXTURES, tmp_path / "a")
    second = charts.draw_all(FIXTURES, tmp_path / "b")
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
        assert b"<dc:date>" not in path.read_bytes()


def test_a_missing_benchmark_keeps_its_old_chart(tmp_path: Path) -> None:
    out, drawn = tmp_path / "out", tmp_path / "charts"
    out.mkdir()
    drawn.mkdir()
    shutil.copy(FIXTURES / "quality.json", out)
    (drawn / "memory.svg").write_text("<svg>old</svg>", encoding="utf-8")
    assert set(charts.draw_all(out, drawn)) == {"quality-by-kind"}
    assert (drawn / "memory.svg").read_text(encoding="utf-8") == "<svg>old</svg>"
    (out / "speed.json").write_text(json.dumps({"machine": {}}), encoding="utf-8")  # no numbers
    assert set(charts.draw_all(out, drawn)) == {"quality-by-kind"}


def test_an_older_speed_result_still_draws(tmp_path: Path) -> None:
    """A speed.json from before the per-call latencies and the index sizes were recorded: the
    latency chart shows p50 to p95, the update chart has no size panel."""
    data = json.loads((FIXTURES / "speed.json").read_text(encoding="utf-8"))
    for value in data["latency"].values():
        if isinstance(value, dict):
            value.pop("all_ms", None)
    for row in data["incremental"]:
        row.pop("index_mb")
    out = tmp_path / "out"
    out.mkdir()
    (out / "speed.json").write_text(json.dumps(data), encoding="utf-8")
    written = charts.draw_all(out, tmp_path / "charts")
    assert set(written) == {"query-latency", "update-cost", "memory"}
    assert "Index size" not in _texts(written["update-cost"])


def test_each_chart_goes_under_its_table(tmp_path: Path) -> None:
    for name in ("quality-by-kind", "query-latency"):
        (tmp_path / f"{name}.svg").write_text("<svg/>", encoding="utf-8")
    body = ("Measured on …\n\n### Retrieval and answer quality (62 dev questions)\n\n| a |\n\n"
            "### Fusion weights\n\n| b |\n\n### Incremental update\n\n| c |\n\n#### Reproduce\n")
    placed = charts.place(body, tmp_path)
    quality = "![Quality by kind of question, dev and held-out questions side by side]" \
              "(charts/quality-by-kind.svg)"
    assert placed.index("| a |") < placed.index(quality) < placed.index("### Fusion weights")
    assert "query-latency" not in placed  # its table is not in this run
    assert "update-cost" not in placed  # its table is, its SVG is not
    assert charts.place(placed, tmp_path) == placed  # placed once


def test_the_benchmarks_page_shows_the_committed_charts() -> None:
    page = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]*\]\((charts/[^)]+\.svg)\)", page)
    assert len(shown) >= 3
    for relative in shown:
        _texts(ROOT / "docs" / relative)  # exists, and is an SVG
