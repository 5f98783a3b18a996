"""Prometheus metrics at `GET /metrics`, and the access log of the API paths.

    metrics = install_metrics(app, assistant)   # before Gradio is mounted at "/"

Exported (text format, `prometheus-client`, one registry per app):

    assistant_http_requests_total{endpoint,method,status}    endpoint = the route template
    assistant_http_request_duration_seconds{endpoint,method} histogram, until the last byte
    assistant_stage_duration_seconds{stage}                  embed | search | answer (histogram)
    assistant_answers_total, assistant_refusals_total        refusals: answers not in the corpus
    assistant_index_articles, assistant_index_chunks, assistant_index_size_bytes,
    assistant_index_built_timestamp_seconds, assistant_index_info{generation,model,backend} 1,
    assistant_index_up                                       read from `Assistant.status()` at
                                                             each scrape (0 when the index fails)

Stage timings come from `Assistant.add_observer` (see `assistant/core.py`: "search" includes the
question's embedding, "answer" the answerer's own). Requests that match no route count under
the endpoint "other", so scanners cannot grow the label set. `/metrics` needs no key: restrict it
at the reverse proxy, or keep the server on 127.0.0.1 (the default).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Mount

from assistant.core import Assistant
from assistant.records import Answer

from .security import SCOPE_KEY, ASGIApp, Receive, Scope, Send, client_address, is_protected

log = logging.getLogger(__name__)
access_log = logging.getLogger("ui.access")

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER = "other"


class Metrics:
    """The app's registry; an `Assistant` observer (stage timings, refusals)."""

    def __init__(self, assistant: Assistant) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "assistant_http_requests", "Requêtes HTTP par route, méthode et statut",
            ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "assistant_http_request_duration_seconds", "Durée des requêtes HTTP (s)",
            ["endpoint", "method"], registry=self.registry)
        self.stages = Histogram(
            "assistant_stage_duration_seconds",
            "Durée des étapes d'une question (s) : embed, search, answer",
            ["stage"], buckets=STAGE_BUCKETS, registry=self.registry)
        self.answers = Counter("assistant_answers", "Réponses produites",
                               registry=self.registry)
        self.refusals = Counter("assistant_refusals",
                                "Réponses « hors corpus » (in_corpus false)",
                                registry=self.registry)
        for stage in ("embed", "search", "answer"):
            self.stages.labels(stage)  # present from the first scrape, at 0
        self.registry.register(IndexCollector(assistant))

    # -- Assistant observer -----------------------------------------------------------------
    def stage(self, name: str, seconds: float) -> None:
        self.stages.labels(name).observe(seconds)

    def answered(self, answer: Answer) -> None:
        self.answers.inc()
        if not answer.in_corpus:
            self.refusals.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class IndexCollector(Collector):
    """Index gauges, read from `Assistant.status()` when Prometheus scrapes."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("assistant_index_up", "1 quand l'index se lit, sinon 0")
        try:
            status = self.assistant.status()
        except Exception:  # any failure to read it is what this gauge reports
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, key, text in (
            ("assistant_index_articles", "articles", "Articles dans l'index"),
            ("assistant_index_chunks", "chunks", "Passages dans l'index"),
            ("assistant_index_size_bytes", "size_bytes", "Taille de la génération (octets)"),
        ):
            yield GaugeMetricFamily(name, text, value=float(status[key]))
        built = _timestamp(status.get("built_at"))
        if built is not None:
            yield GaugeMetricFamily("assistant_index_built_timestamp_seconds",
                                    "Date de construction de la génération (epoch)", value=built)
        info = GaugeMetricFamily("assistant_index_info", "Génération servie, modèle, backend",
                                 labels=["generation", "model", "backend"])
        info.add_metric([str(status.get("generation", "")), str(status.get("model", "")),
                         str(status.get("backend", ""))], 1)
        yield info


def _timestamp(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def endpoint_of(scope: Scope, known: frozenset[str]) -> str:
    """The route template that served `scope`; for a request refused before routing (401,
    429), its path when that is one of the `known` templates; else "other"."""
    route = scope.get("route")
    if route is not None and not isinstance(route, Mount):
        mount = scope.get("root_path", "")[len(scope.get("assistant.root_path", "")):]
        return mount.rstrip("/") + str(getattr(route, "path", ""))
    path = scope.get("path", "")
    if path in known:
        return str(path)
    for prefix in known:  # mounted sub-apps (e.g. /mcp) by their mount path
        if prefix.endswith("/") and path.startswith(prefix):
            return prefix.rstrip("/")
    return OTHER


def known_paths(app: Any) -> frozenset[str]:
    """The app's path templates (documented or not), and its sub-app mounts as "/prefix/"."""
    try:
        paths = set(app.openapi().get("paths", {}))
    except Exception:  # a schema that cannot be built only costs the label of refusals
        log.warning("schéma OpenAPI indisponible pour les métriques", exc_info=True)
        paths = set()
    for route in getattr(app, "routes", ()):  # plain routes added outside FastAPI (e.g. /mcp)
        path = getattr(route, "path", None)
        if isinstance(path, str) and path:
            paths.add(f"{path}/" if isinstance(route, Mount) else path)
    return frozenset(paths)


class MetricsMiddleware:
    """Counts and times every HTTP request; logs those of the API paths to `ui.access`."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, routes: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the FastAPI app, for its route table
        self._known: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["assistant.root_path"] = scope.get("root_path", "")
        path, method = scope.get("path", ""), scope.get("method", "")
        status = 500
        start = time.perf_counter()

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            if self._known is None:  # all routes exist once requests come in
                self._known = known_paths(self.routes)
            endpoint = endpoint_of(scope, self._known)
            self.metrics.requests.labels(endpoint, method, str(status)).inc()
            self.metrics.latency.labels(endpoint, method).observe(seconds)
            if is_protected(path):
                access_log.info(
                    "%s %s %s %.0f ms", method, path, status, seconds * 1000,
                    extra={"method": method, "path": path, "endpoint": endpoint,
                           "status": status, "duration_ms": round(seconds * 1000, 1),
                           "client": client_address(scope), "api_key": scope.get(SCOPE_KEY)},
                )


def install_metrics(app: FastAPI, assistant: Assistant) -> Metrics:
    """Add `GET /metrics` and the middleware to `app`; observe `assistant` while it serves.

    Call before Gradio is mounted at "/" (a route added after the mount would never match),
    and after the other middlewares, so that requests they refuse (401, 429) are counted."""
    metrics = Metrics(assistant)

    def scrape() -> Response:  # sync: FastAPI runs it in a worker thread (reads the manifest)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/metrics", scrape, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app)

    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        add = getattr(assistant, "add_observer", None)
        if add is not None:
            add(metrics)
        try:
            async with inner(app_) as state:
                yield state
        finally:
            if add is not None:
                assistant.remove_observer(metrics)

    app.router.lifespan_context = lifespan
    return metrics
