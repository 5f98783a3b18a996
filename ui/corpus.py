"""The "Corpus" tab: index status, the timeline, the indexed articles, uploads, and what the
corpus watcher (`assistant serve --watch`) indexed or refused.

The timeline shows the articles per month or per year (undated ones apart); a click on a bar
lists only that period's articles, a second click (or "Tous les articles") lists them all again.
With a watcher, the page asks every `WATCH_POLL_S` seconds whether it updated the index, and if
so refreshes the tab (and the chat's article filter) and says what happened.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from assistant.config import Settings
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.index.watch import CorpusWatcher, WatchEvent
from assistant.ingest.corpus import SUFFIXES
from assistant.timeline import SCALES, Timeline, valid_period

from . import render, timeline
from .assets import TIMELINE_REQUEST_JS

WATCH_POLL_S = 2.0
WATCH_SHOWN = 5  # latest watcher updates shown
WATCH_ON = ("**Surveillance du corpus active :** les articles copiés, modifiés ou supprimés dans "
            "le dossier du corpus sont indexés automatiquement, sans redémarrage.")
SCALE_CHOICES = [("Par mois", "month"), ("Par année", "year")]
UNAVAILABLE = "**Index indisponible :** {}"
View = tuple[str, str, list[list[Any]], str, Any, Any, str]


def corpus_handlers(assistant: Assistant, settings: Settings,
                    watcher: CorpusWatcher | None = None) -> dict[str, Any]:
    """The functions behind the Corpus tab's events, bound to one assistant."""

    def corpus_view(scale: str | None = None, period: str | None = "") -> View:
        """Index status (Markdown), timeline (HTML) at `scale` (None: the corpus's default),
        the articles of `period` ("": all), the note saying which, the "all articles" button,
        the scale shown and the period kept."""
        try:
            status, articles = assistant.status(), assistant.articles()
        except AssistantError as exc:
            return (UNAVAILABLE.format(html.escape(str(exc))), timeline.EMPTY, [], "",
                    gr.Button(visible=False), gr.Radio(), "")
        line = Timeline.of(a.get("date") for a in articles)
        chosen = scale if scale in SCALES else line.default_scale()
        period = valid_period(period or "")
        shown = timeline.select_articles(articles, period)
        return (render.status_markdown(status), timeline.timeline_html(line, chosen, period),
                render.article_rows(shown), timeline.selection_note(period, len(shown)),
                gr.Button(visible=bool(period)), gr.Radio(value=chosen), period)

    def watch_notice() -> str:
        """What the watcher did lately (Markdown), newest first."""
        if watcher is None:
            return ""
        return watch_markdown(watcher.events()[:WATCH_SHOWN])

    def watch_tick(seen: int | None, scale: str | None, period: str | None) -> tuple[Any, ...]:
        """Every `WATCH_POLL_S`: nothing while the watcher did nothing new, else its notice,
        the tab and the chat's article filter refreshed."""
        count = watcher.count if watcher is not None else 0
        if count == seen:
            return tuple(gr.skip() for _ in range(10))
        return (count, watch_notice(), *corpus_view(scale, period),
                gr.Dropdown(choices=article_choices(assistant)))

    return {"corpus_view": corpus_view, "watch_notice": watch_notice, "watch_tick": watch_tick}


def article_choices(assistant: Assistant) -> list[tuple[str, str]]:
    """(label, source) of every indexed article, for the article filter; [] without an index."""
    try:
        articles = assistant.articles()
    except AssistantError:
        return []
    return [(f"{a['source']} ({a['date']})" if a.get("date") else str(a["source"]),
             str(a["source"])) for a in articles]


def watch_markdown(events: Sequence[WatchEvent]) -> str:
    """The watcher's notice: that it is on, then one line per update (names and reasons
    escaped)."""
    lines = [WATCH_ON]
    for event in events:
        text = event.summary(name=_code, text=html.escape)
        lines.append(f"- **{event.at}** — {text}")
    return "\n".join(lines)


def _code(name: str) -> str:
    """`name` as Markdown code (shown as is)."""
    return "`" + name.replace("`", "'") + "`"


def corpus_tab(handlers: dict[str, Any], settings: Settings, demo: gr.Blocks,
               watching: bool, article_filter: gr.Dropdown) -> gr.Dataframe:
    """The tab's components and events; returns the article table (opened in the reader)."""
    gr.Markdown("## Index")
    status = gr.Markdown(elem_id="index-status")
    notice = gr.Markdown(handlers["watch_notice"]() if watching else "", elem_id="watch-notice",
                         visible=watching)
    gr.Markdown("## Chronologie\nArticles par date de publication ; cliquez sur une barre pour "
                "ne lister que ses articles.")
    scale = gr.Radio(SCALE_CHOICES, value=None, show_label=False, elem_id="timeline-scale")
    chart = gr.HTML(timeline.EMPTY, elem_id="timeline")
    gr.Markdown("## Articles indexés\nCliquez sur un article pour le lire.")
    with gr.Row(equal_height=True):
        note = gr.Markdown(elem_id="timeline-selection")
        show_all = gr.Button("Tous les articles", size="sm", visible=False, scale=0,
                             elem_id="timeline-all")
    table = gr.Dataframe(headers=render.ARTICLE_HEADERS, datatype=["str", "str", "number", "str"],
                         interactive=False, elem_id="articles", wrap=True,
                         column_widths=["52%", "13%", "9%", "26%"])
    refresh = gr.Button("Actualiser", size="sm")
    period = gr.Textbox(visible="hidden", elem_id="timeline-period")  # the period listed
    opener = gr.Button(visible="hidden", elem_id="timeline-open")  # clicked by the page script
    view = [status, chart, table, note, show_all, scale, period]
    hidden: dict[str, Any] = {"api_visibility": "undocumented", "queue": False,
                              "show_progress": "hidden"}
    demo.load(handlers["corpus_view"], None, view, **hidden)
    refresh.click(handlers["corpus_view"], [scale, period], view, **hidden)
    scale.input(handlers["corpus_view"], [scale], view, **hidden)  # a new scale: all articles
    show_all.click(handlers["corpus_view"], [scale], view, **hidden)
    opener.click(handlers["corpus_view"], [scale, period], view, js=TIMELINE_REQUEST_JS,
                 **hidden)
    if watching:
        seen = gr.State(0)
        gr.Timer(WATCH_POLL_S).tick(handlers["watch_tick"], [seen, scale, period],
                                    [seen, notice, *view, article_filter], **hidden)
    if settings.upload_enabled:
        _uploads(handlers, settings, [status, table], lambda event: event.then(
            handlers["corpus_view"], [scale, period], view, **hidden))
    return table


def _uploads(handlers: dict[str, Any], settings: Settings, outputs: list[Any],
             then: Callable[[Any], Any]) -> None:
    gr.Markdown("## Ajouter des articles")
    kinds = ", ".join(sorted(set(SUFFIXES)))
    files = gr.File(label=f"Fichiers ({kinds} ; {render.human_size(settings.max_upload_bytes)} "
                          "maximum chacun)", file_count="multiple",
                    elem_id="upload")
    add = gr.Button("Ajouter au corpus et mettre à jour l'index", variant="primary",
                    elem_id="upload-button")
    result = gr.Markdown(elem_id="upload-result")
    then(add.click(handlers["upload"], [files], [result, *outputs, files], api_name="upload",
                   concurrency_limit=1, concurrency_id="upload"))
