"""What the poll clients share: one httpx client (owned or lent), capped reads, and the rule that
429, 5xx, timeouts and network errors are ``CarrierUnavailable`` while every other answer is a
``FetchResult`` for the adapter; plus a cached OAuth client-credentials token.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from services.carriers.client import (
    DEFAULT_TIMEOUT_S,
    MAX_BODY_BYTES,
    CarrierUnavailable,
    FetchResult,
    parse_retry_after,
)
from shared.errors import PayloadTooLarge

DEFAULT_SIMULATOR_URL = "http://127.0.0.1:8100"
USER_AGENT = "throughline/0.1 (+poller)"

__all__ = [
    "DEFAULT_SIMULATOR_URL",
    "PollClient",
    "TokenCache",
    "basic_auth",
    "quote_number",
    "setting",
]


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def quote_number(tracking_number: str) -> str:
    """A tracking number as one path segment (nothing in it can change the path)."""
    return quote(tracking_number.strip(), safe="")


def setting(settings: Any, name: str, default: str) -> str:
    """A carrier setting the Settings class may not declare yet; blank values fall back too."""
    value = getattr(settings, name, None)
    return value if isinstance(value, str) and value else default


class PollClient:
    """Base of the per-carrier clients: ``_get`` / ``_send`` do the HTTP and the error rules."""

    carrier_name = "carrier"

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._owned = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._timeout = timeout
        self._max_body = max_body_bytes

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._http.aclose()

    async def fetch(self, tracking_number: str) -> FetchResult:
        """The carrier's answer for one number; each client speaks its own contract."""
        raise NotImplementedError

    async def _get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FetchResult:
        return await self._send("GET", path, params=params, headers=headers)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
    ) -> FetchResult:
        request = self._http.build_request(
            method,
            self._base + path,
            params=params,
            headers={"User-Agent": USER_AGENT, **(headers or {})},
            json=json,
            data=data,
            timeout=self._timeout,
        )
        try:
            response = await self._http.send(request, stream=True)
            try:
                self._raise_if_unavailable(response)
                body = await self._read_capped(response)
            finally:
                await response.aclose()
        except httpx.TransportError as exc:  # timeouts, refused connections, broken streams
            name = self.carrier_name
            raise CarrierUnavailable(f"{name} unreachable: {type(exc).__name__}: {exc}") from exc
        content_type = response.headers.get("content-type", "application/octet-stream")
        return FetchResult(response.status_code, body, content_type)

    def _raise_if_unavailable(self, response: httpx.Response) -> None:
        code = response.status_code
        if code == 429 or code >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise CarrierUnavailable(f"{self.carrier_name} answered HTTP {code}", retry_after, code)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge(
                f"{self.carrier_name} answer of {declared} bytes exceeds {self._max_body}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_body:
                raise PayloadTooLarge(f"{self.carrier_name} answer exceeds {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


class TokenCache:
    """An OAuth access token and when to stop using it (a minute before the carrier says)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._token: str | None = None
        self._until = 0.0

    @property
    def token(self) -> str | None:
        return self._token if self._token and self._clock() < self._until else None

    def store(self, token: str, expires_in: float) -> None:
        self._token = token
        self._until = self._clock() + max(0.0, expires_in - 60.0)

    def clear(self) -> None:
        self._token = None
