"""The HTTP API served beside the chat: round-trips, validation, errors, the busy gate."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from assistant import Assistant, Settings
from assistant.errors import IndexCorruptError, IndexMissingError, QuestionError

from .ui_server import GRADIO_WARNINGS, running_app, running_server

pytestmark = GRADIO_WARNINGS

SURFACE = "Quelle est la surface de la Serre numérique de Valenciennes ?"
SURFACE_ANSWER = re.compile(r"17[\s\u00a0\u202f.]?000")
PASSAGE_KEYS = {"chunk_id", "score", "text", "source", "title", "start", "end"}


@pytest.fixture(scope="module")
def api(backend_settings: Settings, backend_assistant: Assistant) -> Iterator[httpx.Client]:
    """The app on the seed index, once per store backend (local files, Qdrant)."""
    with running_app(backend_settings, backend_assistant) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


# -- round-trips ----------------------------------------------------------------------------------
def test_health_reports_index_status(api: httpx.Client, backend_assistant: Assistant) -> None:
    response = api.get("/api/health")
    assert response.status_code == 200
    data = response.json()
    status = backend_assistant.status()
    assert data["status"] == "ok"
    for key in ("model", "articles", "chunks", "built_at", "generation", "size_bytes"):
        assert data[key] == status[key]
    assert data["articles"] == 5


def test_search_returns_passages(api: httpx.Client) -> None:
    response = api.post("/api/search", json={"question": SURFACE, "k": 3})
    assert response.status_code == 200
    passages = response.json()
    assert len(passages) == 3
    assert all(set(p) == PASSAGE_KEYS for p in passages)
    assert passages[0]["source"] == "serre-numerique-valenciennes.txt"
    assert any(SURFACE_ANSWER.search(p["text"]) for p in passages)
    assert passages[0]["score"] >= passages[-1]["score"]
    assert all(0 <= p["start"] < p["end"] for p in passages)


def test_search_default_k(api: httpx.Client, backend_settings: Settings) -> None:
    response = api.post("/api/search", json={"question": "Louvre Lens Vallée"})
    assert response.status_code == 200
    assert len(response.json()) == backend_settings.k


def test_ask_returns_cited_answer(api: httpx.Client) -> None:
    response = api.post("/api/ask", json={"question": SURFACE})
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"answer", "short_answer", "in_corpus", "citations", "notice", "leads"}
    assert data["in_corpus"] is True
    assert SURFACE_ANSWER.search(data["answer"]), data["answer"]
    # the short answer leads: the fact asked, verbatim, in bold on the first line
    assert SURFACE_ANSWER.search(data["short_answer"]), data
    assert data["answer"].startswith(f"**{data['short_answer']}** [1]\n")
    assert "[1]" in data["answer"]
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", data["answer"])}
    assert numbers == set(range(1, len(data["citations"]) + 1))
    assert all(set(p) == PASSAGE_KEYS for p in data["citations"])


def test_ask_out_of_corpus(api: httpx.Client) -> None:
    data = api.post("/api/ask", json={"question": "Quelle est la capitale de l'Australie ?"}).json()
    assert data["in_corpus"] is False
    assert data["citations"] == []


def test_ask_follow_up_with_history(api: httpx.Client) -> None:
    first = api.post("/api/ask", json={"question": SURFACE}).json()
    history = [{"role": "user", "content": SURFACE},
               {"role": "assistant", "content": first["answer"]}]
    response = api.post("/api/ask", json={"question": "Et quand a-t-elle été inaugurée ?",
                                          "history": history, "k": 5})
    assert response.status_code == 200
    data = response.json()
    assert data["in_corpus"] is True
    assert any(p["source"] == "serre-numerique-valenciennes.txt" for p in data["citations"])


def test_llm_mode_unconfigured_is_a_client_error(api: httpx.Client) -> None:
    response = api.post("/api/ask", json={"question": SURFACE, "mode": "llm"})
    assert response.status_code == 400
    assert "ASSISTANT_LLM_BASE_URL" in response.json()["detail"]


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/search", {"question": ""}, "vide"),
        ("/api/search", {"question": "   \n\t "}, "vide"),
        ("/api/ask", {"question": "  "}, "vide"),
        ("/api/search", {"question": "x" * 2001}, "trop longue"),
        ("/api/ask", {"question": "mot " * 600}, "trop longue"),
        ("/api/search", {"question": "Serre", "k": 0}, "entre 1 et 50"),
        ("/api/search", {"question": "Serre", "k": 51}, "entre 1 et 50"),
        ("/api/search", {"question": "Serre", "k": "beaucoup"}, "entre 1 et 50"),
        ("/api/ask", {"question": "Serre", "k": 100}, "entre 1 et 50"),
        ("/api/search", {}, "manquant"),
        ("/api/ask", {"question": "Serre", "mode": "magique"}, "mode"),
        ("/api/ask", {"question": "Serre", "history": [{"role": "system", "content": "x"}]},
         "role"),
    ],
)
def test_bad_requests_get_422_in_french(api: httpx.Client, path: str, body: dict[str, Any],
                                        expected: str) -> None:
    response = api.post(path, json=body)
    assert response.status_code == 422, response.text
    data = response.json()
    assert expected in data["message"]
    assert isinstance(data["detail"], list) and data["detail"][0]["msg"]


def test_body_that_is_not_json(api: httpx.Client) -> None:
    response = api.post("/api/search", content=b"{pas du json",
                        headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["message"]


def test_openapi_documents_the_endpoints(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    assert {"/api/search", "/api/ask", "/api/health"} <= set(schema["paths"])
    search = schema["paths"]["/api/search"]["post"]
    ref = search["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert body["properties"]["k"]["maximum"] == 50
    assert body["properties"]["question"]["maxLength"] == 2000
    assert "503" in search["responses"]


def test_gradio_page_is_served_at_root(api: httpx.Client) -> None:
    response = api.get("/")
    assert response.status_code == 200
    assert "<html" in response.text.lower()


# -- errors and the busy gate ---------------------------------------------------------------------
class FakeAssistant:
    """Delegates to the real assistant, with a hook to block or fail calls."""

    def __init__(self, real: Assistant) -> None:
        self.real = real
        self.settings = real.settings
        self.release = threading.Event()
        self.running = 0
        self.error: Exception | None = None
        self._lock = threading.Lock()

    def search(self, question: str, k: int | None = None) -> Any:
        if self.error is not None:
            raise self.error
        with self._lock:
            self.running += 1
        try:
            assert self.release.wait(30)
            return self.real.search(question, k)
        finally:
            with self._lock:
                self.running -= 1

    def ask(self, *args: Any, **kwargs: Any) -> Any:
        if self.error is not None:
            raise self.error
        return self.real.ask(*args, **kwargs)

    def status(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.real.status()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _wait_until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition jamais atteinte"
        time.sleep(0.02)


def test_assistant_errors_become_json_not_500(seed_settings: Settings,
                                               seed_assistant: Assistant) -> None:
    fake = FakeAssistant(seed_assistant)
    fake.release.set()
    with running_app(seed_settings, fake) as url, httpx.Client(base_url=url, timeout=30) as c:
        fake.error = IndexMissingError("Aucun index : lancez `assistant index build`.")
        response = c.post("/api/search", json={"question": "Serre"})
        assert response.status_code == 503
        assert response.json() == {"detail": "Aucun index : lancez `assistant index build`."}
        health = c.get("/api/health")
        assert health.status_code == 503 and health.json()["status"] == "error"
        fake.error = IndexCorruptError("Index abîmé : reconstruisez-le.")
        assert c.post("/api/ask", json={"question": "Serre"}).status_code == 503
        fake.error = QuestionError("La question est vide : posez une question en français.")
        response = c.post("/api/ask", json={"question": "Serre"})
        assert response.status_code == 422
        assert "vide" in response.json()["detail"]
        fake.error = None
        assert c.post("/api/search", json={"question": "Serre"}).status_code == 200


def test_busy_server_answers_503_then_recovers(seed_settings: Settings,
                                                seed_assistant: Assistant) -> None:
    from ui.app import create_app

    settings = seed_settings.replace(concurrency=1, queue_size=1)
    fake = FakeAssistant(seed_assistant)
    app = create_app(settings, assistant=fake)
    gate = app.state.gate
    body = {"question": "Serre numérique", "k": 2}
    with running_server(app, settings) as url, httpx.Client(base_url=url, timeout=60) as c, \
            ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(c.post, "/api/search", json=body)
        _wait_until(lambda: fake.running == 1)
        second = pool.submit(c.post, "/api/search", json=body)
        _wait_until(lambda: gate.limiter.statistics().tasks_waiting == 1)

        busy = c.post("/api/search", json=body)
        assert busy.status_code == 503
        assert busy.json() == {"detail": "Serveur occupé, réessayez dans un instant."}
        assert int(busy.headers["Retry-After"]) > 0

        started = time.monotonic()
        assert c.get("/api/health").status_code == 200  # the event loop is not blocked
        assert time.monotonic() - started < 5

        fake.release.set()
        assert first.result(timeout=30).status_code == 200
        assert second.result(timeout=30).status_code == 200
        assert c.post("/api/search", json=body).status_code == 200


# -- serving --------------------------------------------------------------------------------------
def test_startup_announces_url(seed_settings: Settings, seed_assistant: Assistant,
                               capfd: pytest.CaptureFixture[str]) -> None:
    with running_app(seed_settings, seed_assistant) as url:
        assert httpx.get(f"{url}/api/health", timeout=30).status_code == 200
    assert f"Assistant prêt sur {url}" in capfd.readouterr().err


def test_serve_loads_once_and_uses_settings(seed_settings: Settings, seed_assistant: Assistant,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import ui.app

    loads: list[Settings] = []
    runs: list[Any] = []

    def load(settings: Settings) -> Assistant:
        loads.append(settings)
        return seed_assistant

    monkeypatch.setattr(ui.app.Assistant, "load", staticmethod(load))
    monkeypatch.setattr(ui.app.Server, "run", lambda self, sockets=None: runs.append(self.config))
    settings = seed_settings.replace(host="0.0.0.0", port=8123)
    ui.app.serve(settings)
    assert loads == [settings]
    assert [(c.host, c.port) for c in runs] == [("0.0.0.0", 8123)]
