"""API security: headers on every response, the request body limit, and the per-client rate limit.

Pages get a Content-Security-Policy without inline script or style (the UI needs none) and may not be
framed; every response gets nosniff and no referrer. The OpenAPI docs pages (/docs, /redoc) load
FastAPI's own CDN assets and inline bootstrap script, so they get only the framing rule.
Questions (/ask, /ask/stream) are rate limited per client address by a token bucket; CORS stays closed
unless origins are configured (see `create_app`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DOCS_CSP = "frame-ancestors 'none'"
DOCS = ("/docs", "/redoc")


class SecurityHeaders:
    """Adds CSP, X-Content-Type-Options, X-Frame-Options and Referrer-Policy to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if str(scope.get("path", "")).startswith(DOCS) else PAGE_CSP
        extra = [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff"),
                 (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                message["headers"] = headers + [h for h in extra if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)


class RateLimiter:
    """Token buckets per client: `burst` requests at once, refilled at `per_minute`; 0 per minute = no limit.

    At most `max_clients` buckets are kept (least recently seen dropped first), so memory stays bounded.
    """

    def __init__(self, per_minute: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate, self.burst, self.max_clients = per_minute / 60.0, float(burst), max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client → (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """Spend one token for `client`: 0.0 when allowed, else the seconds until a token is back."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait


def retry_after(wait: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))


class BodyLimit:
    """413 for a request body over `limit` bytes: by its Content-Length, or by counting what arrives."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.limit:
            await JSONResponse({"detail": _too_large(self.limit)}, 413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # HTTPException passes through FastAPI's body parsing
                    raise HTTPException(413, _too_large(self.limit))
            return message

        await self.app(scope, counted, send)


def _too_large(limit: int) -> str:
    return f"request body too large (limit {limit} bytes)"
