"""HTML of the Corpus tab's timeline: one bar per month or year, undated articles apart. Pure
functions, no Gradio.

    <div class="timeline"> <div class="timeline-bars">
      <button type="button" class="timeline-bar" value="2020-10" aria-pressed="false" ...>
        <span class="timeline-count">2</span> <span class="timeline-fill" style="height: 100%">
        </span> <span class="timeline-label">oct. 2020</span> </button> ...
      <button type="button" class="timeline-bar undated" value="sans-date" ...>...</button>
    </div> <p class="timeline-summary">...</p> </div>

A click on a bar is read by the page script (`assets.JS`), which asks the server for that
period's articles. Every text is escaped; the only markup is written here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from assistant.timeline import UNDATED, Scale, Timeline, in_period

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
          "octobre", "novembre", "décembre")
SHORT_MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.",
                "oct.", "nov.", "déc.")
EMPTY = '<p class="timeline-empty">Aucun article dans l\'index.</p>'


def period_name(period: str, *, short: bool = False) -> str:
    """"2020-10" -> "octobre 2020" ("oct. 2020" short), "2020" -> "2020", undated -> "Sans
    date"."""
    if period == UNDATED:
        return "Sans date"
    if len(period) == 7:
        names = SHORT_MONTHS if short else MONTHS
        return f"{names[int(period[5:]) - 1]} {period[:4]}"
    return period


def articles_text(n: int) -> str:
    """"aucun article", "1 article", "3 articles"."""
    return "aucun article" if n == 0 else f"{n} article{'s' if n > 1 else ''}"


def timeline_html(timeline: Timeline, scale: Scale, selected: str = "") -> str:
    """The chart of `timeline` at `scale`, the bar of period `selected` pressed."""
    periods = timeline.periods(scale)
    if not periods and not timeline.undated:
        return EMPTY
    highest = max([n for _, n in periods] + [timeline.undated, 1])
    bars = [_bar(period, n, highest, selected) for period, n in periods]
    if timeline.undated:
        bars.append(_bar(UNDATED, timeline.undated, highest, selected, extra=" undated"))
    unit = "mois" if scale == "month" else "année"
    return (f'<div class="timeline" role="group" aria-label="Articles par {unit}">'
            f'<div class="timeline-bars">{"".join(bars)}</div>'
            f'<p class="timeline-summary">{html.escape(summary(timeline))}</p></div>')


def _bar(period: str, n: int, highest: int, selected: str, extra: str = "") -> str:
    name = period_name(period)
    title = f"{name} : {articles_text(n)}"
    pressed = "true" if period == selected else "false"
    disabled = " disabled" if n == 0 else ""
    height = round(100 * n / highest)
    return (f'<button type="button" class="timeline-bar{extra}" value="{html.escape(period)}" '
            f'aria-pressed="{pressed}" title="{html.escape(title)}" '
            f'aria-label="{html.escape(title)}"{disabled}>'
            f'<span class="timeline-count">{n or ""}</span>'
            f'<span class="timeline-fill" style="height: {height}%"></span>'
            f'<span class="timeline-label">{html.escape(period_name(period, short=True))}'
            '</span></button>')


def summary(timeline: Timeline) -> str:
    """"5 articles datés, d'avril 2015 à octobre 2020 ; 3 sans date."""
    parts = []
    if timeline.by_month:
        first, last = next(iter(timeline.by_month)), next(reversed(timeline.by_month))
        span = (f"en {period_name(first)}" if first == last
                else f"{of_period(first)} à {period_name(last)}")
        parts.append(f"{articles_text(timeline.dated)} daté{'s' if timeline.dated > 1 else ''}, "
                     f"{span}")
    if timeline.undated:
        parts.append(f"{timeline.undated} sans date")
    return " ; ".join(parts) + "."


def select_articles(articles: Sequence[dict[str, Any]], period: str) -> list[dict[str, Any]]:
    """The articles of `period` ("" or an unknown period: all of them)."""
    if not period:
        return list(articles)
    return [a for a in articles if in_period(a.get("date"), period)]


def selection_note(period: str, shown: int) -> str:
    """Markdown above the table when a bar filters it."""
    if not period:
        return ""
    where = "sans date" if period == UNDATED else of_period(period)
    return (f"**{html.escape(articles_text(shown))} {html.escape(where)}** : cliquez de nouveau "
            "sur la barre, ou sur « Tous les articles », pour les revoir tous.")


def of_period(period: str) -> str:
    """"d'octobre 2020", "de mars 2021", "de 2020"."""
    name = period_name(period)
    return f"d'{name}" if name[0] in "aeiouéèêâ" else f"de {name}"
