"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256 with the endpoint's
secret; the ``webhook-signature`` header lists ``v1,<base64>`` entries separated by spaces, one per
secret that is valid right now (two during a rotation's overlap window).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

from shared.errors import InvalidInput

PREFIX = "whsec_"
TOLERANCE_S = 300


def generate_secret(n_bytes: int = 32) -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(n_bytes)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key behind ``whsec_<base64>``; 24 to 64 bytes."""
    if not secret.startswith(PREFIX):
        raise InvalidInput("a webhook secret looks like whsec_<base64 of 24 to 64 random bytes>")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the webhook secret after 'whsec_' is not valid base64") from None
    if not 24 <= len(key) <= 64:
        raise InvalidInput(f"a webhook secret must hold 24 to 64 bytes, this one holds {len(key)}")
    return key


@functools.lru_cache(maxsize=4096)
def _key(secret: str) -> bytes:
    """``secret_bytes``, decoded once per secret (the sender signs every request)."""
    return secret_bytes(secret)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.digest(_key(secret), content, hashlib.sha256)
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def headers(
    secrets_: Iterable[str], msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets_, msg_id, ts, body),
    }


def verify(
    secret: str,
    headers_: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """What a receiver does: a fresh timestamp and one matching signature, compared in constant time."""
    lowered = {k.lower(): v for k, v in headers_.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        offered = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, msg_id, timestamp, body).encode()
    return any(hmac.compare_digest(expected, sig.encode()) for sig in offered)
