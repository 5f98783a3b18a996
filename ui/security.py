"""API keys and rate limits for the machine-facing paths, as one ASGI middleware.

    app.add_middleware(SecurityMiddleware, keys=KeyFile(path) | None, per_minute=60)

Paths under `/api`, `/v1` and `/mcp` (whatever routes other modules add there) go through it;
everything else (the chat at `/`, `/metrics`, `/openapi.json`, the API docs page `/api/docs`)
passes untouched. With keys, a request needs `Authorization: Bearer KEY`: without it, or with a
wrong or revoked key, the answer is 401 with `WWW-Authenticate: Bearer` and a French JSON error.
Each key (each client address when there are no keys, and each address for refused keys) gets a
token bucket of `per_minute` requests a minute (`Settings.rate_limit`: 60 per key by default with
keys, no limit by default without), refilled continuously; past it the answer is 429 with
`Retry-After` (whole seconds). Errors under `/v1` also carry OpenAI's `error` object so that
OpenAI clients show the message.

`chat_auth(settings, keys)` is the login check given to Gradio's `auth=` for the chat.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from assistant.config import Settings
from assistant.keys import KeyFile

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROTECTED = ("/api", "/v1", "/mcp")
OPEN = ("/api/docs",)  # a static page; the schema it reads is /openapi.json
MISSING_KEY = ("Clé d'API manquante : ajoutez l'en-tête « Authorization: Bearer VOTRE_CLÉ » "
               "(clés créées avec `assistant keys create NOM`).")
WRONG_KEY = "Clé d'API invalide ou révoquée : vérifiez la clé envoyée."
SCOPE_KEY = "assistant.api_key"  # the key's name, left in the ASGI scope for the access log
MAX_BUCKETS = 10_000


def is_protected(path: str) -> bool:
    """True for the paths that need a key: `/api`, `/v1`, `/mcp` and everything below them."""
    def under(prefix: str) -> bool:
        return path == prefix or path.startswith(prefix + "/")

    return any(under(p) for p in PROTECTED) and not any(under(p) for p in OPEN)


def too_many(seconds: int) -> str:
    return f"Trop de requêtes : limite atteinte, réessayez dans {seconds} s."


class RateLimiter:
    """Token buckets of `per_minute` requests, one per client name, refilled continuously."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens a second
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def take(self, name: str) -> int:
        """0 when the request may go; else the whole seconds to wait before the next one."""
        now = self.clock()
        tokens, at = self._buckets.get(name, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._buckets[name] = (tokens - 1.0, now)
            if len(self._buckets) > MAX_BUCKETS:
                self._forget_full(now)
            return 0
        self._buckets[name] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: they hold nothing a new bucket would not."""
        self._buckets = {
            n: (t, at) for n, (t, at) in self._buckets.items()
            if t + (now - at) * self.rate < self.capacity
        }


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "inconnu"


class SecurityMiddleware:
    """Keys, then the rate limit, on the protected paths (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, keys: KeyFile | None, per_minute: int) -> None:
        self.app = app
        self.keys = keys
        self.limiter = RateLimiter(per_minute) if per_minute > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_protected(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        client = "ip:" + client_address(scope)
        if self.keys is not None and scope.get("method") != "OPTIONS":
            token = bearer_token(scope)
            name = await self._verify(token) if token else None
            if name is None:
                wait = self.limiter.take(client) if self.limiter else 0  # slows key guessing
                if wait:
                    await self._refuse(scope, send, 429, too_many(wait), wait=wait)
                else:
                    await self._refuse(scope, send, 401, WRONG_KEY if token else MISSING_KEY,
                                       invalid=bool(token))
                return
            scope[SCOPE_KEY] = name
            client = "key:" + name
        if self.limiter is not None:
            wait = self.limiter.take(client)
            if wait:
                await self._refuse(scope, send, 429, too_many(wait), wait=wait)
                return
        await self.app(scope, receive, send)

    async def _verify(self, token: str) -> str | None:
        assert self.keys is not None
        if self.keys.is_cached(token):
            return self.keys.verify(token)
        return await anyio.to_thread.run_sync(self.keys.verify, token)  # scrypt: off the loop

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, message: str, *, wait: int = 0,
                      invalid: bool = False) -> None:
        body: dict[str, Any] = {"detail": message}
        if scope.get("path", "").startswith("/v1"):  # what OpenAI clients read
            code = "rate_limit_exceeded" if status == 429 else "invalid_api_key"
            kind = "rate_limit_error" if status == 429 else "authentication_error"
            body["error"] = {"message": message, "type": kind, "code": code, "param": None}
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = [(b"content-type", b"application/json; charset=utf-8"),
                   (b"content-length", str(len(payload)).encode())]
        if status == 401:
            challenge = 'Bearer realm="assistant"'
            if invalid:
                challenge += ', error="invalid_token"'
            headers.append((b"www-authenticate", challenge.encode()))
        if status == 429:
            headers.append((b"retry-after", str(wait).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def chat_auth(settings: Settings, keys: KeyFile | None) -> Callable[..., Awaitable[bool]] | None:
    """The chat's login check for Gradio's `auth=`, or None when the chat is open.

    Any user name; the password is `settings.chat_password`, or (with `chat_login_with_keys`)
    a valid API key."""
    password = settings.chat_password
    with_keys = keys if settings.chat_login_with_keys else None
    if not password and with_keys is None:
        return None

    async def check(username: str, given: str) -> bool:
        if password and hmac.compare_digest(given.encode("utf-8"), password.encode("utf-8")):
            return True
        if with_keys is not None:
            return await anyio.to_thread.run_sync(with_keys.verify, given) is not None
        return False

    return check


LOGIN_MESSAGE = ("Connexion requise : saisissez un nom (au choix) et le mot de passe du chat"
                 " ou votre clé d'API.")


def install_security(app: Any, settings: Settings) -> KeyFile | None:
    """Add the middleware to `app` when keys or a rate limit are set; returns the key file.

    Raises `ConfigError` when `settings.api_keys_file` does not exist or cannot be read."""
    keys = None
    if settings.api_keys_file is not None:
        keys = KeyFile(settings.api_keys_file)
        keys.check()
    if keys is not None or settings.rate_limit > 0:
        app.add_middleware(SecurityMiddleware, keys=keys, per_minute=settings.rate_limit)
    return keys
