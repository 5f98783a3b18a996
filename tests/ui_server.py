"""Helpers for the web tests: run the real app with uvicorn on a free port in a thread.

    with running_app(settings, assistant) as url:   # "http://127.0.0.1:PORT"
        ...

Imported by the UI test modules only (it imports gradio through `ui.app`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from assistant import Assistant, Settings

STARTUP_TIMEOUT = 60.0

#: Warnings Gradio's queue raises with pandas 3 on every event (not ours to fix).
GRADIO_WARNINGS = [
    pytest.mark.filterwarnings("ignore:.*no_silent_downcasting.*"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated.*"),
]


@contextlib.contextmanager
def running_server(app: Any, settings: Settings) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 and a free port until the block ends; yields the base URL."""
    from ui.app import Server, server_config

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(app, settings.replace(host="127.0.0.1", port=port),
                           timeout_graceful_shutdown=1)  # browsers keep event streams open
    server = Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"uvicorn-{port}")
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("le serveur de test n'a pas démarré")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextlib.contextmanager
def running_app(settings: Settings, assistant: Assistant | Any) -> Iterator[str]:
    """`ui.app.create_app(settings, assistant)` served as by `running_server`."""
    from ui.app import create_app

    with running_server(create_app(settings, assistant=assistant), settings) as url:
        yield url
