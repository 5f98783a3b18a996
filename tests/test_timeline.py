"""The corpus in time: months and years of the articles, the chart's HTML, `index status`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, Settings
from assistant.cli import main
from assistant.core import index_status
from assistant.index.builder import build
from assistant.timeline import UNDATED, Timeline, in_period, period_of, valid_period

from .conftest import ROOT

DATED = {  # file -> front matter date (None: undated)
    "campus-epinal.md": "2021-05-03",
    "fablab-lens.md": "2021-05-20",
    "pepiniere-arras.md": "2021-07-01",
    "labo-quimper.md": "2023-02-14",
}


def dated_article(title: str, date: str | None) -> str:
    head = f"---\ntitle: {title}\n" + (f"date: {date}\n" if date else "") + "---\n"
    return head + f"{title} accueille des jeunes pousses du numérique dans un tiers-lieu.\n"


def write_dated(corpus: Path) -> None:
    for name, date in DATED.items():
        (corpus / name).write_text(dated_article(name.removesuffix(".md"), date),
                                   encoding="utf-8")


def test_timeline_counts_months_and_undated() -> None:
    line = Timeline.of(["2021-05-03", "2021-05-20", None, "2021-07-01", "n'importe", "2023-02-14",
                        "2021-13-01"])
    assert line.by_month == {"2021-05": 2, "2021-07": 1, "2023-02": 1}
    assert line.undated == 3 and line.dated == 4
    assert line.periods("year") == [("2021", 3), ("2022", 0), ("2023", 1)]
    months = line.periods("month")
    assert months[:3] == [("2021-05", 2), ("2021-06", 0), ("2021-07", 1)]
    assert months[-1] == ("2023-02", 1) and len(months) == 22  # every month, gaps included
    assert line.default_scale() == "month" and line.default_scale(max_months=12) == "year"
    assert Timeline.of([None]).periods("month") == []


def test_periods() -> None:
    assert period_of("2020-10-01") == "2020-10" and period_of("2020-10-01", "year") == "2020"
    assert period_of(None) is None and period_of("2020-00-01") is None
    assert in_period("2020-10-01", "2020-10") and in_period("2020-10-01", "2020")
    assert not in_period("2020-10-01", "2020-11") and not in_period(None, "2020")
    assert in_period(None, UNDATED) and not in_period("2020-10-01", UNDATED)
    for bad in ("2020-13", "2020-1", "<b>", "", "2020-10-01"):
        assert valid_period(bad) == "" and not in_period("2020-10-01", bad)
    assert valid_period("2020") == "2020" and valid_period(UNDATED) == UNDATED


def test_timeline_html_is_escaped_and_marks_the_selection() -> None:
    from ui.timeline import select_articles, selection_note, timeline_html

    line = Timeline.of(["2020-10-01", "2020-10-15", "2021-04-02", None])
    chart = timeline_html(line, "month", "2020-10")
    assert chart.count('class="timeline-bar"') == 7 and 'class="timeline-bar undated"' in chart
    assert 'value="2020-10" aria-pressed="true"' in chart
    assert 'title="octobre 2020 : 2 articles"' in chart and ">oct. 2020<" in chart
    assert 'value="2020-11" aria-pressed="false" title="novembre 2020 : aucun article"' in chart
    assert chart.count(" disabled>") == 5  # empty months cannot be clicked
    assert "3 articles datés, d&#x27;octobre 2020 à avril 2021 ; 1 sans date." in chart
    articles = [{"source": "<img src=x>.md", "date": "2020-10-01"}, {"source": "b.md"}]
    assert select_articles(articles, "2020") == articles[:1]
    assert select_articles(articles, UNDATED) == articles[1:]
    assert select_articles(articles, "") == articles
    assert selection_note("2020-10", 1).startswith("**1 article d&#x27;octobre 2020**")
    assert selection_note(UNDATED, 2).startswith("**2 articles sans date**")
    assert "Aucun article" in timeline_html(Timeline.of([]), "year")


def test_corpus_view_filters_by_period(make_corpus: Callable[..., Settings],
                                       embedder: Any) -> None:
    from ui.chat import make_handlers

    settings = make_corpus(seeds=False)
    write_dated(settings.corpus_dir)
    shutil.copy(ROOT / "corpus" / "lorntech-sillon-lorrain.txt", settings.corpus_dir)
    build(settings, lambda: embedder, progress=False)
    view = make_handlers(Assistant.load(settings, embedder=embedder), settings)["corpus_view"]
    status, chart, rows, note, _, _, period = view()
    assert "Articles** : 5" in status and len(rows) == 5 and note == "" and period == ""
    assert 'aria-label="Articles par mois"' in chart  # 22 months: by month by default
    _, chart, rows, note, _, _, period = view("year", "2021")
    assert sorted(r[3] for r in rows) == ["campus-epinal.md", "fablab-lens.md",
                                          "pepiniere-arras.md"]
    assert period == "2021" and note.startswith("**3 articles de 2021**")
    assert 'value="2021" aria-pressed="true"' in chart
    _, _, rows, _, _, _, _ = view("month", UNDATED)
    assert [r[3] for r in rows] == ["lorntech-sillon-lorrain.txt"]
    _, _, rows, note, _, _, period = view("month", "<script>")  # not a period: everything
    assert len(rows) == 5 and note == "" and period == ""


def test_index_status_by_month(make_corpus: Callable[..., Settings], embedder: Any,
                               capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_corpus()  # the five seed articles: one dated (2020-10-01)
    write_dated(settings.corpus_dir)
    build(settings, lambda: embedder, progress=False)
    expected = {"2020-10": 1, "2021-05": 2, "2021-07": 1, "2023-02": 1}
    args = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    assert main(["index", "status", "--json", *args]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["by_month"] == expected and status["undated"] == 4
    assert list(status["by_month"]) == sorted(expected)  # in order
    assert main(["index", "status", *args]) == 0
    assert "2020-10: 1, 2021-05: 2, 2021-07: 1, 2023-02: 1" in capsys.readouterr().out
    served = Assistant.load(settings, embedder=embedder).status()  # the same, from the server
    assert (served["by_month"], served["undated"]) == (expected, 4)
    assert index_status(settings)["by_month"] == expected
