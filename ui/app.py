"""The web server: one FastAPI app with the HTTP API under `/api` and the Gradio chat at `/`.

    from ui.app import create_app, serve
    serve(Settings.from_env())          # what `assistant serve` runs
    app = create_app(settings)          # for uvicorn / tests (pass `assistant=` to reuse one)

The assistant (embedding model + index) is loaded once per process, before the server starts.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI

from assistant import __version__
from assistant.config import Settings
from assistant.core import Assistant
from assistant.embed.reader import prepare_reader
from assistant.index.watch import CorpusWatcher

from .api import install_api
from .assets import CSS
from .chat import TITLE, build_blocks
from .mcp_server import install_mcp
from .metrics import install_metrics
from .openai_api import install_openai_api
from .security import LOGIN_MESSAGE, chat_auth, install_security

log = logging.getLogger(__name__)

API_DESCRIPTION = """\
API HTTP de l'assistant : recherche de passages et réponses citant leurs sources.
Le chat web est servi à la racine `/`.
"""


def create_app(settings: Settings, assistant: Assistant | None = None,
               watcher: CorpusWatcher | None = None) -> FastAPI:
    """The FastAPI app: `/api/*` routes, the OpenAI-compatible `/v1/*`, MCP at `/mcp`, OpenAPI at
    `/openapi.json`, Gradio mounted at `/`. `watcher`: the corpus watcher of `assistant`, whose
    updates the Corpus tab reports (started and stopped by the caller)."""
    assistant = assistant or Assistant.load(settings)
    app = FastAPI(title=TITLE, version=__version__, description=API_DESCRIPTION,
                  docs_url="/api/docs", redoc_url=None)
    app.state.assistant = assistant
    app.state.gate = install_api(app, assistant, settings)
    install_openai_api(app, assistant, settings, app.state.gate)  # /v1: OpenAI-compatible
    install_mcp(app, assistant, settings, app.state.gate)  # /mcp: MCP, streamable HTTP
    keys = install_security(app, settings)  # API keys and rate limit on /api, /v1, /mcp
    app.state.metrics = install_metrics(app, assistant)  # /metrics; counts refusals above too

    blocks = build_blocks(assistant, settings, watcher)
    blocks.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    app.state.blocks = blocks
    hard_cap = max(2 * settings.max_upload_bytes, 1) if settings.upload_enabled else 1
    return gr.mount_gradio_app(
        app, blocks, path="/", server_name=settings.host, server_port=settings.port,
        footer_links=["api"], run_history=False, max_file_size=hard_cap, show_error=True,
        ssr_mode=False, mcp_server=False, css=CSS, theme=theme(),
        auth=chat_auth(settings, keys), auth_message=LOGIN_MESSAGE,
    )


def theme() -> gr.themes.Base:
    """Gradio's Soft theme with system fonts: the page loads nothing from other sites."""
    return gr.themes.Soft(font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "Consolas", "monospace"])


class Server(uvicorn.Server):
    """uvicorn's server, announcing its URL once the socket listens."""

    json_logs = False  # announce through logging (`ASSISTANT_LOG_FORMAT=json`), not print

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self.json_logs:
            log.info("Assistant prêt sur %s", self.url)
        elif self.started:
            print(f"Assistant prêt sur {self.url}", file=sys.stderr, flush=True)

    @property
    def url(self) -> str:
        for server in self.servers:
            for sock in server.sockets:
                host, port = sock.getsockname()[:2]
                return f"http://{host}:{port}"
        return f"http://{self.config.host}:{self.config.port}"


def server_config(app: Any, settings: Settings, **kwargs: Any) -> uvicorn.Config:
    """uvicorn settings for `app`: host and port from `settings`, no reload, one process."""
    options: dict[str, Any] = {"log_level": "warning", "access_log": False,
                               "timeout_graceful_shutdown": 5, **kwargs}
    return uvicorn.Config(app, host=settings.host, port=settings.port, **options)


def serve(settings: Settings, *, watch: bool = False) -> None:
    """Load the assistant, then serve the chat and the API until interrupted; with `watch`,
    index the corpus directory's changes as they happen (`CorpusWatcher`)."""
    log.info("Chargement de l'index %s et du modèle %s…", settings.index_dir,
             settings.embedding_model)
    assistant = Assistant.load(settings)
    prepare_reader(settings)
    watcher = CorpusWatcher(assistant) if watch else None
    app = create_app(settings, assistant=assistant, watcher=watcher)
    json_logs = settings.log_format == "json"  # uvicorn's own records go to the root handler
    server = Server(server_config(app, settings, **({"log_config": None} if json_logs else {})))
    server.json_logs = json_logs
    if watcher is not None:
        watcher.start()
    try:
        server.run()
    finally:
        if watcher is not None:
            watcher.stop()
