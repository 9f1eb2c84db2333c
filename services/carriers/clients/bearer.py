"""The OAuth client-credentials flow UPS and FedEx share: one token, reused until shortly before it
expires, fetched by one request at a time, renewed once when the API says 401.

A token request the carrier refuses (4xx) is returned as the ``FetchResult``: its error body is what
the adapter reports. 429 and 5xx on either endpoint are ``CarrierUnavailable`` (``PollClient``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from services.carriers.client import CarrierUnavailable, FetchResult
from services.carriers.clients.base import PollClient, TokenCache


class BearerClient(PollClient):
    """A ``PollClient`` whose requests carry ``Authorization: Bearer <token>``."""

    def __init__(self, base_url: str, *, tokens: TokenCache | None = None, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self._tokens = tokens or TokenCache()
        self._token_lock = asyncio.Lock()
        self.tokens_fetched = 0

    async def _request_token(self) -> FetchResult:
        """POST the carrier's token request; subclasses say how."""
        raise NotImplementedError

    async def _with_token(self, call: Callable[[str], Awaitable[FetchResult]]) -> FetchResult:
        """``call(token)``, with one new token and one retry if the API answers 401."""
        for attempt in range(2):
            token = await self._token()
            if isinstance(token, FetchResult):
                return token
            result = await call(token)
            if result.status_code != 401 or attempt == 1:
                return result
            self._tokens.clear()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _token(self) -> str | FetchResult:
        """A usable token, or the carrier's answer refusing one."""
        async with self._token_lock:  # concurrent polls share one token request
            cached = self._tokens.token
            if cached is not None:
                return cached
            result = await self._request_token()
            if result.status_code != 200:
                return result
            token, expires_in = _read_token(result.body, self.carrier_name)
            self._tokens.store(token, expires_in)
            self.tokens_fetched += 1
            return token


def _read_token(body: bytes, carrier: str) -> tuple[str, float]:
    """``access_token`` and ``expires_in`` (UPS sends the seconds as a string: "14399")."""
    try:
        doc = json.loads(body)
        token, expires_in = doc["access_token"], float(doc.get("expires_in", 300))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CarrierUnavailable(f"{carrier} token answer unreadable: {exc}") from exc
    if not isinstance(token, str) or not token:
        raise CarrierUnavailable(f"{carrier} token answer without an access_token")
    return token, expires_in
