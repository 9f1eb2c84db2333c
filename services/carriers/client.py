"""HTTP client for the DHL Shipment Tracking – Unified API, used by the poller.

Outcomes of ``DhlClient.fetch``:

- ``FetchResult`` for every answer the adapter can read: 200, 404 (an RFC 7807 "no shipment"
  document is an answer, not an error) and the other 4xx problem documents (400, 401, 403), which
  ``DhlAdapter.parse`` reports as ``carrier_error``.
- ``CarrierUnavailable`` (a ``RetryableError``) for 429, 5xx, timeouts and network errors, carrying
  the ``Retry-After`` seconds when the carrier sent them.
- ``PayloadTooLarge`` (an ``InvalidInput``) when the body exceeds ``max_body_bytes``: the download
  is abandoned at the cap, so a runaway body is never held in memory nor handed to the parser.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType

import httpx

from shared.errors import PayloadTooLarge, RetryableError
from shared.settings import Settings

DEFAULT_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 5 * 1024 * 1024
_USER_AGENT = "throughline/0.1 (+poller)"

__all__ = [
    "CarrierUnavailable",
    "DhlClient",
    "FetchResult",
    "backoff_delay",
    "parse_retry_after",
]


@dataclass(frozen=True)
class FetchResult:
    status_code: int
    body: bytes
    content_type: str


class CarrierUnavailable(RetryableError):
    """The carrier did not answer usefully (429, 5xx, timeout, network); try again later."""

    def __init__(
        self,
        message: str = "carrier unavailable",
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status_code = status_code


def backoff_delay(
    attempt: int,
    base: float = 1.0,
    cap: float = 300.0,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)). A carrier's
    ``Retry-After`` is a floor: we never come back sooner than it asked, even above ``cap``.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt, 0), 64))
    delay = rng() * ceiling
    if retry_after is not None and retry_after > delay:
        return float(retry_after)
    return delay


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class DhlClient:
    """``GET {base_url}/track/shipments?trackingNumber=..`` with the ``DHL-API-Key`` header."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._url = base_url.rstrip("/") + "/track/shipments"
        self._headers = {
            "DHL-API-Key": api_key,
            "Accept": "application/json",
            "User-Agent": _USER_AGENT,
        }
        self._owned = http is None
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(timeout))
        self._timeout = timeout
        self._max_body = max_body_bytes

    @classmethod
    def from_settings(cls, settings: Settings, http: httpx.AsyncClient | None = None) -> DhlClient:
        return cls(settings.dhl_base_url, settings.dhl_api_key, http=http)

    async def __aenter__(self) -> DhlClient:
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

    async def fetch(self, tracking_number: str, *, service: str | None = None) -> FetchResult:
        params = {"trackingNumber": tracking_number}
        if service:
            params["service"] = service
        try:
            return await self._get(params)
        except httpx.TransportError as exc:  # timeouts, refused connections, broken streams
            raise CarrierUnavailable(f"DHL unreachable: {type(exc).__name__}: {exc}") from exc

    async def _get(self, params: dict[str, str]) -> FetchResult:
        request = self._http.build_request(
            "GET", self._url, params=params, headers=self._headers, timeout=self._timeout
        )
        response = await self._http.send(request, stream=True)
        try:
            _raise_if_unavailable(response)
            body = await self._read_capped(response)
        finally:
            await response.aclose()
        content_type = response.headers.get("content-type", "application/octet-stream")
        return FetchResult(response.status_code, body, content_type)

    async def _read_capped(self, response: httpx.Response) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge(f"DHL answer of {declared} bytes exceeds {self._max_body}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self._max_body:
                raise PayloadTooLarge(f"DHL answer exceeds {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _raise_if_unavailable(response: httpx.Response) -> None:
    code = response.status_code
    if code == 429 or code >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise CarrierUnavailable(f"DHL answered HTTP {code}", retry_after, code)
