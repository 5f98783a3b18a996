"""An OpenAI-compatible API: `GET /v1/models` and `POST /v1/chat/completions`.

Any OpenAI client or chat front-end (Open WebUI, LibreChat) can use the assistant as a model:

    client = openai.OpenAI(base_url="http://127.0.0.1:7860/v1", api_key="cle")
    client.chat.completions.create(model="assistant", messages=[{"role": "user", "content": q}])

The last user message is the question; earlier user/assistant messages are the history (follow-up
questions work); system messages and sampling parameters (temperature, max_tokens...) are
accepted and ignored. The reply's content is the answer with its `[n]` markers, then its sources:

    ... [1]

    Sources :
    - [1] Titre — fichier [start:end]

Extra request fields `sources`, `since`, `until` filter the articles as in `/api/ask` (with the
openai client: `extra_body={"since": "2020-01-01"}`). Extra fields, on the completion and on the
last chunk of a stream: `citations` (passages,
`[n]` is `citations[n-1]`, as in `/api/ask`) and `in_corpus`. `usage` counts words and
punctuation marks, an approximation of tokens. Errors have OpenAI's shape
`{"error": {"message", "type", "code"}}`: 400 for a bad request, 503 (with `Retry-After`) when
the server is busy or the index unavailable. Requests share the `/api` concurrency gate.

No `from __future__ import annotations` here: FastAPI must see the request models at runtime.
"""

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Annotated, Any, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from assistant.config import Settings
from assistant.core import Assistant
from assistant.errors import AssistantError, IndexLockedError
from assistant.records import Answer

from .api import (
    BUSY,
    MAX_HISTORY,
    MAX_HISTORY_CHARS,
    RETRY_AFTER,
    Gate,
    error_status,
    french_message,
)

log = logging.getLogger(__name__)

#: The one model this API serves (any `model` value is accepted and echoed).
MODEL_ID = "assistant"
SOURCES_HEADER = "Sources :"
LEADS_HEADER = "Pistes (articles les plus proches) :"
MAX_MESSAGES = 1000
_TOKEN = re.compile(r"\w+|[^\w\s]")


# -- request models -------------------------------------------------------------------------------
class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts are read."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat request; other parameters (temperature, max_tokens, ...) are ignored."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "model": MODEL_ID, "messages": [
            {"role": "user", "content": "Quelle est la surface de la Serre numérique ?"}],
    }]})
    model: str = Field(MODEL_ID, max_length=200, description="renvoyé tel quel")
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES,
                                        description="la question est le dernier message user")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def filters(self) -> dict[str, Any]:
        """The filters of `/api/ask` given as extra fields (`extra_body` of an OpenAI client):
        not in the schema, which stays OpenAI's; checked by the assistant."""
        extra = self.model_extra or {}
        return {key: extra[key] for key in ("sources", "since", "until")
                if extra.get(key) is not None}


# -- errors ---------------------------------------------------------------------------------------
class OpenAIError(Exception):
    def __init__(self, status: int, message: str, code: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers

    def body(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": self.message, "type": kind, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def openai_error(exc: Exception, settings: Settings) -> OpenAIError:
    """The OpenAI-shaped error for an exception raised while serving `/v1`."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = list(exc.errors())
        message = " ".join(french_message(e, settings) for e in errors[:3])
        return OpenAIError(400, message or "Requête invalide.", "invalid_body")
    if isinstance(exc, HTTPException):  # the gate's 503
        code = "server_busy" if exc.status_code == 503 else "http_error"
        return OpenAIError(exc.status_code, str(exc.detail), code, dict(exc.headers or {}))
    assert isinstance(exc, AssistantError)
    status = error_status(exc)
    status = 400 if status == 422 else status
    retry = {"Retry-After": RETRY_AFTER} if status == 503 else None
    code = "invalid_question" if status == 400 else "index_unavailable"
    if isinstance(exc, IndexLockedError):
        code = "index_locked"
    return OpenAIError(status, str(exc), code, retry)


def error_route(settings: Settings) -> type[APIRoute]:
    """An `APIRoute` whose errors (validation included) take OpenAI's shape."""

    class OpenAIRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except (OpenAIError, RequestValidationError, HTTPException, AssistantError) as exc:
                    error = openai_error(exc, settings)
                    log.info("%s %s -> %s: %s", request.method, request.url.path, error.status,
                             error.message)
                    return error.response()

            return route

    return OpenAIRoute


# -- formatting -----------------------------------------------------------------------------------
def sources_text(answer: Answer) -> str:
    """What follows the answer's text: its notice, then its sources (or leads when refused)."""
    parts = [f"({answer.notice})"] if answer.notice else []
    if answer.citations:
        parts.append("\n".join([SOURCES_HEADER, *(
            f"- [{i}] {p.title} — {p.source} [{p.start}:{p.end}]"
            for i, p in enumerate(answer.citations, 1))]))
    elif answer.leads:
        parts.append("\n".join([LEADS_HEADER, *(f"- {p.title} — {p.source}"
                                                for p in answer.leads)]))
    return "".join(f"\n\n{part}" for part in parts)


def count_tokens(text: str) -> int:
    """Words and punctuation marks: an honest stand-in for tokens (no tokenizer is involved)."""
    return len(_TOKEN.findall(text))


def usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = count_tokens(prompt), count_tokens(completion)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def extras(answer: Answer) -> dict[str, Any]:
    """The documented extra fields: structured citations and the in-corpus decision."""
    return {"citations": [p.to_dict() for p in answer.citations],
            "in_corpus": answer.in_corpus, "short_answer": answer.short}


def parse_conversation(body: ChatRequest) -> tuple[str, list[dict[str, str]]]:
    """(question, history): the last user message, and the user/assistant messages before it
    (the last `MAX_HISTORY`, each cut to `MAX_HISTORY_CHARS`, as `/api/ask` accepts them)."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise OpenAIError(400, "Le dernier message doit être la question de l'utilisateur "
                               "(role « user »).", "invalid_messages")
    history = [{"role": m.role, "content": m.text()[:MAX_HISTORY_CHARS]}
               for m in turns[:-1][-MAX_HISTORY:]]
    return turns[-1].text(), history


# -- routes ---------------------------------------------------------------------------------------
def install_openai_api(app: FastAPI, assistant: Assistant, settings: Settings,
                       gate: Gate) -> None:
    """Add `/v1/models` and `/v1/chat/completions` to `app`; they share `gate` with `/api`."""
    router = APIRouter(prefix="/v1", tags=["openai"], route_class=error_route(settings))
    created = int(time.time())
    model_card = {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "assistant"}

    @router.get("/models", summary="Le modèle servi (API compatible OpenAI)")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card]}

    @router.get("/models/{model_id}", summary="Un modèle (API compatible OpenAI)")
    async def model(model_id: Annotated[str, Path(json_schema_extra={"enum": [MODEL_ID]})],
                    ) -> dict[str, Any]:
        if model_id != MODEL_ID:
            raise OpenAIError(404, f"Modèle inconnu : {model_id!r} (disponible : {MODEL_ID}).",
                              "model_not_found")
        return model_card

    @router.post("/chat/completions", response_model=None,
                 summary="Réponse citant ses sources (API compatible OpenAI, stream ou non)")
    async def chat_completions(body: ChatRequest) -> Any:
        question, history = parse_conversation(body)
        question = assistant.check_question(question)
        prompt = " ".join([*(m["content"] for m in history), question])
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()),
                "model": body.model}
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            pieces = assistant.ask_stream(question, history, **body.filters())
            first, slot = await start_stream(gate, pieces)
            return EventStream(
                sse(head, first, pieces, prompt if include_usage else None, settings),
                finish=functools.partial(finish_stream, slot, pieces),
            )
        answer = await gate.run(assistant.ask, question, history, **body.filters())
        content = answer.text + sources_text(answer)
        return {
            **head, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage(prompt, content),
            **extras(answer),
        }

    app.include_router(router)


# -- streaming ------------------------------------------------------------------------------------
class _Slot:
    """One token of the gate, held for a whole stream (released exactly once)."""

    def __init__(self, gate: Gate) -> None:
        self.limiter = gate.limiter
        self.held = False

    async def acquire(self) -> None:
        await self.limiter.acquire_on_behalf_of(self)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.limiter.release_on_behalf_of(self)


def finish_stream(slot: _Slot, pieces: Iterator[str | Answer]) -> None:
    """Give the slot back and stop the answer (an LLM reply nobody reads any more)."""
    slot.release()
    if isinstance(pieces, Generator):
        pieces.close()


class EventStream(StreamingResponse):
    """Server-sent events that run `finish` however the response ends (done, client gone,
    cancelled), even when the body was never read."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[str], finish: Callable[[], None]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        self.finish = finish

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.finish()


async def start_stream(gate: Gate, pieces: Iterator[str | Answer],
                       ) -> tuple[str | Answer | None, _Slot]:
    """Take a gate slot and compute the first piece, so that a missing index or a busy server
    is an HTTP error, not an error inside a 200 stream. Returns (first piece, slot)."""
    if gate.full():
        raise HTTPException(503, detail=BUSY, headers={"Retry-After": RETRY_AFTER})
    slot = _Slot(gate)
    await slot.acquire()
    try:
        first = await anyio.to_thread.run_sync(next, pieces, None)
    except BaseException:
        slot.release()
        raise
    return first, slot


def _event(data: dict[str, Any] | str) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"data: {text}\n\n"


async def sse(head: dict[str, Any], piece: str | Answer | None,
              pieces: Iterator[str | Answer], prompt: str | None,
              settings: Settings) -> AsyncIterator[str]:
    """`chat.completion.chunk` events: role, text pieces, sources, the final chunk, [DONE].
    The gate's slot is given back by `EventStream` once the response ends."""
    chunk = {**head, "object": "chat.completion.chunk"}

    def delta(content: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**chunk, "choices": [{"index": 0, "delta": content, "logprobs": None,
                                      "finish_reason": finish}]}

    streamed: list[str] = []
    try:
        yield _event(delta({"role": "assistant", "content": ""}))
        while not isinstance(piece, Answer):
            if piece is None:  # the answerer ended without an Answer: a bug, not the user's
                raise RuntimeError("flux de réponse sans réponse finale")
            streamed.append(piece)
            yield _event(delta({"content": piece}))
            piece = await anyio.to_thread.run_sync(next, pieces, None)
        tail = sources_text(piece)
        if tail:
            streamed.append(tail)
            yield _event(delta({"content": tail}))
        yield _event({**delta({}, "stop"), **extras(piece)})
        if prompt is not None:
            yield _event({**chunk, "choices": [], "usage": usage(prompt, "".join(streamed))})
    except AssistantError as exc:
        yield _event(openai_error(exc, settings).body())
    except Exception:
        log.exception("erreur pendant un flux /v1/chat/completions")
        yield _event(OpenAIError(500, "Erreur interne du serveur.", "internal_error").body())
    yield _event("[DONE]")
