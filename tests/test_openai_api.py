"""The OpenAI-compatible API (`/v1`), driven by the official `openai` client on a served app."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest

from assistant import Answer, Assistant, Settings
from assistant.errors import IndexMissingError

from .test_http_api import SURFACE, SURFACE_ANSWER
from .ui_server import GRADIO_WARNINGS, running_app, running_server

pytestmark = GRADIO_WARNINGS

SERRE = "serre-numerique-valenciennes.txt"
PASSAGE_KEYS = {"chunk_id", "score", "text", "source", "title", "start", "end"}


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="cle-de-test", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def served(backend_settings: Settings, backend_assistant: Assistant) -> Iterator[str]:
    """The app on the seed index, once per store backend (local files, Qdrant)."""
    with running_app(backend_settings, backend_assistant) as url:
        yield url


@pytest.fixture(scope="module")
def client(served: str) -> openai.OpenAI:
    return _client(served)


def _check_content(content: str, citations: list[dict[str, Any]]) -> None:
    """Answer with [n] markers, then "Sources :" listing citations[n-1] as "[n] title — file"."""
    text, _, sources = content.partition("\n\nSources :\n")
    assert SURFACE_ANSWER.search(text), content
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert numbers == set(range(1, len(citations) + 1)) and numbers
    lines = sources.splitlines()
    assert len(lines) == len(citations)
    for i, (line, p) in enumerate(zip(lines, citations), 1):
        assert line == f"- [{i}] {p['title']} — {p['source']} [{p['start']}:{p['end']}]"
    assert all(set(p) == PASSAGE_KEYS for p in citations)
    assert any(p["source"] == SERRE and SURFACE_ANSWER.search(p["text"]) for p in citations)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    from ui.openai_api import MODEL_ID

    assert [m.id for m in client.models.list()] == [MODEL_ID]
    assert client.models.retrieve(MODEL_ID).owned_by == "assistant"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_completion_cites_a_seed_article(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="mon-modele",  # any name is accepted and echoed
        messages=[{"role": "system", "content": "Tu es un assistant."},
                  {"role": "user", "content": SURFACE}],
        temperature=0.3, max_tokens=50, top_p=0.9, user="test",  # accepted, ignored
    )
    assert completion.object == "chat.completion" and completion.model == "mon-modele"
    assert completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    extra = completion.model_extra or {}
    assert extra["in_corpus"] is True
    _check_content(choice.message.content or "", extra["citations"])
    # the content's first line is the short answer, in bold, cited
    first_line = (choice.message.content or "").splitlines()[0]
    assert first_line == f"**{extra['short_answer']}** [1]" and SURFACE_ANSWER.search(first_line)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_completion_matches_the_whole_one(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": [{"type": "text", "text": SURFACE}]}]
    whole = client.chat.completions.create(model="assistant", messages=messages)
    chunks = list(client.chat.completions.create(
        model="assistant", messages=messages, stream=True,
        stream_options={"include_usage": True}))
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "stop"
    extra = finals[0].model_extra or {}
    assert extra["in_corpus"] is True
    _check_content(content, extra["citations"])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_follow_up_uses_the_conversation(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": SURFACE}])
    follow_up = client.chat.completions.create(model="assistant", messages=[
        {"role": "system", "content": "Réponds en français."},
        {"role": "user", "content": SURFACE},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Et quand a-t-elle été inaugurée ?"},
    ])
    extra = follow_up.model_extra or {}
    assert extra["in_corpus"] is True
    assert any(p["source"] == SERRE for p in extra["citations"])
    assert "2015" in (follow_up.choices[0].message.content or "")


def test_out_of_corpus_lists_leads(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="assistant",
        messages=[{"role": "user", "content": "Quelle est la capitale de l'Australie ?"}])
    extra = completion.model_extra or {}
    assert extra["in_corpus"] is False and extra["citations"] == []
    content = completion.choices[0].message.content or ""
    assert "Sources :" not in content and "[1]" not in content


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("messages", "expected"), [
    ([{"role": "user", "content": "   "}], "vide"),
    ([{"role": "user", "content": "mot " * 600}], "trop longue"),
    ([{"role": "user", "content": SURFACE}, {"role": "assistant", "content": "17 000 m²"}],
     "dernier message"),
    ([{"role": "system", "content": "Sois bref."}], "dernier message"),
])
def test_bad_questions_are_bad_requests(client: openai.OpenAI, stream: bool,
                                        messages: Any, expected: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="assistant", messages=messages, stream=stream)
    error = caught.value
    assert error.status_code == 400 and expected in error.message
    assert isinstance(error.body, dict) and error.body["type"] == "invalid_request_error"
    assert error.body["code"]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"messages": []}',
                                  b'{"messages": [{"role": "robot", "content": "x"}]}',
                                  b'{"messages": "Lens"}', b'{"model": "a"}'])
def test_malformed_bodies_get_openai_errors(served: str, body: bytes) -> None:
    response = httpx.post(f"{served}/v1/chat/completions", content=body, timeout=60,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["message"]
    assert error["type"] == "invalid_request_error"


def test_openapi_documents_v1(served: str) -> None:
    schema = httpx.get(f"{served}/openapi.json", timeout=30).json()
    assert {"/v1/models", "/v1/chat/completions"} <= set(schema["paths"])


# -- unavailable index, busy server ---------------------------------------------------------------
class BlockingAssistant:
    """The real assistant, whose answers can fail or wait for `release` after a first piece."""

    def __init__(self, real: Assistant) -> None:
        self.real = real
        self.settings = real.settings
        self.release = threading.Event()
        self.waiting = threading.Event()
        self.error: Exception | None = None

    def ask_stream(self, question: str, history: Any = None, **kwargs: Any) -> Iterator[Any]:
        if self.error is not None:
            raise self.error
        pieces = list(self.real.ask_stream(question, history, **kwargs))
        yield pieces[0]
        self.waiting.set()
        assert self.release.wait(30)
        yield from pieces[1:]

    def ask(self, question: str, history: Any = None, **kwargs: Any) -> Answer:
        answer = None
        for piece in self.ask_stream(question, history, **kwargs):
            answer = piece if isinstance(piece, Answer) else answer
        assert answer is not None
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_unavailable_index_is_503(seed_settings: Settings, seed_assistant: Assistant) -> None:
    fake = BlockingAssistant(seed_assistant)
    fake.error = IndexMissingError("Aucun index : lancez `assistant index build`.")
    with running_app(seed_settings, fake) as url:
        client = _client(url)
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as caught:
                client.chat.completions.create(
                    model="assistant", messages=[{"role": "user", "content": SURFACE}],
                    stream=stream)
            assert caught.value.status_code == 503
            assert "assistant index build" in caught.value.message
            assert caught.value.response.headers["Retry-After"]


def test_a_stream_holds_its_slot_of_the_shared_gate(seed_settings: Settings,
                                                    seed_assistant: Assistant) -> None:
    from ui.app import create_app

    settings = seed_settings.replace(concurrency=1, queue_size=0)
    fake = BlockingAssistant(seed_assistant)
    app = create_app(settings, assistant=fake)
    messages: Any = [{"role": "user", "content": SURFACE}]
    with running_server(app, settings) as url, ThreadPoolExecutor(max_workers=1) as pool:
        client = _client(url)

        def consume() -> str:
            stream = client.chat.completions.create(model="assistant", messages=messages,
                                                    stream=True)
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        streamed = pool.submit(consume)
        assert fake.waiting.wait(60)  # mid-stream: the only slot is taken
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="assistant", messages=messages)
        assert caught.value.status_code == 503 and caught.value.body["code"] == "server_busy"
        busy = httpx.post(f"{url}/api/search", json={"question": SURFACE}, timeout=30)
        assert busy.status_code == 503  # the same gate as /api

        fake.release.set()
        assert "Sources :" in streamed.result(timeout=60)
        deadline = time.monotonic() + 10
        while app.state.gate.limiter.statistics().borrowed_tokens:
            assert time.monotonic() < deadline, "le flux n'a pas rendu sa place"
            time.sleep(0.05)
        assert client.chat.completions.create(model="assistant", messages=messages).choices


def test_a_client_gone_mid_stream_gives_its_slot_back(seed_settings: Settings,
                                                      seed_assistant: Assistant) -> None:
    from ui.app import create_app

    settings = seed_settings.replace(concurrency=1, queue_size=0)
    fake = BlockingAssistant(seed_assistant)
    app = create_app(settings, assistant=fake)
    limiter = app.state.gate.limiter
    body = {"model": "assistant", "stream": True,
            "messages": [{"role": "user", "content": SURFACE}]}
    with running_server(app, settings) as url:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as r:
            assert r.status_code == 200
            first = next(r.iter_lines())
            assert first.startswith("data: ") and '"role": "assistant"' in first
            assert fake.waiting.wait(60) and limiter.statistics().borrowed_tokens == 1
        fake.release.set()  # the client is gone; the answer finishes and the slot comes back
        deadline = time.monotonic() + 10
        while limiter.statistics().borrowed_tokens:
            assert time.monotonic() < deadline, "la place n'a pas été rendue"
            time.sleep(0.05)
        assert _client(url).chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": SURFACE}]).choices
