"""Load test of the HTTP API on loopback: N concurrent clients, bounded in count and time.

    python bench/load.py                       # 20 clients x 10 questions, own server on the seeds
    python bench/load.py --clients 4 --questions 2 --max-seconds 60
    python bench/load.py --url http://127.0.0.1:7860   # an already running server
    python bench/load.py --scenarios openai --stream   # only /v1/chat/completions, streamed
    python bench/load.py --url URL --api-key sk-asst-…  # a server with ASSISTANT_API_KEYS

Phase 1 (steady), once per scenario: every client asks its questions one after the other, through
`POST /api/ask` (scenario `api`) or the OpenAI-compatible `POST /v1/chat/completions` (scenario
`openai`, skipped with a note when the server has no `/v1/models`); the report counts failures
(anything but 200 with a well-formed answer) and gives latency p50/p95. Phase 2 (burst), only
with its own server: a second server with a tiny queue (ASSISTANT_QUEUE_SIZE=2) gets a burst of
simultaneous requests; the extra ones must get a clean 503 "busy" answer, and the server must
answer normally right after. The servers it starts have no rate limit
(ASSISTANT_RATE_LIMIT_PER_MINUTE=0); a server given with `--url` needs one above the load, or
429 answers count as failures. Only loopback addresses are ever contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
_SHARED_DEV = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"
DEV = _SHARED_DEV if _SHARED_DEV.exists() else ROOT / "tests" / "data" / "dev_questions.jsonl"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SCENARIOS = ("api", "openai")
#: The servers this script starts: no rate limit, since all clients share one address.
SERVER_ENV = {"ASSISTANT_RATE_LIMIT_PER_MINUTE": "0"}
BAD_BODY = -1  # a 200 whose body is not a well-formed answer


def questions() -> list[str]:
    with open(DEV, encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    index: Path, corpus: Path, port: int, env: dict[str, str], extra: list[str] | None = None,
) -> subprocess.Popen[Any]:
    """`assistant serve [extra]` in a child process; returns once /api/health answers 200."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "serve", "--index", str(index), "--corpus",
         str(corpus), "--port", str(port), *(extra or [])],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"le serveur s'est arrêté (code {proc.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("le serveur n'a pas démarré en 180 s")


def ask_api(http: httpx.Client, question: str, stream: bool = False) -> int:
    """`POST /api/ask`: the status, or BAD_BODY for a 200 without an answer."""
    response = http.post("/api/ask", json={"question": question})
    if response.status_code == 200 and not isinstance(response.json().get("answer"), str):
        return BAD_BODY
    return response.status_code


def ask_openai(http: httpx.Client, question: str, stream: bool = False) -> int:
    """`POST /v1/chat/completions`, streamed (read to `data: [DONE]`) or not: the status, or
    BAD_BODY for a 200 without the answer's text."""
    body = {"model": "assistant", "stream": stream,
            "messages": [{"role": "user", "content": question}]}
    if not stream:
        response = http.post("/v1/chat/completions", json=body)
        if response.status_code != 200:
            return response.status_code
        choices = response.json().get("choices") or [{}]
        return 200 if (choices[0].get("message") or {}).get("content") else BAD_BODY
    text, done = [], False
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            return response.status_code
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                for choice in json.loads(line[6:]).get("choices", []):
                    text.append((choice.get("delta") or {}).get("content") or "")
    return 200 if done and "".join(text).strip() else BAD_BODY


def openai_available(url: str, headers: dict[str, str]) -> str | None:
    """Why the OpenAI scenario is skipped (no `/v1/models` on the server), or None."""
    try:
        response = httpx.get(f"{url}/v1/models", headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        return f"GET /v1/models: {exc}"
    if response.status_code == 404:
        return "the server has no /v1/models (OpenAI-compatible endpoint absent)"
    return None  # any other answer: run it, and count what fails


ASK = {"api": ask_api, "openai": ask_openai}
ENDPOINTS = {"api": "POST /api/ask", "openai": "POST /v1/chat/completions"}


def steady(url: str, clients: int, per_client: int, max_seconds: float, scenario: str = "api",
           headers: dict[str, str] | None = None, stream: bool = False) -> dict[str, Any]:
    qs = questions()
    deadline = time.monotonic() + max_seconds
    ask = ASK[scenario]

    def client(i: int) -> list[tuple[int, float]]:
        results = []
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            for j in range(per_client):
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                try:
                    status = ask(http, qs[(i + j) % len(qs)], stream)
                except (httpx.HTTPError, ValueError):  # ValueError: a body that is not JSON
                    status = 0
                results.append((status, time.perf_counter() - t0))
        return results

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = [r for rs in pool.map(client, range(clients)) for r in rs]
    wall = time.perf_counter() - t0
    ok = [s for code, s in done if code == 200]
    return {
        "scenario": scenario, "endpoint": ENDPOINTS[scenario],
        "stream": stream and scenario == "openai",
        "clients": clients, "questions_per_client": per_client, "requests": len(done),
        "ok": len(ok), "failed": sum(1 for code, _ in done if code != 200),
        "statuses": sorted({code for code, _ in done}),
        "p50_ms": round(float(np.percentile(ok, 50)) * 1000, 1) if ok else None,
        "p95_ms": round(float(np.percentile(ok, 95)) * 1000, 1) if ok else None,
        "wall_s": round(wall, 1), "throughput_rps": round(len(ok) / wall, 2) if wall else None,
    }


def burst(url: str, size: int) -> dict[str, Any]:
    """`size` simultaneous asks at a server with a tiny queue, then one more once it is idle."""
    qs = questions()

    def one(i: int) -> int:
        try:
            return httpx.post(f"{url}/api/ask", json={"question": qs[i % len(qs)]},
                              timeout=120).status_code
        except httpx.HTTPError:
            return 0

    with ThreadPoolExecutor(size) as pool:
        codes = list(pool.map(one, range(size)))
    busy_body = httpx.post(f"{url}/api/ask", json={"question": qs[0]}, timeout=120)
    return {
        "requests": size, "ok": codes.count(200), "busy_503": codes.count(503),
        "other": sum(1 for c in codes if c not in (200, 503)),
        "recovered": busy_body.status_code == 200,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "### Load (HTTP API on loopback)",
        "",
        "| endpoint | clients x questions | requests | failed | p50 ms | p95 ms | "
        "throughput req/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("steady", "openai"):
        s = result.get(key)
        if s:
            endpoint = s.get("endpoint", ENDPOINTS["api"]) + (" (stream)" if s.get("stream")
                                                              else "")
            lines.append(
                f"| `{endpoint}` | {s['clients']} x {s['questions_per_client']} | "
                f"{s['requests']} | {s['failed']} | {s['p50_ms']} | {s['p95_ms']} | "
                f"{s['throughput_rps']} |")
    lines.append("")
    if result.get("openai_skipped"):
        lines += [f"OpenAI-compatible scenario skipped: {result['openai_skipped']}.", ""]
    b = result.get("burst")
    if b:
        lines += [
            f"Burst of {b['requests']} simultaneous questions at a server started with "
            f"`ASSISTANT_QUEUE_SIZE=2`: {b['ok']} answered, {b['busy_503']} got the clean "
            f"503 « Serveur occupé », {b['other']} other; next request after the burst: "
            f"{'200 (recovered)' if b['recovered'] else 'FAILED'}.",
            "",
        ]
    lines.append("Extractive answers, seed index, one scenario after the other; "
                 "`python bench/load.py`.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server on loopback (default: start one)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="per client")
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--burst", type=int, default=12, help="0 skips the burst phase")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated: api (POST /api/ask), openai (POST "
                             "/v1/chat/completions); default: both")
    parser.add_argument("--stream", action="store_true",
                        help="the openai scenario streams its answers (server-sent events)")
    parser.add_argument("--api-key", default=os.environ.get("ASSISTANT_LOAD_API_KEY"),
                        help="sent as `Authorization: Bearer` to a server with API keys "
                             "(default: $ASSISTANT_LOAD_API_KEY)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 1 <= args.questions <= 1000:
        parser.error("clients must be 1..200 and questions 1..1000")
    scenarios = [s for s in args.scenarios.split(",") if s]
    if not scenarios or any(s not in SCENARIOS for s in scenarios):
        parser.error(f"scenarios: a comma-separated list of {', '.join(SCENARIOS)}")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}

    def run_scenarios(url: str) -> None:
        for scenario in scenarios:
            if scenario == "openai":
                skipped = openai_available(url, headers)
                if skipped:
                    result["openai_skipped"] = skipped
                    continue
            key = "steady" if scenario == "api" else scenario
            result[key] = steady(url, args.clients, args.questions, args.max_seconds,
                                 scenario, headers, args.stream)

    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M")}
    if args.url:
        if urlparse(args.url).hostname not in LOOPBACK:
            parser.error("only loopback servers may be load-tested")
        run_scenarios(args.url)
    else:
        from assistant import Settings
        from assistant.index.builder import update

        with tempfile.TemporaryDirectory(prefix="assistant-load-") as tmp:
            corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
            shutil.copytree(ROOT / "corpus", corpus)
            update(Settings.from_env(corpus_dir=corpus, index_dir=index), progress=False)
            port = free_port()
            server = start_server(index, corpus, port, SERVER_ENV)
            try:
                run_scenarios(f"http://127.0.0.1:{port}")
            finally:
                server.terminate()
                server.wait(30)
            if args.burst:
                port = free_port()
                server = start_server(index, corpus, port, {**SERVER_ENV,
                                                            "ASSISTANT_QUEUE_SIZE": "2",
                                                            "ASSISTANT_CONCURRENCY": "1"})
                try:
                    result["burst"] = burst(f"http://127.0.0.1:{port}", args.burst)
                finally:
                    server.terminate()
                    server.wait(30)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "load.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (args.out / "load.md").write_text(markdown(result) + "\n", encoding="utf-8")
    print(markdown(result))
    steady_ok = all(result[key]["failed"] == 0 for key in ("steady", "openai") if key in result)
    burst_ok = "burst" not in result or (result["burst"]["other"] == 0
                                         and result["burst"]["recovered"])
    return 0 if steady_ok and burst_ok else 1


if __name__ == "__main__":
    sys.exit(main())
