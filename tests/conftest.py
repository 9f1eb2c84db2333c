"""Fixtures for the real infrastructure: PostgreSQL and Kafka on 127.0.0.1.

deploy/local/test.sh starts both servers and exports THROUGHLINE_TEST_PG_URL and
THROUGHLINE_TEST_KAFKA. Without them the tests that need a server are skipped, except under
CI=true, where they fail: CI must never pass by skipping the real-infrastructure tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy.engine import make_url


def _require_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    reason = f"{name} is not set; run the tests with deploy/local/test.sh"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: real-infrastructure tests may not skip)", pytrace=False)
    pytest.skip(reason)


def _asyncpg_dsn(sqlalchemy_url: str) -> str:
    """postgresql+asyncpg://... (SQLAlchemy) -> postgresql://... (asyncpg)."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """SQLAlchemy URL of the admin database; its role may create and drop databases."""
    return _require_env("THROUGHLINE_TEST_PG_URL")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """host:port of the local Kafka broker."""
    return _require_env("THROUGHLINE_TEST_KAFKA")


async def create_database(pg_admin_url: str) -> str:
    """Create an empty, uniquely named database; returns its SQLAlchemy asyncpg URL."""
    name = f"tl_test_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(_asyncpg_dsn(pg_admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(pg_admin_url: str, url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_asyncpg_dsn(pg_admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def fresh_pg_database(pg_admin_url: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory: each call creates an empty, uniquely named database and returns its
    SQLAlchemy asyncpg URL. Every database it made is dropped (forcibly) after the test."""
    admin_dsn = _asyncpg_dsn(pg_admin_url)
    created: list[str] = []

    async def create() -> str:
        name = f"tl_test_{uuid.uuid4().hex[:16]}"
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield create

    if created:
        conn = await asyncpg.connect(admin_dsn)
        try:
            for name in created:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
async def topic_prefix() -> AsyncIterator[str]:
    """A per-test prefix such as 't3f9c0a1b2d.' so topics never collide between tests or runs.

    The topics a test made under its prefix are deleted afterwards, so a long run (or many runs
    against one broker) does not pile up thousands of partitions and run the broker out of files.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    bootstrap = os.environ.get("THROUGHLINE_TEST_KAFKA", "").strip()
    if bootstrap:
        await _delete_topics(bootstrap, prefix)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics, timeout_ms=10_000)
    except (KafkaError, OSError):
        pass  # hygiene only: a topic left behind is harmless for correctness
    finally:
        await admin.close()


# Schema fixtures go here: run the real Alembic migrations once per session into a
# fresh_pg_database-style database, and hand each test a session that is rolled back.
