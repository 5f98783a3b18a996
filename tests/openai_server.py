"""A local, scriptable stand-in for an OpenAI-compatible chat-completions server.

A real HTTP server (http.server, one thread per request) on 127.0.0.1 and a free port, speaking the
streaming wire format: `data: {chat.completion.chunk}` lines with `choices[0].delta.content`, a
last chunk with `finish_reason`, then `data: [DONE]`. Each test scripts what it answers:

    from tests.openai_server import Reply, openai_server  # noqa: F401  (the fixture)

    def test_something(openai_server):
        openai_server.reply = Reply(text="Réponse [1].")      # streamed word by word
        openai_server.reply = Reply(delay=5)                   # answer late: forces a timeout
        openai_server.reply = Reply(status=500)                # HTTP error
        openai_server.reply = Reply(malformed=True)            # a garbled `data:` line
        settings = Settings(llm_base_url=openai_server.url, llm_model="fake", ...)
        ...
        openai_server.requests[-1].body["messages"]            # what the client sent

`Reply.chunks` sets the exact deltas; `stream=False` answers one JSON body (servers that ignore
`stream: true`); `cut_after=n` drops the connection after n chunks.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """What the server answers to the next requests."""

    text: str = "Bonjour [1]."
    chunks: list[str] | None = None  # exact deltas; default: `text` split after each space
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between two chunks
    status: int = 200
    malformed: bool = False  # send a `data:` line that is not JSON ...
    malformed_at: int = 0  # ... before this chunk (0: before any text)
    stream: bool = True  # False: one `chat.completion` JSON body
    cut_after: int | None = None  # close the connection after this many chunks, no [DONE]

    def deltas(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        words = self.text.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self.body.get("messages", []))


@dataclass
class FakeOpenAIServer:
    reply: Reply = field(default_factory=Reply)
    requests: list[Received] = field(default_factory=list)
    model: str = "fake-model"

    def __post_init__(self) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a test may leave a delayed reply sleeping
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to configure (`ASSISTANT_LLM_BASE_URL`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _chunk(model: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    data = {
        "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            server.requests.append(Received(self.path, dict(self.headers.items()), body))
            reply = server.reply
            if reply.delay:
                time.sleep(reply.delay)
            if not self.path.endswith("/chat/completions"):
                return self._error(404, "not found")
            if reply.status != 200:
                return self._error(reply.status, "scripted failure")
            if not reply.stream or not body.get("stream"):
                return self._whole(reply)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                self._stream(reply)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: fine
                pass

        def _stream(self, reply: Reply) -> None:
            self.wfile.write(b": keep-alive\n\n")
            self.wfile.write(_chunk(server.model, {"role": "assistant", "content": ""}))
            for i, delta in enumerate(reply.deltas()):
                if reply.cut_after is not None and i >= reply.cut_after:
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if reply.malformed and i == reply.malformed_at:
                    self.wfile.write(b"data: {\"choices\": [{\"delta\": {\"content\": \n\n")
                self.wfile.write(_chunk(server.model, {"content": delta}))
                self.wfile.flush()
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
            self.wfile.write(_chunk(server.model, {}, finish="stop"))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _whole(self, reply: Reply) -> None:
            data = {
                "id": "chatcmpl-fake", "object": "chat.completion", "model": server.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.text}}],
            }
            self._json(200, data)

        def _error(self, status: int, message: str) -> None:
            self._json(status, {"error": {"message": message, "type": "server_error"}})

        def _json(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """A fresh fake server per test, stopped afterwards."""
    with FakeOpenAIServer() as server:
        yield server
