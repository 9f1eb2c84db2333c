"""Tenant and key commands of the CLI."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from shared.auth import ApiKey, Tenant, create_api_key, create_tenant
from shared.db import create_engine, session_factory, transaction, utcnow
from shared.settings import Settings


async def new_tenant(
    settings: Settings, name: str, scopes: tuple[str, ...]
) -> tuple[uuid.UUID, str]:
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            tenant = await create_tenant(session, name)
            _, key = await create_api_key(session, tenant.id, scopes)
            return tenant.id, key
    finally:
        await engine.dispose()


async def new_key(settings: Settings, tenant_id: uuid.UUID, scopes: tuple[str, ...]) -> str:
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            if await session.get(Tenant, tenant_id) is None:
                raise SystemExit(f"no tenant {tenant_id}")
            _, key = await create_api_key(session, tenant_id, scopes)
            return key
    finally:
        await engine.dispose()


async def revoke_key(settings: Settings, key_id: uuid.UUID) -> bool:
    """Revoke at once; False when there is no such key."""
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            key = await session.get(ApiKey, key_id)
            if key is None:
                return False
            now = utcnow()
            if key.revoked_at is None or key.revoked_at > now:
                key.revoked_at = now
            return True
    finally:
        await engine.dispose()


async def list_keys(settings: Settings, tenant_id: uuid.UUID) -> list[ApiKey]:
    engine = create_engine(settings.database_url)
    try:
        async with transaction(session_factory(engine)) as session:
            stmt = select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(ApiKey.created_at)
            return list(await session.scalars(stmt))
    finally:
        await engine.dispose()
