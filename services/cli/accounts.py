"""Tenant and key commands of the CLI."""

from __future__ import annotations

import uuid

from shared.auth import Tenant, create_api_key, create_tenant
from shared.db import create_engine, session_factory, transaction
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
