"""Short-lived stream tokens, so a browser's ``EventSource`` can open the alert stream.

``EventSource`` cannot send an ``Authorization`` header, and an API key must never travel in a URL
(URLs end up in proxy logs, browser history and ``Referer`` headers). So the page trades its key,
sent as a bearer header, for a token from ``POST /v1/alerts/stream-token`` and puts only that token
in the stream's URL. A token:

- names the API key it was issued to and expires after ``TOKEN_TTL_S``; a stream it opened ends
  then too, and the page asks for a new token and resumes from its last event id;
- is an HMAC keyed with that key's stored digest, so every API process can check it without a
  shared secret, and revoking the key invalidates its tokens at once;
- opens the alert stream and nothing else: it is not an API key (no ``tl_`` form) and
  ``authenticate`` refuses it everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import ApiKey, Principal
from shared.errors import Unauthorized

TOKEN_TTL_S = 300
_PURPOSE = b"throughline alerts stream v1|"


def _mac(digest: str, payload: str) -> str:
    mac = hmac.new(digest.encode(), _PURPOSE + payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def issue_token(key: ApiKey, now: datetime, ttl_s: int = TOKEN_TTL_S) -> tuple[str, int]:
    """A token for ``key`` and its expiry (Unix seconds)."""
    expires = int(now.timestamp()) + ttl_s
    payload = f"{key.id.hex}.{expires}"
    return f"{payload}.{_mac(key.digest, payload)}", expires


def _split(token: str) -> tuple[uuid.UUID, int, str]:
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise Unauthorized("malformed stream token: ask POST /v1/alerts/stream-token for one")
    try:
        key_id = uuid.UUID(hex=parts[0])
    except ValueError:
        raise Unauthorized(
            "malformed stream token: ask POST /v1/alerts/stream-token for one"
        ) from None
    return key_id, int(parts[1]), parts[2]


async def verify_token(
    session: AsyncSession, token: str, now: datetime
) -> tuple[Principal, datetime]:
    """The principal the token was issued to and when the token expires; ``Unauthorized`` when
    it is forged, expired or its key is revoked."""
    key_id, expires, mac = _split(token)
    key = await session.get(ApiKey, key_id)
    payload = f"{key_id.hex}.{expires}"
    if key is None or not hmac.compare_digest(mac, _mac(key.digest, payload)):
        raise Unauthorized("invalid stream token")
    if expires <= now.timestamp():
        raise Unauthorized("expired stream token: ask POST /v1/alerts/stream-token for a new one")
    if key.revoked_at is not None and key.revoked_at <= now:
        raise Unauthorized("the API key this stream token was issued to is revoked")
    principal = Principal(key.tenant_id, key.id, frozenset(key.scopes))
    return principal, datetime.fromtimestamp(expires, UTC)


async def still_valid(session: AsyncSession, principal: Principal, now: datetime) -> bool:
    """Whether the key behind an open stream still works (a revoked key's streams end)."""
    key = await session.get(ApiKey, principal.key_id, populate_existing=True)
    return key is not None and (key.revoked_at is None or key.revoked_at > now)
