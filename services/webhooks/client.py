"""The HTTP client that POSTs webhooks: aiohttp, because it keeps its throughput under fan-out.

Measured on a loopback receiver (``bench/webhooks_send.py`` repeats it): httpx 0.28 fell from
~1.0k to ~0.3k POSTs/s between 1 and 200 in flight, aiohttp 3.14 went from ~3k to ~8-9k/s.

Every connection is opened through ``CheckedResolver``: the host is resolved at connect time, every
address is checked against the SSRF rules, and the connection goes to those same addresses while
the ``Host`` header and TLS SNI keep the name. The DNS cache is off, so each new connection is
checked again; a kept-alive connection is reused only with the address it was checked on. IP
literals never reach a resolver, so they are checked before the request. Redirects are not
followed, compressed answers are not inflated, and at most ``max_response_bytes`` are read.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.webhooks import ssrf
from services.webhooks.schedule import SLOW_DOWN, parse_retry_after

KEPT_RESPONSE_BYTES = 2048
USER_AGENT = "Throughline-Webhooks/0.1 (+https://www.standardwebhooks.com/)"


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    response_body: str | None = None
    error: str | None = None
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class CheckedResolver(AbstractResolver):
    """Resolves like aiohttp does, then refuses the connection unless every address is allowed."""

    def __init__(self, *, allow_loopback: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_loopback = allow_loopback

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        addresses = [r["host"] for r in results]
        ssrf.check_addresses(host, addresses, allow_loopback=self._allow_loopback)
        return results

    async def close(self) -> None:
        await self._inner.close()


class WebhookClient:
    def __init__(
        self,
        *,
        timeout_s: float,
        max_in_flight: int,
        allow_loopback: bool,
        max_response_bytes: int = 65536,
    ) -> None:
        self._timeout_s = timeout_s
        self._max_in_flight = max_in_flight
        self._allow_loopback = allow_loopback
        self._max_response_bytes = max_response_bytes
        self._session: aiohttp.ClientSession | None = None
        # Syntax and IP-literal verdicts per URL (names are checked at every connection instead).
        self._literal_checks: dict[str, tuple[type[Exception], str] | None] = {}

    async def __aenter__(self) -> WebhookClient:
        connector = aiohttp.TCPConnector(
            limit=self._max_in_flight,
            limit_per_host=0,  # per-endpoint caps live in the sender; many endpoints share hosts
            resolver=CheckedResolver(allow_loopback=self._allow_loopback),
            use_dns_cache=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        """One attempt. Never raises for anything the receiver or the network does."""
        assert self._session is not None, "use the client as an async context manager"
        started = time.monotonic()
        try:
            self._check_literal(url)
            async with self._session.post(
                url,
                data=body,
                headers={**headers, "Content-Type": "application/json"},
                allow_redirects=False,
            ) as resp:
                raw, truncated = await self._read(resp)
                if truncated:
                    resp.close()  # do not drain an answer we will not keep
                retry_after = None
                if resp.status in SLOW_DOWN:
                    retry_after = parse_retry_after(
                        resp.headers.get("Retry-After"), datetime.now(UTC)
                    )
                return Outcome(
                    status_code=resp.status,
                    latency_ms=_ms(started),
                    response_body=raw[:KEPT_RESPONSE_BYTES].decode("utf-8", "replace"),
                    retry_after_s=retry_after,
                )
        except (ssrf.UnsafeUrl, ssrf.ForbiddenAddress) as exc:
            return Outcome(None, _ms(started), error=str(exc))
        except TimeoutError:
            return Outcome(None, _ms(started), error=f"timed out after {self._timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return Outcome(None, _ms(started), error=_describe(exc))

    def _check_literal(self, url: str) -> None:
        if url not in self._literal_checks:
            refused: tuple[type[Exception], str] | None = None
            try:
                target = ssrf.parse_url(url)
                literal = ssrf.ip_literal(target.host)
                if literal is not None:
                    ssrf.check_addresses(
                        target.host, [str(literal)], allow_loopback=self._allow_loopback
                    )
            except (ssrf.UnsafeUrl, ssrf.ForbiddenAddress) as exc:
                refused = (type(exc), str(exc))
            if len(self._literal_checks) > 10_000:
                self._literal_checks.clear()
            self._literal_checks[url] = refused  # the rules depend on the URL alone
        verdict = self._literal_checks[url]
        if verdict is not None:
            kind, message = verdict
            raise kind(message)

    async def _read(self, resp: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        """At most ``max_response_bytes`` of the body; True when there was more."""
        length = resp.content_length
        if length is not None and length <= self._max_response_bytes:
            return await resp.read(), False  # announced and small enough: read it in one go
        buf = bytearray()
        while len(buf) < self._max_response_bytes:
            chunk = await resp.content.read(self._max_response_bytes - len(buf))
            if not chunk:
                return bytes(buf), False
            buf += chunk
        return bytes(buf), not resp.content.at_eof()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssrf.ForbiddenAddress):
        return str(cause)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


__all__ = ["CheckedResolver", "Outcome", "WebhookClient"]
