"""Hostile questions and requests: never a 500, always a clear answer or a 422 (issue: reliability).

Also runs schemathesis against the served OpenAPI schema (bounded examples) and the load script
`bench/load.py` in a small bounded configuration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant import Assistant, Settings

from .conftest import ROOT
from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = GRADIO_WARNINGS


@pytest.fixture(scope="module")
def base_url(seed_settings: Settings, seed_assistant: Assistant) -> Iterator[str]:
    with running_app(seed_settings, seed_assistant) as url:
        yield url


#: (question, what the API must do with it): "vide" / "trop longue": 422 whose French message
#: says so; "refused": 200, and `/api/ask` answers that the corpus does not say, citing
#: nothing; "any": 200 with a well-formed answer either way (a real question in disguise).
HOSTILE = [
    ("", "vide"), ("   \n\t ", "vide"), ("x" * 100_000, "trop longue"),
    ("\x00\x01\x02\x1b[31m Lens ?", "any"), ("🚀🤖🇫🇷 ?", "refused"),
    ("東京のスタートアップは？", "refused"), ("Кто руководит кластером?", "any"),
    ("<script>alert(1)</script>", "refused"), ("' OR 1=1 --", "refused"),
    ("\u202e\u200b\ufeff", "refused"),
]


@pytest.mark.parametrize(("question", "expected"), HOSTILE)
@pytest.mark.parametrize("path", ["/api/ask", "/api/search"])
def test_hostile_questions_never_500(base_url: str, path: str, question: str,
                                     expected: str) -> None:
    response = httpx.post(f"{base_url}{path}", json={"question": question}, timeout=120)
    body = response.json()
    if expected in ("vide", "trop longue"):
        assert response.status_code == 422, response.text
        assert expected in body["message"] and body["detail"][0]["loc"][-1] == "question"
        return
    assert response.status_code == 200, response.text
    if path == "/api/search":
        assert isinstance(body, list) and 0 < len(body) <= 5
        assert all(set(p) >= {"source", "text", "start", "end", "score"} for p in body)
        return
    assert isinstance(body["answer"], str) and body["answer"]
    assert "<script>" not in body["answer"]
    assert bool(body["citations"]) == body["in_corpus"]  # an answer cites, a refusal does not
    if expected == "refused":
        assert body["in_corpus"] is False and body["citations"] == [], body["answer"]


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"question": 5}', b'{"question": null}',
                                  b'{"question": "Lens", "k": "cinq"}',
                                  b'{"question": "Lens", "history": "oops"}'])
def test_malformed_bodies_get_422(base_url: str, body: bytes) -> None:
    response = httpx.post(f"{base_url}/api/ask", content=body,
                          headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code == 422, response.text


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(base_url: str, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    if not st.exists():
        pytest.fail("schemathesis is a dev dependency: make test installs it")
    result = subprocess.run(
        [str(st), "run", f"{base_url}/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "15", "--phases", "examples,coverage,fuzzing", "--workers", "1",
         "--request-timeout", "120", "--seed", "1"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout and " passed" in result.stdout


@pytest.mark.slow
def test_bounded_load_run_has_no_failures(tmp_path: Path) -> None:
    """bench/load.py with 8 clients x 3 questions, then a burst at a server with a tiny queue."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "load.py"), "--clients", "8", "--questions", "3",
         "--burst", "6", "--max-seconds", "120", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    data = json.loads((tmp_path / "load.json").read_text())
    assert data["steady"]["failed"] == 0 and data["steady"]["ok"] == 24
    burst = data["burst"]
    assert burst["other"] == 0 and burst["recovered"]
    assert burst["ok"] + burst["busy_503"] == 6 and burst["ok"] >= 1
    shutil.rmtree(tmp_path, ignore_errors=True)
