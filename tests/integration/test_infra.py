"""The real servers answer: PostgreSQL and Kafka as started by deploy/local/up.sh."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.engine import make_url


@pytest.mark.postgres
async def test_postgres_answers_version(
    fresh_pg_database: Callable[[], Awaitable[str]],
) -> None:
    url = make_url(await fresh_pg_database()).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        version = await conn.fetchval("select version()")
        database = await conn.fetchval("select current_database()")
    finally:
        await conn.close()

    assert isinstance(version, str) and version.startswith("PostgreSQL"), version
    assert database == url.database


@pytest.mark.kafka
async def test_kafka_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}infra.check.v1"
    sent = [f"record-{i}".encode() for i in range(3)]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        new_topic = NewTopic(topic, num_partitions=1, replication_factor=1)
        response = await admin.create_topics([new_topic])
        assert [(name, code) for name, code, *_ in response.topic_errors] == [(topic, 0)]
        try:
            await _produce(kafka_bootstrap, topic, sent)
            received = await _consume(kafka_bootstrap, topic, len(sent))
        finally:
            await admin.delete_topics([topic])
    finally:
        await admin.close()

    assert received == sent


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"infra-check-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < count:
                batches = await consumer.getmany(timeout_ms=1000)
                received += [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()
    return received
