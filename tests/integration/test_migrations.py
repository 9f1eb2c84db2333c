"""The one Alembic history: up, down and up again on both databases, and in step with the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import services.alerts.models  # noqa: F401 - registers tables
import services.carriers.models  # noqa: F401
import services.timeline.models  # noqa: F401
import services.webhooks.models  # noqa: F401
import shared.auth  # noqa: F401
import shared.bus.sql  # noqa: F401
import shared.outbox  # noqa: F401
from shared.db import Base, create_engine
from shared.migrate import downgrade_async, upgrade_async
from tests.conftest import create_database, drop_database


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
    finally:
        await engine.dispose()


async def _round_trip(url: str) -> None:
    await upgrade_async(url)
    assert {"shipment", "leg", "tracking_event", "bus_record", "outbox_record"} <= await _tables(
        url
    )
    assert await _diff(url) == []  # models and migrations agree
    await downgrade_async(url, "base")
    assert await _tables(url) <= {"alembic_version"}
    await upgrade_async(url)
    assert "tracking_event" in await _tables(url)


async def test_round_trip_on_sqlite(tmp_path: Path) -> None:
    await _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
async def test_round_trip_on_postgres(pg_admin_url: str) -> None:
    url = await create_database(pg_admin_url)
    try:
        await _round_trip(url)
    finally:
        await drop_database(pg_admin_url, url)
