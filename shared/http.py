"""HTTP plumbing shared by every service API: one error renderer, body limits, auth, rate limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth import Principal, authenticate
from shared.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
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

    @app.middleware("http")
    async def limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            return problem(
                413, "Payload too large", f"request bodies are limited to {max_bytes} bytes"
            )
        if length is None and request.method in ("POST", "PUT", "PATCH"):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > max_bytes:
                    return problem(
                        413, "Payload too large", f"request bodies are limited to {max_bytes} bytes"
                    )
            request._body = body  # already read: let the endpoint use it
        return await call_next(request)


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


def _bearer(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    async def dependency(
        session: SessionDep,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Principal:
        principal = await authenticate(session, _bearer(authorization, x_api_key))
        principal.require(scope)
        return principal

    return dependency


class RateLimiter:
    """A token bucket per client; in memory, per process (a public endpoint's first line of defence)."""

    def __init__(self, per_minute: int, burst: int | None = None):
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(10, per_minute // 4))
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > 100_000:
                self._buckets.clear()
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1 - tokens) / self.rate
