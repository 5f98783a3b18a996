"""The MCP server, driven by the official `mcp` client: stdio (`assistant mcp`, a real subprocess)
and streamable HTTP (`/mcp` on the served app)."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters

from assistant import Assistant, Settings

from .test_http_api import SURFACE, SURFACE_ANSWER
from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = GRADIO_WARNINGS

SERRE = "serre-numerique-valenciennes.txt"
PASSAGE_KEYS = {"chunk_id", "score", "text", "source", "title", "start", "end"}


def _stdio(settings: Settings) -> StdioServerParameters:
    exe = Path(sys.executable).with_name("assistant")
    return StdioServerParameters(
        command=str(exe),
        args=["mcp", "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir)],
        env=dict(os.environ),
    )


def _run(server: Any, session: Callable[[Client], Awaitable[None]], mode: str = "auto") -> None:
    async def main() -> None:
        with anyio.fail_after(300):
            async with Client(server, read_timeout_seconds=120, mode=mode) as client:
                await session(client)

    anyio.run(main)


async def _exercise(client: Client) -> None:
    """What both transports must do: list the tools, search, ask, refuse a blank question."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search", "ask"}
    for tool in tools.values():
        assert tool.input_schema["required"] == ["question"]
        assert tool.input_schema["properties"]["k"]["maximum"] == 50
        assert tool.output_schema is not None and tool.description
        assert tool.annotations is not None and tool.annotations.read_only_hint

    found = await client.call_tool("search", {"question": SURFACE, "k": 3})
    assert not found.is_error, found.content
    passages = (found.structured_content or {})["passages"]
    assert len(passages) == 3 and all(set(p) == PASSAGE_KEYS for p in passages)
    assert any(p["source"] == SERRE and SURFACE_ANSWER.search(p["text"]) for p in passages)
    assert all(0 <= p["start"] < p["end"] for p in passages)

    answered = await client.call_tool("ask", {"question": SURFACE})
    assert not answered.is_error, answered.content
    answer = answered.structured_content or {}
    assert answer["in_corpus"] is True and SURFACE_ANSWER.search(answer["answer"])
    assert SURFACE_ANSWER.search(answer["short_answer"]), answer
    assert "[1]" in answer["answer"]
    assert any(p["source"] == SERRE for p in answer["citations"])
    assert all(set(p) == PASSAGE_KEYS for p in answer["citations"])
    text = answered.content[0]
    assert text.type == "text" and SERRE in text.text  # the same result as JSON text

    refused = await client.call_tool("search", {"question": "   "})
    assert refused.is_error
    assert refused.content[0].type == "text" and "vide" in refused.content[0].text
    too_many = await client.call_tool("search", {"question": SURFACE, "k": 500})
    assert too_many.is_error


def test_stdio_transport(seed_settings: Settings) -> None:
    _run(_stdio(seed_settings), _exercise)


@pytest.fixture(scope="module")
def served(seed_settings: Settings, seed_assistant: Assistant) -> Iterator[str]:
    with running_app(seed_settings, seed_assistant) as url:
        yield url


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # legacy: the initialize handshake
def test_streamable_http_transport(served: str, mode: str) -> None:
    _run(f"{served}/mcp", _exercise, mode)


def test_http_rejects_foreign_host_header(served: str) -> None:
    """On loopback the SDK's DNS-rebinding protection refuses another Host."""
    response = httpx.post(f"{served}/mcp", timeout=30, json={},
                          headers={"Host": "evil.example", "Accept": "application/json"})
    assert response.status_code in (400, 403, 421)


def test_stdio_reports_a_missing_index(tmp_path: Path) -> None:
    """No index: the command says which one to build, on stderr, and exits 1 (no protocol)."""
    import subprocess

    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    params = _stdio(settings)
    result = subprocess.run([params.command, *params.args], capture_output=True, text=True,
                            timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and result.stdout == ""
    assert "assistant index build" in result.stderr
