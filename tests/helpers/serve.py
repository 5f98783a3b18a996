"""`assistant serve` as a real subprocess on a free port, for tests of a launched server.

    with launched_server(["--index", str(index)], {"ASSISTANT_STORE": "qdrant"}, log) as base:
        httpx.get(f"{base}/api/health")

The environment is the test's without any ASSISTANT_* variable, plus `env`; the server's stderr
goes to `log` (shown if it dies before answering /api/health).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def launched_server(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """Start `assistant serve --port P ARGS`, wait until /api/health answers 200, yield the
    base URL; terminate it when the block ends."""
    port = free_port()
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    with open(log, "w", encoding="utf-8") as stderr:
        server = subprocess.Popen([*cmd, "serve", "--port", str(port), *args],
                                  env={**base_env, **env}, stdout=subprocess.DEVNULL,
                                  stderr=stderr)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert server.poll() is None, log.read_text(encoding="utf-8")
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "le serveur n'a pas démarré"
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
