"""The MCP server: tools `search` and `ask` over the assistant, on stdio or streamable HTTP.

    assistant mcp --index index --corpus corpus     # stdio, for Claude Desktop & co.
    http://HOST:7860/mcp                             # streamable HTTP, beside the chat and API

Built with the official `mcp` SDK (`MCPServer`, formerly FastMCP). Tools return structured
content (and the same JSON as text): `search` -> `{"passages": [...], "notice"}`, `ask` -> the
`/api/ask` answer (`answer` with `[n]` markers, `in_corpus`, `citations`, `notice`, `leads`);
each passage has source, title, start, end, text, score and chunk_id. Both take the optional
filters `sources`, `since`, `until` (see `assistant.search.filters`). A bad question or filter,
or an unavailable index, is a tool error with a French message. Calls share the concurrency gate of
`/api`.

No `from __future__ import annotations` here: the SDK reads the tools' annotations at runtime.
"""

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, HTTPException
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from assistant import __version__
from assistant.config import Settings
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.search.filters import MAX_SOURCES

from .api import MAX_K, AnswerOut, Gate, PassageOut

log = logging.getLogger(__name__)

NAME = "assistant"
MOUNT_PATH = "/mcp"
INSTRUCTIONS = (
    "Assistant de questions-réponses en français sur un corpus d'articles (écosystème de "
    "l'innovation numérique). `search` renvoie les passages les plus proches d'une question ; "
    "`ask` renvoie une réponse dont chaque [n] renvoie à citations[n-1] (fichier, titre, "
    "position du passage dans l'article)."
)
SEARCH_DESCRIPTION = (
    "Les passages du corpus les plus proches d'une question, avec leur fichier source, leur "
    "titre et leur position (start, end) dans le texte de l'article."
)
ASK_DESCRIPTION = (
    "Une réponse tirée des articles : [n] dans `answer` renvoie à citations[n-1] ; in_corpus "
    "est faux quand le corpus ne contient pas la réponse (leads : articles les plus proches)."
)
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                            open_world_hint=False)
T = TypeVar("T")
Question = Annotated[str, Field(description="question en français")]
K = Annotated[int, Field(ge=1, le=MAX_K, description="nombre de passages")]
Sources = Annotated[list[str] | None, Field(
    max_length=MAX_SOURCES, description="seulement ces articles : noms de fichiers du corpus, "
                                        "avec ou sans extension (absent : tous)")]
Since = Annotated[str | None, Field(description="seulement les articles datés de ce jour ou "
                                                "après (AAAA-MM-JJ ; sans date : exclus)")]
Until = Annotated[str | None, Field(description="seulement les articles datés de ce jour ou "
                                                "avant (AAAA-MM-JJ ; sans date : exclus)")]


class SearchOut(BaseModel):
    passages: list[PassageOut] = Field(description="du plus au moins pertinent")
    notice: str | None = Field(None, description="remarque sur le filtre (articles sans date "
                                                 "exclus)")


def build_server(assistant: Assistant, settings: Settings, gate: Gate) -> MCPServer:
    """An `MCPServer` with the tools `search` and `ask`, calling `assistant` through `gate`."""
    server: MCPServer[Any] = MCPServer(NAME, title="Assistant (corpus d'articles)",
                                  instructions=INSTRUCTIONS, version=__version__,
                                  log_level="WARNING")
    @server.tool(title="Rechercher des passages", annotations=READ_ONLY,
                 description=SEARCH_DESCRIPTION)
    async def search(question: Question, k: K = settings.k, sources: Sources = None,
                     since: Since = None, until: Until = None) -> SearchOut:
        def run() -> SearchOut:
            filters: dict[str, Any] = {"sources": sources, "since": since, "until": until}
            passages = assistant.search(question, k, **filters)
            selection = assistant.selection(**filters)
            return SearchOut(passages=[PassageOut(**p.to_dict()) for p in passages],
                             notice=selection.notice if selection else None)

        return await _call(gate, run)

    @server.tool(title="Répondre avec citations", annotations=READ_ONLY,
                 description=ASK_DESCRIPTION)
    async def ask(question: Question, k: K = settings.k, sources: Sources = None,
                  since: Since = None, until: Until = None) -> AnswerOut:
        answer = await _call(gate, assistant.ask, question, k=k, sources=sources, since=since,
                             until=until)
        return AnswerOut(**answer.to_dict())

    return server


async def _call(gate: Gate, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn` through the gate; what the user can act on becomes a tool error, in French."""
    try:
        return await gate.run(fn, *args, **kwargs)
    except AssistantError as exc:
        raise ToolError(str(exc)) from exc
    except HTTPException as exc:  # the gate's "busy"
        raise ToolError(str(exc.detail)) from exc


def install_mcp(app: FastAPI, assistant: Assistant, settings: Settings, gate: Gate) -> MCPServer:
    """Serve the MCP server over streamable HTTP at `/mcp` on `app`; the app's lifespan runs the
    SDK's session manager. Stateless JSON responses: no session to keep between requests."""
    server = build_server(assistant, settings, gate)
    http_app = server.streamable_http_app(
        streamable_http_path=MOUNT_PATH, stateless_http=True, json_response=True,
        host=settings.host,  # loopback: the SDK checks Host/Origin against DNS rebinding
    )
    app.router.routes.extend(http_app.routes)  # a route, not a mount: no redirect to /mcp/
    previous = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with server.session_manager.run(), previous(app_) as state:
            yield state

    app.router.lifespan_context = lifespan
    return server


def run_stdio(settings: Settings) -> None:
    """What `assistant mcp` runs: load the assistant, then serve MCP on stdin/stdout."""
    log.info("Chargement de l'index %s et du modèle %s…", settings.index_dir,
             settings.embedding_model)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries the protocol only
        assistant = Assistant.load(settings)
    gate = Gate(settings.concurrency, settings.queue_size)
    build_server(assistant, settings, gate).run("stdio")
