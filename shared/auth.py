"""Tenants and API keys, shared by every service's HTTP API.

A key is shown once (``tl_<prefix>_<secret>``) and stored as a SHA-256 digest: keys carry 192 bits of
randomness, so a fast hash is enough and lookups stay cheap. Lookup is by the public prefix, then a
constant-time comparison of digests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, JsonType, utcnow
from shared.errors import Forbidden, Unauthorized

SCOPES = ("merchant", "operator")


class Tenant(Base):
    __tablename__ = "tenant"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # In the future for a rotated key still in its grace period; the key works until then.
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(f"this API key lacks the '{scope}' scope")


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_tenant(session: AsyncSession, name: str) -> Tenant:
    tenant = Tenant(name=name)
    session.add(tenant)
    await session.flush()
    return tenant


async def create_api_key(
    session: AsyncSession, tenant_id: uuid.UUID, scopes: tuple[str, ...] = ("merchant",)
) -> tuple[ApiKey, str]:
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}; known: {list(SCOPES)}")
    prefix = secrets.token_hex(6)
    key = f"tl_{prefix}_{secrets.token_urlsafe(24)}"
    row = ApiKey(tenant_id=tenant_id, prefix=prefix, digest=_digest(key), scopes=list(scopes))
    session.add(row)
    await session.flush()
    return row, key


async def authenticate(session: AsyncSession, key: str | None) -> Principal:
    if not key:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != "tl":
        raise Unauthorized("malformed API key")
    row = await session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if (
        row is None
        or (row.revoked_at is not None and row.revoked_at <= utcnow())
        or not hmac.compare_digest(row.digest, _digest(key))
    ):
        raise Unauthorized("invalid or revoked API key")
    return Principal(row.tenant_id, row.id, frozenset(row.scopes))
