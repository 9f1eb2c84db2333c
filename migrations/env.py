"""Alembic environment: one history for every service, run on an async engine.

The URL comes from the ``sqlalchemy.url`` option the CLI sets (``throughline migrate``), falling back
to the settings' ``database_url``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import services.alerts.models  # noqa: F401 - registers tables
import services.carriers.models  # noqa: F401
import services.timeline.models  # noqa: F401
import services.webhooks.models  # noqa: F401
import shared.auth  # noqa: F401
import shared.bus.sql  # noqa: F401
import shared.outbox  # noqa: F401
from shared.db import Base, create_engine
from shared.settings import Settings

target_metadata = Base.metadata


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    return url or Settings().database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
