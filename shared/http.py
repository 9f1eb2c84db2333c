"""HTTP plumbing shared by every service API: one error renderer, body limits, auth, rate limits."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Principal, authenticate
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ThroughlineError,
    Unauthorized,
)

PROBLEM = "application/problem+json"
_STATUS: list[tuple[type[ThroughlineError], int, str]] = [
    (PayloadTooLarge, 413, "Payload too large"),
    (InvalidInput, 422, "Invalid input"),
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (Unauthorized, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
]


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def on_error(_: Request, exc: Exception) -> Response:
        if isinstance(exc, RateLimited):
            resp = problem(429, "Too many requests", str(exc))
            resp.headers["Retry-After"] = str(max(1, exc.retry_after_s))
            return resp
        for kind, status, title in _STATUS:
            if isinstance(exc, kind):
                return problem(status, title, str(exc))
        return problem(500, "Internal error", "unexpected error")

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"] if p != "body") or "body",
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return problem(422, "Invalid request", summary, errors=errors)

    app.add_exception_handler(ThroughlineError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)


def install_body_limit(app: FastAPI, max_bytes: int) -> None:
    """Refuse bodies over ``max_bytes`` before they are read whole."""
    app.add_middleware(_BodyLimit, max_bytes=max_bytes)


class _BodyLimit:
    """Plain ASGI (no per-request task group or stream, unlike ``@app.middleware``): a request
    with a body costs one check here, and a GET nothing but a header lookup."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        if length is None and scope["method"] in ("POST", "PUT", "PATCH"):
            # Chunked: read it all (up to the limit) before the endpoint sees any of it.
            messages: list[Message] = []
            size = 0
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                if not message.get("more_body", False):
                    break
            pending = iter(messages)

            async def replay() -> Message:
                return next(pending, None) or await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        await problem(413, "Payload too large", detail)(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: commit on success, roll back on error."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


SessionDep = Annotated[AsyncSession, Depends(get_session)]


# Declared as security schemes, so the OpenAPI document says how to authenticate (and clients and
# fuzzers send a key instead of treating the headers as free-form parameters). Either one works.
_BEARER = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer tl_...`")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key: tl_...")


def _bearer(
    authorization: HTTPAuthorizationCredentials | str | None, x_api_key: str | None
) -> str | None:
    """The key from ``X-API-Key``, else from ``Authorization: Bearer`` (as parsed by the security
    scheme, or as the raw header a streaming endpoint reads itself)."""
    if x_api_key:
        return x_api_key
    if isinstance(authorization, str):
        scheme, _, credentials = authorization.strip().partition(" ")
        return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None
    if authorization is not None:
        return authorization.credentials.strip()
    return None


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """Authenticate the key, check its scope and, when the app has one, its rate limit."""

    async def dependency(
        request: Request,
        session: SessionDep,
        authorization: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
        x_api_key: Annotated[str | None, Depends(_API_KEY)] = None,
    ) -> Principal:
        principal = await authenticate(session, _bearer(authorization, x_api_key))
        principal.require(scope)
        limiter: RateLimiter | None = getattr(request.app.state, "key_limiter", None)
        if limiter is not None:
            decision = limiter.take(str(principal.key_id))
            request.state.rate_limit_headers = decision.headers()
            if not decision.allowed:
                raise RateLimited(
                    f"this API key is limited to {limiter.per_minute} requests a minute "
                    f"(bursts of {int(limiter.burst)}); retry after {decision.retry_after_s} s",
                    decision.retry_after_s,
                )
        return principal

    return dependency


def install_key_rate_limit(app: FastAPI, per_minute: int, burst: int) -> None:
    """A token bucket per API key on every endpoint behind ``require_scope``.

    In memory and per process: with N API processes a key gets up to N times the rate. Every
    authenticated answer, errors included, carries ``RateLimit-Limit`` (the bucket size),
    ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds until the bucket is full again).
    """
    app.state.key_limiter = RateLimiter(per_minute, burst)
    app.add_middleware(_RateLimitHeaders)


class _RateLimitHeaders:
    """Adds the headers ``require_scope`` left in the request state to the answer (plain ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: dict[str, str] | None = scope.get("state", {}).get("rate_limit_headers")
                if headers:
                    MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    wait_s: float  # 0 when allowed
    full_in_s: float  # until the bucket is full again

    @property
    def retry_after_s(self) -> int:
        return math.ceil(self.wait_s) if self.wait_s > 0 else 0

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.full_in_s)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.retry_after_s))
        return headers


class RateLimiter:
    """A token bucket per client; in memory, per process (a public endpoint's first line of defence)."""

    def __init__(self, per_minute: int, burst: int | None = None):
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(10, per_minute // 4))
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> RateDecision:
        """Spend one token if there is one; says what is left either way."""
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[client] = (tokens, now)
        if allowed and len(self._buckets) > 100_000:
            self._buckets.clear()
        return RateDecision(
            allowed=allowed,
            limit=int(self.burst),
            remaining=int(tokens),
            wait_s=0.0 if allowed else (1 - tokens) / self.rate,
            full_in_s=(self.burst - tokens) / self.rate,
        )

    def check(self, client: str) -> float:
        """0 when allowed, else the seconds to wait."""
        return self.take(client).wait_s
