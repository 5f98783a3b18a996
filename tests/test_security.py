"""API keys, rate limits and the chat login, against a served app; keys made by the real CLI."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import openai
import pytest
from mcp import Client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

from assistant import Assistant, Settings
from assistant.errors import ConfigError
from ui.security import RateLimiter, is_protected

from .test_http_api import SURFACE, SURFACE_ANSWER
from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = GRADIO_WARNINGS

KEY = re.compile(r"sk-asst-[A-Za-z0-9_-]{43}")
SEARCH = {"question": SURFACE, "k": 3}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `assistant` entry point, in a real subprocess."""
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def create_key(path: Path, name: str) -> str:
    out = cli("keys", "create", name, "--file", str(path))
    assert out.returncode == 0, out.stderr
    assert KEY.fullmatch(out.stdout.strip()), out.stdout  # the key alone on stdout
    assert "ne sera plus affichée" in out.stderr
    return out.stdout.strip()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def base(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "keys.json"


@pytest.fixture(scope="module")
def alice(keys_file: Path) -> str:
    return create_key(keys_file, "alice")


@pytest.fixture(scope="module")
def secured(seed_settings: Settings, seed_assistant: Assistant, keys_file: Path,
            alice: str) -> Iterator[httpx.Client]:
    settings = seed_settings.replace(api_keys_file=keys_file, rate_limit_per_minute=1000)
    with running_app(settings, seed_assistant) as url:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client


# -- keys -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/search", "/v1/chat/completions", "/mcp", "/api/health"])
def test_no_key_is_401_in_french(secured: httpx.Client, path: str) -> None:
    response = secured.request("GET" if path.endswith("health") else "POST", path, json=SEARCH)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Clé d'API manquante" in response.json()["detail"]


@pytest.mark.parametrize("header", [
    "Bearer sk-asst-pas-une-vraie-cle-000000000000000000000000000",
    "Bearer n'importe-quoi",
    "Basic YWxpY2U6c2VjcmV0",
    "Bearer",
])
def test_wrong_key_is_401(secured: httpx.Client, alice: str, header: str) -> None:
    response = secured.post("/api/search", json=SEARCH, headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Clé d'API" in response.json()["detail"]


def test_key_with_right_prefix_but_wrong_secret_is_401(secured: httpx.Client, alice: str) -> None:
    forged = alice[:-6] + ("AAAAAA" if not alice.endswith("AAAAAA") else "BBBBBB")
    response = secured.post("/api/search", json=SEARCH, headers=bearer(forged))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert "invalide" in response.json()["detail"]


def test_key_from_the_cli_opens_the_api(secured: httpx.Client, alice: str) -> None:
    response = secured.post("/api/search", json=SEARCH, headers=bearer(alice))
    assert response.status_code == 200, response.text
    passages = response.json()
    assert any(p["source"] == "serre-numerique-valenciennes.txt" for p in passages)
    assert any(SURFACE_ANSWER.search(p["text"]) for p in passages)
    ask = secured.post("/api/ask", json={"question": SURFACE}, headers=bearer(alice))
    assert ask.status_code == 200 and ask.json()["in_corpus"] is True
    assert secured.get("/api/health", headers=bearer(alice)).json()["status"] == "ok"


def test_key_file_holds_no_plain_key(keys_file: Path, alice: str) -> None:
    text = keys_file.read_text(encoding="utf-8")
    secret = alice.removeprefix("sk-asst-")
    assert alice not in text and secret not in text and secret[8:] not in text
    (record,) = [r for r in json.loads(text)["keys"] if r["name"] == "alice"]
    assert set(record) >= {"name", "created", "salt", "hash"}
    assert len(bytes.fromhex(record["salt"])) >= 16 and len(bytes.fromhex(record["hash"])) == 32
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600


def test_list_and_revoke_with_the_cli(secured: httpx.Client, keys_file: Path) -> None:
    bob = create_key(keys_file, "bob")
    assert secured.post("/api/search", json=SEARCH, headers=bearer(bob)).status_code == 200
    listed = cli("keys", "list", "--json", env={"ASSISTANT_API_KEYS": str(keys_file)})
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert {"alice", "bob"} <= set(rows)
    assert rows["bob"]["prefix"].endswith("…") and bob not in listed.stdout
    assert re.match(r"\d{4}-\d\d-\d\dT", rows["bob"]["created"])

    revoked = cli("keys", "revoke", "bob", "--file", str(keys_file))
    assert revoked.returncode == 0, revoked.stderr
    after = secured.post("/api/search", json=SEARCH, headers=bearer(bob))
    assert after.status_code == 401  # no restart: the server re-reads the file
    again = cli("keys", "revoke", "bob", "--file", str(keys_file))
    assert again.returncode == 1 and "Aucune clé nommée « bob »" in again.stderr


def test_duplicate_name_is_refused(keys_file: Path, alice: str) -> None:
    out = cli("keys", "create", "alice", "--file", str(keys_file))
    assert out.returncode == 1 and "existe déjà" in out.stderr and not out.stdout


def test_chat_docs_and_metrics_stay_open(secured: httpx.Client) -> None:
    assert "<html" in secured.get("/").text.lower()
    assert secured.get("/metrics").status_code == 200
    assert secured.get("/openapi.json").status_code == 200
    assert secured.get("/api/docs").status_code == 200


def test_openai_client_with_and_without_key(secured: httpx.Client, alice: str) -> None:
    url = f"{base(secured)}/v1"
    good = openai.OpenAI(base_url=url, api_key=alice, max_retries=0, timeout=60)
    assert [m.id for m in good.models.list().data]
    bad = openai.OpenAI(base_url=url, api_key="sk-asst-mauvaise", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.models.list()
    assert "Clé d'API invalide" in str(caught.value)


def test_mcp_client_with_key(secured: httpx.Client, alice: str) -> None:
    async def session() -> list[str]:
        http = create_mcp_http_client(headers=bearer(alice))
        async with http, Client(streamable_http_client(f"{base(secured)}/mcp",
                                                       http_client=http),
                                read_timeout_seconds=120) as client:
            return [t.name for t in (await client.list_tools()).tools]

    assert {"search", "ask"} <= set(anyio.run(session))


def test_missing_key_file_stops_the_server(seed_settings: Settings, seed_assistant: Assistant,
                                           tmp_path: Path) -> None:
    from ui.app import create_app

    with pytest.raises(ConfigError, match="Fichier de clés introuvable"):
        create_app(seed_settings.replace(api_keys_file=tmp_path / "absent.json"), seed_assistant)


_RECORD = {"name": "a", "created": "2024-01-01T00:00:00+00:00", "prefix": "abcdefgh",
           "salt": "00" * 16, "hash": "00" * 32}
BAD_KEY_FILES = {
    "json-coupe": b'{"version": 1, "keys": [',
    "hash-non-hex": json.dumps({"version": 1, "keys": [{**_RECORD, "hash": "zz"}]}).encode(),
    "scrypt-texte": json.dumps({"version": 1, "keys": [{**_RECORD, "n": "grand"}]}).encode(),
    "dossier": None,  # the path is a directory
    "sous-un-fichier": None,  # a parent of the path is a file
}


@pytest.mark.parametrize("kind", list(BAD_KEY_FILES))
def test_bad_keys_file_is_one_french_line(tmp_path: Path, kind: str) -> None:
    """A keys file that is not one: `keys list|create` and `serve` (ASSISTANT_API_KEYS) say so
    in one French line and exit 1, no traceback; the file is left as it was; a request
    checked against it is refused, never a server error."""
    from assistant.keys import KeyFile

    path = tmp_path / "cles.json"
    if kind == "dossier":
        path.mkdir()
    elif kind == "sous-un-fichier":
        (tmp_path / "fichier").write_text("x", encoding="utf-8")
        path = tmp_path / "fichier" / "cles.json"
    else:
        path.write_bytes(BAD_KEY_FILES[kind] or b"")
    before = path.read_bytes() if path.is_file() else None
    runs = [cli("keys", "list", "--file", str(path)),
            cli("keys", "create", "bob", "--file", str(path)),
            cli("serve", "--index", str(tmp_path / "index"), env={"ASSISTANT_API_KEYS": str(path)})]
    for run in runs:
        assert run.returncode == 1, run.stderr
        assert run.stderr.startswith("Erreur : Fichier de clés ") and run.stderr.count("\n") == 1, \
            run.stderr
        assert str(path) in run.stderr and "Traceback" not in run.stderr
    assert (path.read_bytes() if path.is_file() else None) == before
    assert KeyFile(path).verify("sk-asst-abcdefgh" + "x" * 35) is None


# -- rate limit -----------------------------------------------------------------------------------
def test_rate_limit_per_key_429_with_retry_after(seed_settings: Settings,
                                                 seed_assistant: Assistant, keys_file: Path,
                                                 alice: str) -> None:
    carol = create_key(keys_file, "carol")
    settings = seed_settings.replace(api_keys_file=keys_file, rate_limit_per_minute=3)
    with running_app(settings, seed_assistant) as url, httpx.Client(base_url=url,
                                                                    timeout=60) as c:
        codes = [c.post("/api/search", json=SEARCH, headers=bearer(alice)).status_code
                 for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = c.post("/api/search", json=SEARCH, headers=bearer(alice))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 20  # 3 a minute: one every 20 s
        assert "Trop de requêtes" in limited.json()["detail"]
        v1 = c.get("/v1/models", headers=bearer(alice))  # one bucket for all paths of a key
        assert v1.status_code == 429 and v1.json()["error"]["code"] == "rate_limit_exceeded"
        # another key has its own bucket; the chat is not limited
        assert c.post("/api/search", json=SEARCH, headers=bearer(carol)).status_code == 200
        assert c.get("/").status_code == 200


def test_rate_limit_per_address_without_keys(seed_settings: Settings,
                                             seed_assistant: Assistant) -> None:
    with running_app(seed_settings.replace(rate_limit_per_minute=2), seed_assistant) as url, \
            httpx.Client(base_url=url, timeout=60) as c:
        assert [c.post("/api/search", json=SEARCH).status_code for _ in range(2)] == [200, 200]
        limited = c.post("/api/search", json=SEARCH)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert c.get("/metrics").status_code == 200


def test_rate_limiter_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, bursts of 60
    assert all(limiter.take("a") == 0 for _ in range(60))
    assert limiter.take("a") == 1 and limiter.take("b") == 0
    now[0] += 1.0
    assert limiter.take("a") == 0 and limiter.take("a") == 1
    slow = RateLimiter(2, clock=lambda: now[0])  # one every 30 s
    assert slow.take("x") == 0 and slow.take("x") == 0
    assert slow.take("x") == 30


def test_rate_limit_defaults(tmp_path: Path) -> None:
    assert Settings().rate_limit == 0  # no keys: the API behaves as before
    assert Settings(api_keys_file=tmp_path / "k.json").rate_limit == 60  # per key
    env = {"ASSISTANT_API_KEYS": str(tmp_path / "k.json"), "ASSISTANT_RATE_LIMIT_PER_MINUTE": "0"}
    assert Settings.from_env(env).rate_limit == 0
    assert Settings.from_env(env).api_keys_file == tmp_path / "k.json"
    with pytest.raises(ConfigError):
        Settings(rate_limit_per_minute=-1)


def test_protected_prefixes() -> None:
    for path in ("/api", "/api/search", "/v1/models", "/mcp", "/mcp/x", "/api/health"):
        assert is_protected(path), path
    for path in ("/", "/metrics", "/openapi.json", "/api/docs", "/apix", "/v10", "/gradio_api/x"):
        assert not is_protected(path), path


# -- chat login -----------------------------------------------------------------------------------
def test_chat_login_with_password_or_key(seed_settings: Settings, seed_assistant: Assistant,
                                         keys_file: Path, alice: str) -> None:
    settings = seed_settings.replace(api_keys_file=keys_file, chat_password="mot-de-passe",
                                     chat_login_with_keys=True)
    with running_app(settings, seed_assistant) as url:
        with httpx.Client(base_url=url, timeout=60) as anonymous:
            assert anonymous.get("/config").status_code == 401  # the page asks to log in
            refused = anonymous.post("/login", data={"username": "x", "password": "faux"})
            assert refused.status_code == 400
        for password in ("mot-de-passe", alice):
            with httpx.Client(base_url=url, timeout=60) as browser:
                login = browser.post("/login", data={"username": "lea", "password": password})
                assert login.status_code == 200 and login.json() == {"success": True}
                assert browser.get("/config").status_code == 200
                # the chat's session is no API key
                assert browser.post("/api/search", json=SEARCH).status_code == 401


def test_chat_open_without_login_settings(secured: httpx.Client) -> None:
    assert secured.get("/config").status_code == 200
