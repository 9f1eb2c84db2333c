"""A real stack per test: (Kafka + PostgreSQL) or (SQL-log bus + SQLite), migrated from scratch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.cli.runtime import Runtime, runtime
from shared.migrate import upgrade_async
from shared.settings import Settings
from tests.conftest import create_database, drop_database


@pytest.fixture(params=["kafka-postgres", "sql-sqlite"])
async def stack(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    topic_prefix: str,
) -> AsyncIterator[Runtime]:
    pg_admin = None
    if request.param == "kafka-postgres":
        bootstrap: str = request.getfixturevalue("kafka_bootstrap")
        pg_admin = request.getfixturevalue("pg_admin_url")
        settings = Settings(
            database_url=await create_database(pg_admin),
            bus="kafka",
            kafka_bootstrap=bootstrap,
            topic_prefix=topic_prefix,
            consumer_wait_ms=100,
        )
    else:
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'throughline.db'}",
            bus="sql",
            topic_prefix=topic_prefix,
            consumer_wait_ms=100,
        )
    await upgrade_async(settings.database_url)
    try:
        async with runtime(settings) as rt:
            yield rt
    finally:
        if pg_admin is not None:
            await drop_database(pg_admin, settings.database_url)
