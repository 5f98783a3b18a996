"""The HTTP API: `POST /api/search`, `POST /api/ask`, `GET /api/health`.

Requests are Pydantic models (bad input -> 422 with French messages); the assistant runs in worker
threads behind a bounded gate (`settings.concurrency` at once, at most `settings.queue_size`
waiting, beyond that 503 with `Retry-After`); every `AssistantError` becomes a 4xx/503 JSON answer
`{"detail": "<message en français>"}`, never a 500.

No `from __future__ import annotations` here: FastAPI must see the request models built at runtime.
"""

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import PydanticCustomError

from assistant.config import Settings
from assistant.core import Assistant
from assistant.errors import (
    AssistantError,
    ConfigError,
    CorpusError,
    IndexError_,
    IndexLockedError,
    LLMError,
    QuestionError,
    StoreUnavailableError,
)
from assistant.search.filters import MAX_SOURCES, parse_date

log = logging.getLogger(__name__)

MAX_K = 50
MAX_HISTORY = 40
MAX_HISTORY_CHARS = 20_000
BUSY = "Serveur occupé, réessayez dans un instant."
RETRY_AFTER = "2"
T = TypeVar("T")
Mode = Literal["extractive", "llm"]


# -- request and response models ------------------------------------------------------------------
class Message(BaseModel):
    """One earlier turn of the conversation (OpenAI-style)."""

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_HISTORY_CHARS)


class PassageOut(BaseModel):
    chunk_id: int
    score: float
    text: str
    source: str = Field(description="fichier de l'article, relatif au dossier du corpus")
    title: str
    start: int = Field(description="début du passage dans le texte nettoyé de l'article")
    end: int


class AnswerOut(BaseModel):
    answer: str = Field(description="réponse ; [n] renvoie à citations[n-1]")
    short_answer: str | None = Field(
        default=None, description="le fait demandé (nom, personne, chiffre, montant, surface, "
        "date, lieu), tel qu'écrit dans la première phrase citée ; la réponse commence par lui")
    in_corpus: bool
    citations: list[PassageOut]
    notice: str | None
    leads: list[PassageOut] = Field(description="articles les plus proches quand hors corpus")


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["ok"]
    model: str
    articles: int
    chunks: int
    built_at: str
    generation: str
    size_bytes: int


class ErrorOut(BaseModel):
    detail: str


def _clean_question(value: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise PydanticCustomError("question_blank", "La question est vide : posez une question.")
    return value


def _check_date(value: str | None, info: ValidationInfo) -> str | None:
    if value is None or value == "":
        return None
    try:
        return parse_date(value, "depuis" if info.field_name == "since" else "jusqu'au")
    except QuestionError as exc:
        raise PydanticCustomError("filter_invalid", "{message}", {"message": str(exc)}) from None


#: The filters of `/api/search` and `/api/ask` (see `assistant.search.filters`).
FILTER_FIELDS: dict[str, Any] = {
    "sources": (list[Annotated[str, Field(max_length=300)]] | None, Field(
        None, max_length=MAX_SOURCES,
        description="articles à consulter seulement : noms de fichiers du corpus, avec ou sans "
                    "extension (absent : tous)")),
    "since": (str | None, Field(None, description="articles datés de ce jour ou après "
                                                  "(AAAA-MM-JJ ; les articles sans date sont "
                                                  "exclus)", examples=["2020-01-01"])),
    "until": (str | None, Field(None, description="articles datés de ce jour ou avant "
                                                  "(AAAA-MM-JJ ; les articles sans date sont "
                                                  "exclus)", examples=["2020-12-31"])),
}


def filter_args(body: Any) -> dict[str, Any]:
    """The filter fields a request sets, as keyword arguments of `Assistant.search/ask`."""
    given = {"sources": body.sources, "since": body.since, "until": body.until}
    return {key: value for key, value in given.items() if value is not None}


def request_models(settings: Settings) -> tuple[type[BaseModel], type[BaseModel]]:
    """(SearchRequest, AskRequest) with the question length limit of `settings`."""
    question = Annotated[str, Field(min_length=1, max_length=settings.max_question_chars,
                                    description="question en français")]
    k_field = Annotated[int, Field(ge=1, le=MAX_K, description="nombre de passages")]
    validators = {"clean": field_validator("question")(_clean_question),
                  "dates": field_validator("since", "until")(_check_date)}
    search = create_model(
        "SearchRequest", question=(question, ...), k=(k_field, settings.k),
        **FILTER_FIELDS,
        __validators__=validators,  # type: ignore[arg-type]
    )
    ask = create_model(
        "AskRequest", question=(question, ...),
        history=(list[Message], Field(default_factory=list, max_length=MAX_HISTORY)),
        k=(k_field | None, None),
        mode=(Mode | None, None),
        **FILTER_FIELDS,
        __validators__=validators,  # type: ignore[arg-type]
    )
    return search, ask


# -- concurrency gate -----------------------------------------------------------------------------
class Gate:
    """At most `concurrency` calls in worker threads, at most `queue_size` waiting; beyond, 503."""

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self.limiter = anyio.CapacityLimiter(max(1, concurrency))
        self.queue_size = max(0, queue_size)

    def full(self) -> bool:
        stats = self.limiter.statistics()
        busy = stats.borrowed_tokens >= stats.total_tokens
        return busy and stats.tasks_waiting >= self.queue_size

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.full():
            raise HTTPException(503, detail=BUSY, headers={"Retry-After": RETRY_AFTER})
        return await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self.limiter
        )


# -- errors ---------------------------------------------------------------------------------------
def error_status(exc: AssistantError) -> int:
    """The HTTP status for an assistant error."""
    if isinstance(exc, QuestionError):
        return 422
    if isinstance(exc, (IndexError_, CorpusError, LLMError, StoreUnavailableError)):
        return 503
    if isinstance(exc, ConfigError):
        return 400
    return 400


async def assistant_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AssistantError)
    status = error_status(exc)
    headers = {"Retry-After": RETRY_AFTER} if isinstance(exc, IndexLockedError) else None
    log.info("%s %s -> %s: %s", request.method, request.url.path, status, exc)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def french_message(error: dict[str, Any], settings: Settings) -> str:
    """A French message for one Pydantic validation error."""
    field = str(error.get("loc", ("", ""))[-1])
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "question_blank" or (field == "question" and kind == "string_too_short"):
        return "La question est vide : posez une question."
    if field == "question" and kind == "string_too_long":
        return (f"La question est trop longue (maximum {settings.max_question_chars} "
                "caractères) : raccourcissez-la.")
    if field == "k" and kind in {"greater_than_equal", "less_than_equal", "int_parsing",
                                 "int_type", "int_from_float"}:
        return f"k doit être un entier entre 1 et {MAX_K}."
    if kind == "filter_invalid":
        return str(ctx.get("message") or error.get("msg", ""))
    if field in {"sources", "since", "until"} and kind in {"list_type", "string_type"}:
        return (f"{field} : attendu une liste de noms d'articles." if field == "sources"
                else f"{field} : attendu une date AAAA-MM-JJ.")
    if kind == "missing":
        return f"Champ obligatoire manquant : {field}."
    if kind in {"json_invalid", "model_attributes_type", "dict_type"}:
        return "Le corps de la requête doit être un objet JSON."
    if kind == "literal_error":
        return f"Valeur non autorisée pour {field} (attendu : {ctx.get('expected', '?')})."
    if kind == "too_long":
        return f"{field} : trop d'éléments (maximum {ctx.get('max_length', '?')})."
    return f"Valeur invalide pour {field} : {error.get('msg', '')}"


def validation_handler(settings: Settings) -> Callable[..., Any]:
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": french_message(e, settings),
             "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            jsonable_encoder({"detail": errors, "message": " ".join(e["msg"] for e in errors)}),
            status_code=422,
        )

    return handler


# -- routes ---------------------------------------------------------------------------------------
def install_api(app: FastAPI, assistant: Assistant, settings: Settings) -> Gate:
    """Add the `/api/*` routes and their error handlers to `app`; returns the gate."""
    gate = Gate(settings.concurrency, settings.queue_size)
    SearchRequest, AskRequest = request_models(settings)  # noqa: N806 - classes
    errors: dict[int | str, dict[str, Any]] = {
        422: {"description": "Requête invalide"},
        503: {"model": ErrorOut, "description": "Serveur occupé ou index indisponible"},
    }
    router = APIRouter(prefix="/api", tags=["assistant"])

    @router.post("/search", response_model=list[PassageOut], responses=errors,
                 summary="Passages du corpus les plus proches d'une question")
    async def search(body: SearchRequest) -> list[dict[str, Any]]:  # type: ignore[valid-type]
        passages = await gate.run(assistant.search, body.question, body.k,  # type: ignore[attr-defined]
                                  **filter_args(body))
        return [p.to_dict() for p in passages]

    @router.post("/ask", response_model=AnswerOut, responses=errors,
                 summary="Réponse citant ses sources ([n] renvoie à citations[n-1])")
    async def ask(body: AskRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        history = [m.model_dump() for m in body.history]  # type: ignore[attr-defined]
        answer = await gate.run(
            assistant.ask, body.question, history, mode=body.mode, k=body.k,  # type: ignore[attr-defined]
            **filter_args(body),
        )
        return answer.to_dict()

    @router.get("/health", response_model=HealthOut, responses={503: {"model": ErrorOut}},
                summary="État du service et de l'index")
    async def health() -> Any:
        try:
            status = await anyio.to_thread.run_sync(assistant.status)
        except AssistantError as exc:
            return JSONResponse({"status": "error", "detail": str(exc)}, status_code=503)
        for private in ("index_dir", "served_from"):  # no server paths or URLs in a public answer
            status.pop(private, None)
        return {"status": "ok", **status}

    app.include_router(router)
    app.add_exception_handler(AssistantError, assistant_error_handler)
    app.add_exception_handler(RequestValidationError, validation_handler(settings))
    return gate
