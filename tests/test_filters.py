"""Filters by article and date, end to end: Python API, CLI, HTTP API, MCP, LangChain, chat."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from assistant import Assistant, QuestionError, Settings
from assistant.index.builder import build
from assistant.search.filters import Filters, select

from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = GRADIO_WARNINGS

SURFACE = "Quelle est la surface de la Serre numérique de Valenciennes ?"
SERRE = "serre-numerique-valenciennes.txt"  # the one dated seed: 2020-10-01
LOUVRE = "louvre-lens-vallee-cluster-numerique.txt"
LORNTECH = "lorntech-sillon-lorrain.txt"
UNDATED_SEEDS = 4
QUIMPER = """\
---
title: Le Cabestan, tiers-lieu numérique de Quimper
date: 2015-04-09
---
Le Cabestan ouvre ses portes à Quimper. Ce tiers-lieu numérique de 800 m² réunit un espace de
coworking, un atelier de fabrication et une salle de formation aux métiers du code. La
communauté d'agglomération de Quimper a financé les travaux de rénovation de l'ancienne
corderie du port, où le Cabestan s'installe au bord de l'Odet.
"""
RENNES = """\
---
title: La Ruche d'Ille, incubateur de Rennes
date: 12 mars 2023
---
La Ruche d'Ille, l'incubateur numérique de Rennes, accueille désormais 25 start-up dans ses
locaux du quartier de la gare. Ses fondateurs y accompagnent des jeunes pousses de la
cybersécurité et de la santé connectée pendant dix-huit mois, avec un programme de mentorat
assuré par des dirigeants d'entreprises bretonnes.
"""
RUCHE = "Combien de start-up accueille la Ruche d'Ille à Rennes ?"


def sources_of(passages: list[Any]) -> set[str]:
    return {p.source for p in passages}


# -- Python API on the seed index -----------------------------------------------------------------
def test_article_filter_keeps_to_the_chosen_articles(seed_assistant: Assistant) -> None:
    """The best passages of the question are in the Serre article; filtered, none of it."""
    assert seed_assistant.search(SURFACE, k=3)[0].source == SERRE
    found = seed_assistant.search(SURFACE, k=5, sources=[LOUVRE, "lorntech-sillon-lorrain"])
    assert len(found) == 5 and sources_of(found) <= {LOUVRE, LORNTECH}  # stem or file name
    assert sources_of(seed_assistant.search(SURFACE, k=50, sources=[LOUVRE])) == {LOUVRE}

    answer = seed_assistant.ask(SURFACE, sources=[LOUVRE])
    assert sources_of(answer.citations) | sources_of(answer.leads) <= {LOUVRE}
    assert answer.citations or answer.leads
    assert not re.search(r"17[\s\u00a0\u202f.]?000", answer.text)  # the Serre's surface


def test_a_filter_letting_everything_through_changes_nothing(seed_assistant: Assistant) -> None:
    every = [a["source"] for a in seed_assistant.articles()]
    for question in (SURFACE, "Qui dirige la Louvre Lens Vallée ?", "What is LORnTECH?"):
        plain = seed_assistant.search(question, k=8)
        assert seed_assistant.search(question, k=8, sources=every) == plain
    assert seed_assistant.selection(sources=every) is not None
    assert seed_assistant.selection() is None


def test_date_filters_on_the_seeds(seed_assistant: Assistant) -> None:
    """Only the Serre article has a date (2020-10-01): bounds are inclusive, undated articles
    are left out and the answer says so."""
    for since, until in (("2020-01-01", None), ("2020-10-01", "2020-10-01"), (None, "2030-12-31")):
        found = seed_assistant.search("Louvre Lens Vallée", k=5, since=since, until=until)
        assert found and sources_of(found) == {SERRE}
    answer = seed_assistant.ask(SURFACE, since="2020-01-01")
    assert answer.in_corpus and sources_of(answer.citations) == {SERRE}
    assert answer.notice == f"{UNDATED_SEEDS} articles sans date exclus par le filtre de dates"
    selection = seed_assistant.selection(sources=[SERRE, LOUVRE], since="2020-01-01")
    assert selection is not None and selection.sources == (SERRE,)
    assert selection.notice == "1 article sans date exclu par le filtre de dates"
    assert seed_assistant.ask(SURFACE, sources=[SERRE]).notice is None  # no date filter


def test_a_filter_that_matches_nothing_is_an_error(seed_assistant: Assistant) -> None:
    with pytest.raises(QuestionError, match=r"Aucun article ne correspond au filtre "
                                            r"\(jusqu'au 2020-09-30 ; 4 articles sans date"):
        seed_assistant.search(SURFACE, until="2020-09-30")
    with pytest.raises(QuestionError, match="Aucun article ne correspond"):
        seed_assistant.ask(SURFACE, sources=[LOUVRE], since="2000-01-01")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"since": "2020-13-01"}, "Date invalide pour « depuis » : « 2020-13-01 »"),
    ({"until": "01/10/2020"}, "Date invalide pour « jusqu'au ».*AAAA-MM-JJ"),
    ({"since": "2020-2-1"}, "AAAA-MM-JJ"),
    ({"since": "2021-01-01", "until": "2020-01-01"}, "Période vide"),
    ({"sources": ["serre"]}, "Article inconnu.*« serre ».*proches.*" + re.escape(SERRE)),
    ({"sources": ["lorntek.txt", "nulle-part"]}, "Articles inconnus.*" + re.escape(LORNTECH)),
    ({"sources": SERRE}, "liste de noms"),
])
def test_bad_filters_are_explained(seed_assistant: Assistant, kwargs: dict[str, Any],
                                   message: str) -> None:
    with pytest.raises(QuestionError, match=message):
        seed_assistant.search(SURFACE, **kwargs)
    with pytest.raises(QuestionError, match=message):
        seed_assistant.ask(SURFACE, **kwargs)


def test_selection_rules() -> None:
    dates = {"a.txt": "2015-04-09", "dir/b.md": None, "b.txt": "2023-03-12"}
    assert select(Filters.parse(["dir/b"]), dates).sources == ("dir/b.md",)
    assert select(Filters.parse(["b"]), dates).sources == ("b.txt",)  # a stem is a name
    assert select(Filters.parse(since="2015-04-09"), dates).sources == ("a.txt", "b.txt")
    assert select(Filters.parse(since="2015-04-10"), dates).undated == 1
    assert not Filters.parse([], "", None)  # blank values: no filter
    assert Filters.parse([" a.txt ", "a.txt"]).sources == ("a.txt",)


# -- dates from front matter ----------------------------------------------------------------------
def test_front_matter_dates(make_corpus: Callable[..., Settings], embedder: Any) -> None:
    settings = make_corpus()
    (settings.corpus_dir / "cabestan-quimper.md").write_text(QUIMPER, encoding="utf-8")
    (settings.corpus_dir / "ruche-rennes.md").write_text(RENNES, encoding="utf-8")
    build(settings, lambda: embedder, progress=False)
    bot = Assistant.load(settings, embedder=embedder)
    dates = {a["source"]: a["date"] for a in bot.articles()}
    assert dates["cabestan-quimper.md"] == "2015-04-09" and dates["ruche-rennes.md"] == "2023-03-12"

    answer = bot.ask(RUCHE, since="2023-01-01")
    assert answer.in_corpus and re.search(r"\b25\b", answer.text), answer.text
    assert sources_of(answer.citations) == {"ruche-rennes.md"}
    assert answer.notice == f"{UNDATED_SEEDS} articles sans date exclus par le filtre de dates"

    older = bot.search(RUCHE, k=10, until="2020-12-31")
    assert sources_of(older) == {"cabestan-quimper.md", SERRE}
    between = bot.search(RUCHE, k=10, since="2015-01-01", until="2022-12-31")
    assert sources_of(between) == {"cabestan-quimper.md", SERRE}
    refused = bot.ask(RUCHE, until="2020-12-31")
    assert "ruche-rennes.md" not in sources_of(refused.citations) | sources_of(refused.leads)
    named = bot.search(RUCHE, k=3, sources=["cabestan-quimper"], since="2015-04-09")
    assert sources_of(named) == {"cabestan-quimper.md"}


# -- the command line -----------------------------------------------------------------------------
def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("assistant")
    return subprocess.run(
        [str(exe), *args, "--corpus", str(settings.corpus_dir), "--index",
         str(settings.index_dir)], capture_output=True, text=True, timeout=300,
        env=dict(os.environ),
    )


def test_cli_filters(seed_settings: Settings) -> None:
    out = _cli(seed_settings, "search", SURFACE, "--json", "-k", "4", "--source", LOUVRE,
               "--source", "lorntech-sillon-lorrain")
    assert out.returncode == 0, out.stderr
    assert {p["source"] for p in json.loads(out.stdout)} <= {LOUVRE, LORNTECH}

    out = _cli(seed_settings, "ask", SURFACE, "--json", "--since", "2020-01-01")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert {p["source"] for p in answer["citations"]} == {SERRE}
    assert "sans date exclus" in answer["notice"]

    out = _cli(seed_settings, "search", SURFACE, "--until", "2019-12-31")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("Erreur : Aucun article ne correspond au filtre")
    out = _cli(seed_settings, "ask", SURFACE, "--since", "hier")
    assert out.returncode == 1 and "AAAA-MM-JJ" in out.stderr


# -- HTTP API, MCP, chat on one served app --------------------------------------------------------
@pytest.fixture(scope="module")
def served(seed_settings: Settings, seed_assistant: Assistant) -> Iterator[str]:
    with running_app(seed_settings, seed_assistant) as url:
        yield url


def test_http_api_filters(served: str) -> None:
    with httpx.Client(base_url=served, timeout=60) as api:
        found = api.post("/api/search", json={"question": SURFACE, "k": 4, "sources": [LOUVRE]})
        assert found.status_code == 200
        assert {p["source"] for p in found.json()} == {LOUVRE}
        dated = api.post("/api/ask", json={"question": SURFACE, "since": "2020-01-01",
                                           "until": "2020-12-31"})
        assert dated.status_code == 200
        assert {p["source"] for p in dated.json()["citations"]} == {SERRE}
        assert "4 articles sans date" in dated.json()["notice"]

        bad = api.post("/api/search", json={"question": SURFACE, "since": "2020-02-30"})
        assert bad.status_code == 422
        assert "Date invalide pour « depuis »" in bad.json()["message"]
        bad = api.post("/api/ask", json={"question": SURFACE, "sources": "serre"})
        assert bad.status_code == 422 and "liste de noms" in bad.json()["message"]
        unknown = api.post("/api/search", json={"question": SURFACE, "sources": ["serre"]})
        assert unknown.status_code == 422 and SERRE in unknown.json()["detail"]
        empty = api.post("/api/ask", json={"question": SURFACE, "until": "2000-01-01"})
        assert empty.status_code == 422
        assert empty.json()["detail"].startswith("Aucun article ne correspond")
        schema = api.get("/openapi.json").json()["components"]["schemas"]
        assert {"sources", "since", "until"} <= set(schema["AskRequest"]["properties"])


def test_mcp_tools_take_filters(served: str) -> None:
    from mcp import Client

    async def session() -> None:
        with anyio.fail_after(300):
            async with Client(f"{served}/mcp", read_timeout_seconds=120) as client:
                tools = {t.name: t for t in (await client.list_tools()).tools}
                for tool in tools.values():
                    assert {"sources", "since", "until"} <= set(tool.input_schema["properties"])
                found = await client.call_tool("search", {"question": SURFACE, "k": 3,
                                                          "sources": [LORNTECH]})
                assert not found.is_error, found.content
                result = found.structured_content or {}
                assert {p["source"] for p in result["passages"]} == {LORNTECH}
                dated = await client.call_tool("search", {"question": SURFACE,
                                                          "since": "2020-01-01"})
                assert "sans date" in (dated.structured_content or {})["notice"]
                answered = await client.call_tool("ask", {"question": SURFACE,
                                                          "since": "2020-01-01"})
                answer = answered.structured_content or {}
                assert {p["source"] for p in answer["citations"]} == {SERRE}
                refused = await client.call_tool("ask", {"question": SURFACE,
                                                         "until": "2020-9-30"})
                assert refused.is_error and "AAAA-MM-JJ" in refused.content[0].text

    anyio.run(session)


def test_chat_filters(served: str, seed_settings: Settings, seed_assistant: Assistant) -> None:
    from gradio_client import Client

    from ui import render
    from ui.chat import article_choices, make_handlers

    assert (f"{SERRE} (2020-10-01)", SERRE) in article_choices(seed_assistant)
    client = Client(served, verbose=False, download_files=False)
    html = client.predict(SURFACE, 5, "extractive", [LOUVRE], "", "", api_name="/chat")
    assert not render.is_error(html) and SERRE not in html and LOUVRE in html
    chat = make_handlers(seed_assistant, seed_settings)["chat"]
    *_, html = chat(SURFACE, [], 5, "extractive", [], "2020-01-01", "")
    assert SERRE in html and "sans date exclus" in html
    *_, html = chat(SURFACE, [], 5, "extractive", [], "1er janvier", "")
    assert render.is_error(html) and "AAAA-MM-JJ" in html
    passages = client.predict(SURFACE, 2, [LORNTECH], None, None, api_name="/search")
    assert {p["source"] for p in passages} == {LORNTECH}


def test_openai_api_takes_filters_as_extra_body(served: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{served}/v1", api_key="cle", max_retries=0, timeout=120)
    messages: Any = [{"role": "user", "content": SURFACE}]
    done = client.chat.completions.create(model="assistant", messages=messages,
                                          extra_body={"since": "2020-01-01"})
    citations = (done.model_extra or {})["citations"]
    assert citations and {p["source"] for p in citations} == {SERRE}
    stream = client.chat.completions.create(model="assistant", messages=messages, stream=True,
                                            extra_body={"sources": [LOUVRE]})
    last = [chunk for chunk in stream][-1]
    assert {p["source"] for p in (last.model_extra or {})["citations"]} <= {LOUVRE}
    with pytest.raises(openai.APIStatusError, match="Aucun article ne correspond"):
        client.chat.completions.create(model="assistant", messages=messages,
                                       extra_body={"until": "2000-01-01"})
    with pytest.raises(openai.APIStatusError, match="AAAA-MM-JJ"):  # before the stream starts
        client.chat.completions.create(model="assistant", messages=messages, stream=True,
                                       extra_body={"since": "hier"})


# -- LangChain ------------------------------------------------------------------------------------
def test_langchain_filters(backend_assistant: Assistant) -> None:
    seed_assistant = backend_assistant
    from pydantic import ValidationError

    from assistant.langchain import AssistantRetriever

    retriever = AssistantRetriever(assistant=seed_assistant, k=3,
                                   search_kwargs={"sources": [LOUVRE]})
    docs = retriever.invoke(SURFACE)
    assert len(docs) == 3 and {d.metadata["source"] for d in docs} == {LOUVRE}
    docs = retriever.invoke(SURFACE, sources=[LORNTECH], k=2)  # the call's own filter wins
    assert len(docs) == 2 and {d.metadata["source"] for d in docs} == {LORNTECH}
    docs = AssistantRetriever(assistant=seed_assistant).invoke(SURFACE, since="2020-01-01")
    assert {d.metadata["source"] for d in docs} == {SERRE}
    docs = anyio.run(functools.partial(retriever.ainvoke, SURFACE, sources=[SERRE, LOUVRE],
                                       until="2020-12-31"))
    assert {d.metadata["source"] for d in docs} == {SERRE}  # the Louvre article is undated
    with pytest.raises(QuestionError, match="Aucun article"):
        retriever.invoke(SURFACE, since="2020-01-01")  # search_kwargs' Louvre is undated
    with pytest.raises(ValidationError, match="search_kwargs inconnus"):
        AssistantRetriever(assistant=seed_assistant, search_kwargs={"source": [SERRE]})
