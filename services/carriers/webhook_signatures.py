"""Carrier webhook signatures, each scheme exactly as the carrier states it (carrier-contracts §7, §9).

- 17TRACK: header ``sign`` = lowercase hex(SHA-256(raw body + "/" + API key)). A plain hash with
  the key appended, not an HMAC: that is the carrier's scheme.
- AfterShip: header ``aftership-hmac-sha256`` (some integrations read ``x-aftership-hmac-sha256``,
  so both are accepted) = base64(HMAC-SHA256(webhook secret, raw body)).
- EasyPost: header ``X-Hmac-Signature`` = ``hmac-sha256-hex=`` + hex(HMAC-SHA256(secret, raw body)),
  the secret NFKD-normalised and UTF-8 encoded first, as EasyPost's own client libraries do.

Pure functions over the exact bytes received; comparisons are constant-time. None of the three
signs a delivery timestamp (AfterShip's ``ts`` and EasyPost's ``created_at`` are inside the signed
body, so they cannot be altered), and the carriers retry old deliveries for hours: there is no
freshness window, and a replayed delivery is harmless because event ids are deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass

EASYPOST_PREFIX = "hmac-sha256-hex="


def track17_signature(body: bytes, api_key: str) -> str:
    return hashlib.sha256(body + b"/" + api_key.encode("utf-8")).hexdigest()


def aftership_signature(body: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def easypost_signature(body: bytes, secret: str) -> str:
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    return EASYPOST_PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Scheme:
    """Where a carrier puts its signature and how it is computed."""

    headers: tuple[str, ...]  # lower-case names; any one that verifies is enough
    sign: Callable[[bytes, str], str]
    hex_digest: bool = False  # a bare hex digest: compared without regard to letter case

    def verify(self, body: bytes, secret: str | None, headers: Mapping[str, str]) -> bool:
        """True when a signature header matches ``body`` under ``secret``; never for no secret."""
        if not secret:
            return False
        received = {name.lower(): value for name, value in headers.items()}
        expected = self.sign(body, secret)
        return any(
            _same(self._canonical(received[name]), expected)
            for name in self.headers
            if name in received
        )

    def signed_headers(self, body: bytes, secret: str) -> dict[str, str]:
        """The headers the carrier would send with ``body`` (simulators, demos and tests)."""
        return {self.headers[0]: self.sign(body, secret)}

    def _canonical(self, value: str) -> str:
        value = value.strip()
        return value.lower() if self.hex_digest else value


def _same(received: str, expected: str) -> bool:
    return hmac.compare_digest(
        received.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


SCHEMES: dict[str, Scheme] = {
    "17track": Scheme(("sign",), track17_signature, hex_digest=True),
    "aftership": Scheme(("aftership-hmac-sha256", "x-aftership-hmac-sha256"), aftership_signature),
    "easypost": Scheme(("x-hmac-signature",), easypost_signature),
}

__all__ = [
    "SCHEMES",
    "Scheme",
    "aftership_signature",
    "easypost_signature",
    "track17_signature",
]
