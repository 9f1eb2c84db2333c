"""Merchant account use cases: API keys and bulk registration. Session first; only flushes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.merchants import repository
from services.merchants.schemas import BulkRow, RowResult
from shared.auth import ApiKey, Principal, create_api_key
from shared.errors import Conflict, Forbidden, InvalidInput, NotFound


@dataclass(frozen=True)
class Registered:
    shipment_id: uuid.UUID
    carrier: str
    tracking_number: str
    created: bool


# Registers one row for a tenant, idempotently. The composition root passes the timeline's
# registration, so this service never imports another.
RegisterRow = Callable[[AsyncSession, uuid.UUID, BulkRow], Awaitable[Registered]]


def _within_own_scopes(principal: Principal, scopes: Sequence[str]) -> None:
    extra = sorted(set(scopes) - principal.scopes)
    if extra:
        raise Forbidden(f"a key cannot grant scopes it does not have: {extra}")


async def create_key(
    session: AsyncSession, principal: Principal, scopes: Sequence[str]
) -> tuple[ApiKey, str]:
    _within_own_scopes(principal, scopes)
    return await create_api_key(session, principal.tenant_id, tuple(sorted(set(scopes))))


async def get_key(session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    key = await repository.get_key(session, tenant_id, key_id)
    if key is None:
        raise NotFound(f"no API key {key_id}")
    return key


async def revoke_key(
    session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID, now: datetime
) -> None:
    """Revoke at once; refuses to revoke the tenant's last working key (it would lock them out)."""
    key = await get_key(session, tenant_id, key_id)
    if key.revoked_at is not None and key.revoked_at <= now:
        return
    if await repository.count_active(session, tenant_id, now) <= 1:
        raise Conflict("this is the tenant's last active key: create (or rotate to) another first")
    key.revoked_at = now
    await session.flush()


async def rotate_key(
    session: AsyncSession, principal: Principal, key_id: uuid.UUID, grace_s: int, now: datetime
) -> tuple[ApiKey, str]:
    """A new key with the same scopes; the old one stops working after ``grace_s``."""
    old = await get_key(session, principal.tenant_id, key_id)
    if old.revoked_at is not None and old.revoked_at <= now:
        raise Conflict("this key is revoked; create a new one instead")
    _within_own_scopes(principal, old.scopes)
    new, secret = await create_api_key(session, principal.tenant_id, tuple(old.scopes))
    expires = now + timedelta(seconds=grace_s)
    old.revoked_at = min(old.revoked_at, expires) if old.revoked_at else expires
    await session.flush()
    return new, secret


async def register_rows(
    session: AsyncSession, tenant_id: uuid.UUID, rows: Sequence[Any], register: RegisterRow
) -> list[RowResult]:
    """Each row on its own savepoint: a bad row is an error result, never a failed request."""
    return [await _register_one(session, tenant_id, i, raw, register) for i, raw in enumerate(rows)]


async def _register_one(
    session: AsyncSession, tenant_id: uuid.UUID, index: int, raw: Any, register: RegisterRow
) -> RowResult:
    number = raw.get("tracking_number") if isinstance(raw, dict) else None
    echo = number if isinstance(number, str) else None
    try:
        row = BulkRow.model_validate(raw)
    except ValidationError as exc:
        return RowResult(index=index, status="error", tracking_number=echo, error=_summary(exc))
    for attempt in range(2):
        try:
            async with session.begin_nested():
                done = await register(session, tenant_id, row)
        except InvalidInput as exc:
            return RowResult(index=index, status="error", tracking_number=echo, error=str(exc))
        except IntegrityError:
            if attempt:  # registered by a concurrent request twice over: give up on the row
                raise
            continue  # registered by a concurrent request: the second look finds it
        return RowResult(
            index=index,
            status="created" if done.created else "existing",
            shipment_id=done.shipment_id,
            carrier=done.carrier,
            tracking_number=done.tracking_number,
        )
    raise AssertionError("unreachable")


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "row"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
