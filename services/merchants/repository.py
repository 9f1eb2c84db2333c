"""All SQL of the merchant account service (API keys live in ``shared.auth``). Only flushes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import ApiKey


async def list_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
    return list(await session.scalars(stmt))


async def get_key(session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id)
    return (await session.scalars(stmt)).first()


async def count_active(session: AsyncSession, tenant_id: uuid.UUID, now: datetime) -> int:
    stmt = select(func.count()).where(
        ApiKey.tenant_id == tenant_id, or_(ApiKey.revoked_at.is_(None), ApiKey.revoked_at > now)
    )
    return int(await session.scalar(stmt) or 0)
