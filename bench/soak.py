"""Soak test: a server under steady load for many minutes, the corpus changing every minute.

    python bench/soak.py                   # 20 minutes (`make bench`)
    python bench/soak.py --minutes 6 --clients 3 --rate 8
    python bench/soak.py --minutes 8 --update-every 15   # 4 updates a minute: growth sooner

Starts `assistant serve --watch` on a temporary copy of the seed corpus (its index built first),
on 127.0.0.1 only; `--clients` threads send a steady mix of `POST /api/ask`, `POST /api/search`
and `POST /v1/chat/completions` (dev questions, `--rate` requests per second in all, every
request bounded by a timeout, the whole run by `--minutes`). Every minute (`--update-every`
seconds) one article is added or changed in the corpus (a synthetic article written, then
rewritten the next time), which the server's watcher indexes as it would a user's copy; none in
the last minute. Per minute: requests served, errors (any answer but a well-formed 200),
p50/p99 latency and the server's resident memory at the minute's end; then the growth of
resident memory from the end of minute 2 (after warm-up and the first updates) to the end
(target <= 5 %), and the errors (target 0). The exit status is 1 when either target is missed.
Writes bench/out/soak.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from common import OUT, describe_machine, machine, md_table, write_results  # type: ignore[import-not-found]
from load import BAD_BODY, SERVER_ENV, ask_api, ask_openai, free_port, questions, start_server  # type: ignore[import-not-found]
from synthetic import synthetic_article  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parent.parent
GROWTH_TARGET = 0.05  # resident memory, end of minute 2 -> end
TIMEOUT_S = 60.0  # per request


def search_api(http: httpx.Client, question: str, stream: bool = False) -> int:
    """`POST /api/search`: the status, or BAD_BODY for a 200 that is not a list of passages."""
    response = http.post("/api/search", json={"question": question, "k": 5})
    if response.status_code == 200 and not isinstance(response.json(), list):
        return BAD_BODY
    return response.status_code


CALLS = {"ask": ask_api, "search": search_api, "openai": ask_openai}


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` (MB): psutil when installed, else /proc."""
    try:
        import psutil

        return round(psutil.Process(pid).memory_info().rss / 2**20, 1)
    except ImportError:
        pass
    except Exception:  # the process is gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class Recorder:
    """(minute, call, status, seconds) of every request, from every client thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rows: list[tuple[int, str, int, float]] = []

    def add(self, minute: int, call: str, status: int, seconds: float) -> None:
        with self._lock:
            self.rows.append((minute, call, status, seconds))

    def minute(self, m: int) -> list[tuple[int, str, int, float]]:
        with self._lock:
            return [r for r in self.rows if r[0] == m]


def client(url: str, i: int, period: float, start: float, deadline: float, max_requests: int,
           stop: threading.Event, record: Recorder) -> None:
    """One client: the calls in turn, one request every `period` seconds (no catching up)."""
    qs = questions()
    calls = itertools.islice(itertools.cycle(CALLS), i, None)
    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as http:
        for j, call in zip(range(max_requests), calls, strict=False):
            now = time.monotonic()
            if stop.is_set() or now >= deadline:
                return
            t0 = time.perf_counter()
            try:
                status = CALLS[call](http, qs[(7 * i + j) % len(qs)])
            except (httpx.HTTPError, ValueError):
                status = 0
            record.add(int((now - start) // 60), call, status, time.perf_counter() - t0)
            stop.wait(max(0.0, period - (time.perf_counter() - t0)))


def change_corpus(corpus: Path, k: int) -> str:
    """Change k: a new article for even k, the last one rewritten for odd k."""
    n = k // 2
    path = corpus / f"soak-{n:03d}.txt"
    action = "added" if not path.exists() else "changed"
    tmp = corpus / f".{path.name}.tmp"  # hidden while written: the watcher sees one complete file
    tmp.write_text(synthetic_article(n + k % 2 * 1000, seed=7), encoding="utf-8")
    tmp.replace(path)
    return f"{action} {path.name}"


def minute_row(m: int, rows: list[tuple[int, str, int, float]], rss: float | None,
               change: str) -> dict[str, Any]:
    ok = [s for _, _, code, s in rows if code == 200]
    return {
        "minute": m + 1, "requests": len(rows), "ok": len(ok),
        "errors": sum(1 for _, _, code, _ in rows if code != 200),
        "statuses": sorted({code for _, _, code, _ in rows}),
        "p50_ms": round(float(np.percentile(ok, 50)) * 1000, 1) if ok else None,
        "p99_ms": round(float(np.percentile(ok, 99)) * 1000, 1) if ok else None,
        "rss_mb": rss, "corpus": change,
    }


def run(minutes: int, clients: int, rate: float, max_requests: int,
        update_every: float = 60.0) -> dict[str, Any]:
    from assistant import Settings
    from assistant.index.builder import update

    with tempfile.TemporaryDirectory(prefix="assistant-soak-") as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        shutil.copytree(ROOT / "corpus", corpus)
        update(Settings.from_env(corpus_dir=corpus, index_dir=index), progress=False)
        port = free_port()
        server = start_server(index, corpus, port, SERVER_ENV, extra=["--watch"])
        url = f"http://127.0.0.1:{port}"
        record, stop = Recorder(), threading.Event()
        start = time.monotonic()
        deadline = start + 60 * minutes
        threads = [threading.Thread(target=client, name=f"soak-client-{i}", args=(
            url, i, clients / rate, start, deadline, max_requests, stop, record))
            for i in range(clients)]
        for t in threads:
            t.start()
        per_minute: list[dict[str, Any]] = []
        changes = iter(range(int((60 * (minutes - 1) - 1) // update_every) + 1))
        due = next(changes, None)  # change k at start + k * update_every, none in the last minute
        try:
            for m in range(minutes):
                made = []
                while due is not None and due * update_every < 60 * (m + 1):
                    stop.wait(max(0.0, start + due * update_every - time.monotonic()))
                    made.append(change_corpus(corpus, due))
                    due = next(changes, None)
                stop.wait(max(0.0, start + 60 * (m + 1) - time.monotonic()))
                if server.poll() is not None:
                    raise RuntimeError(f"le serveur s'est arrêté (code {server.returncode})")
                per_minute.append(minute_row(m, record.minute(m), rss_mb(server.pid),
                                             ", ".join(made) or "–"))
                print(per_minute[-1], file=sys.stderr)
        finally:
            stop.set()
            for t in threads:
                t.join(TIMEOUT_S + 5)
            articles = httpx.get(f"{url}/api/health", timeout=30).json().get("articles")
            server.terminate()
            server.wait(30)
    base = per_minute[min(1, len(per_minute) - 1)]["rss_mb"]
    end = per_minute[-1]["rss_mb"]
    growth = (end - base) / base if base and end else None
    return {
        "minutes": minutes, "clients": clients, "rate_per_s": rate, "update_every_s": update_every,
        "per_minute": per_minute,
        "requests": sum(r["requests"] for r in per_minute),
        "errors": sum(r["errors"] for r in per_minute),
        "rss_growth": round(growth, 4) if growth is not None else None,
        "articles_at_end": articles,
    }


def markdown(data: dict[str, Any]) -> str:
    rows = [[r["minute"], r["requests"], r["errors"], r["p50_ms"], r["p99_ms"], r["rss_mb"],
             r["corpus"]] for r in data["per_minute"]]
    growth = data["rss_growth"]
    verdict = ("met" if growth is not None and growth <= GROWTH_TARGET and data["errors"] == 0
               else "MISSED")
    seconds = data.get("update_every_s", 60.0)
    every = "minute" if seconds == 60 else f"{seconds:g} s"
    option = "" if seconds == 60 else f" --update-every {seconds:g}"
    return "\n\n".join([
        f"### Soak ({data['minutes']} min, `assistant serve --watch`, corpus changing every "
        f"{every})",
        md_table(["minute", "requests", "errors", "p50 ms", "p99 ms", "server RSS MB",
                  "corpus change (indexed by the watcher)"], rows, digits=1),
        f"{data['clients']} clients sending a steady mix of `POST /api/ask`, `POST /api/search` "
        f"and `POST /v1/chat/completions` (~{data['rate_per_s']:g} requests/s in all) to a server "
        f"on the seed corpus, 127.0.0.1 only; every {every} one synthetic article added or "
        f"rewritten ({data['articles_at_end']} articles at the end). Resident memory growth "
        f"from the end of minute 2 to the end: {100 * (growth or 0):+.1f} % (target ≤ "
        f"{100 * GROWTH_TARGET:.0f} %), errors {data['errors']} of {data['requests']} (target 0): "
        f"{verdict}. `python bench/soak.py --minutes {data['minutes']}{option}`.",
        f"Machine: {describe_machine(data['machine'])}",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=20, help="duration (default 20)")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--rate", type=float, default=8.0,
                        help="requests per second, all clients together (default 8)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="per client")
    parser.add_argument("--update-every", type=float, default=60.0, metavar="SECONDS",
                        help="one article added or changed every SECONDS (default 60)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not 2 <= args.minutes <= 24 * 60 or not 1 <= args.clients <= 50 or args.rate <= 0:
        parser.error("minutes must be 2..1440, clients 1..50, rate > 0")
    if not 5 <= args.update_every <= 3600:
        parser.error("update-every must be 5..3600 seconds")
    data = {"machine": machine(),
            **run(args.minutes, args.clients, args.rate, args.max_requests, args.update_every)}
    md = write_results("soak", data, markdown(data), out=args.out)
    print(md.read_text(encoding="utf-8"))
    growth = data["rss_growth"]
    return 0 if data["errors"] == 0 and growth is not None and growth <= GROWTH_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
