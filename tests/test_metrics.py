"""`/metrics` parsed with prometheus-client's own parser, and the JSON log format of a real
`assistant serve` subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistant import Assistant, Settings

from .test_http_api import SURFACE
from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = GRADIO_WARNINGS

OUT_OF_CORPUS = ("Quelle est la recette de la tarte Tatin ?",
                 "Combien de lunes a la planète Jupiter ?")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def api(seed_settings: Settings, seed_assistant: Assistant) -> Iterator[httpx.Client]:
    with running_app(seed_settings, seed_assistant) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


def test_counters_and_stage_histograms_grow(api: httpx.Client) -> None:
    before = scrape(api)
    fresh = f"{SURFACE} ({uuid.uuid4().hex[:8]})"  # never embedded before: the model runs
    assert api.post("/api/search", json={"question": fresh, "k": 3}).status_code == 200
    asks = [api.post("/api/ask", json={"question": q}) for q in (SURFACE, *OUT_OF_CORPUS)]
    assert all(r.status_code == 200 for r in asks)
    refused = sum(1 for r in asks if r.json()["in_corpus"] is False)
    assert refused >= 1  # the assistant refuses at least one of the out-of-scope questions
    assert api.post("/api/search", json={"question": ""}).status_code == 422
    after = scrape(api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "assistant_http_requests_total"
    assert grew(requests, endpoint="/api/ask", method="POST", status="200") == 3
    assert grew(requests, endpoint="/api/search", method="POST", status="200") == 1
    assert grew(requests, endpoint="/api/search", method="POST", status="422") == 1
    assert value(after, requests, endpoint="/metrics", method="GET", status="200") >= 1
    latency = "assistant_http_request_duration_seconds"
    assert grew(f"{latency}_count", endpoint="/api/ask", method="POST") == 3
    assert grew(f"{latency}_sum", endpoint="/api/ask", method="POST") > 0
    assert grew(f"{latency}_bucket", endpoint="/api/ask", method="POST", le="+Inf") == 3

    stages = "assistant_stage_duration_seconds"
    assert grew(f"{stages}_count", stage="search") == 4
    assert grew(f"{stages}_count", stage="answer") == 3
    assert grew(f"{stages}_count", stage="embed") >= 1
    for stage in ("embed", "search", "answer"):
        assert grew(f"{stages}_sum", stage=stage) > 0
        assert value(after, f"{stages}_bucket", stage=stage, le="+Inf") == value(
            after, f"{stages}_count", stage=stage)
    assert grew("assistant_answers_total") == 3
    assert grew("assistant_refusals_total") == refused


def test_index_gauges(api: httpx.Client, seed_assistant: Assistant) -> None:
    samples = scrape(api)
    status = seed_assistant.status()
    assert value(samples, "assistant_index_up") == 1
    assert value(samples, "assistant_index_articles") == status["articles"] == 5
    assert value(samples, "assistant_index_chunks") == status["chunks"] > 0
    assert value(samples, "assistant_index_size_bytes") == status["size_bytes"]
    assert value(samples, "assistant_index_built_timestamp_seconds") > 1.5e9
    info = [labels for (name, labels) in samples if name == "assistant_index_info"]
    assert len(info) == 1
    assert dict(info[0])["generation"] == status["generation"]
    assert dict(info[0])["model"] == status["model"]


def test_unknown_paths_share_one_label(api: httpx.Client) -> None:
    for i in range(3):
        assert api.get(f"/nulle-part/{uuid.uuid4().hex}-{i}").status_code == 404
    samples = scrape(api)
    endpoints = {dict(labels).get("endpoint") for (name, labels) in samples
                 if name == "assistant_http_requests_total"}
    assert not any(e and e.startswith("/nulle-part") for e in endpoints)
    assert value(samples, "assistant_http_requests_total", endpoint="other", method="GET",
                 status="404") >= 3


def test_stage_timings_stop_with_the_server(seed_settings: Settings,
                                            seed_assistant: Assistant) -> None:
    """The app observes the assistant only while it serves (no leak across apps)."""
    before = len(seed_assistant._observers)
    with running_app(seed_settings, seed_assistant):
        assert len(seed_assistant._observers) == before + 1
    assert len(seed_assistant._observers) == before


# -- JSON logs ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_json_log_lines_from_assistant_serve(seed_settings: Settings, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    port = _free_port()
    stderr = (tmp_path / "stderr.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", str(port), "--index", str(seed_settings.index_dir),
         "--corpus", str(seed_settings.corpus_dir)],
        stdout=subprocess.DEVNULL, stderr=stderr,
        env={**os.environ, "ASSISTANT_LOG_FORMAT": "json"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, "le serveur s'est arrêté"
            assert time.monotonic() < deadline, "le serveur n'a pas démarré"
            try:
                if httpx.get(f"{url}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert httpx.post(f"{url}/api/search", json={"question": SURFACE},
                          timeout=60).status_code == 200
        assert httpx.post(f"{url}/api/ask", json={"question": ""},
                          timeout=60).status_code == 422
    finally:
        proc.terminate()
        proc.wait(30)
        stderr.seek(0)
        lines = [line for line in stderr.read().splitlines() if line.strip()]
        stderr.close()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["message"] == f"Assistant prêt sur {url}" for r in records)
    access = [r for r in records if r["logger"] == "ui.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("POST", "/api/search", 200), ("POST", "/api/ask", 422)]
    assert access[0]["endpoint"] == "/api/search" and access[0]["duration_ms"] > 0
