"""The local PostgreSQL and Kafka as the benchmarks use them: fresh databases and topics, the load
generator, and the raw baselines (aiokafka consume that decodes nothing, asyncpg COPY)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy.engine import make_url

from bench.machine import ROOT
from services.timeline.repository import event_row
from shared.bus import OutRecord
from shared.schema import TrackingEvent

EVENT_COLUMNS = (
    "event_id", "carrier", "tracking_number", "occurred_at", "occurred_at_local", "utc_offset",
    "time_basis", "status", "substatus", "module", "carrier_code", "description", "location",
    "handoff", "source", "raw_ref", "sequence", "ingested_at",
)  # fmt: skip


def pg_admin_url() -> str:
    return os.environ.get("THROUGHLINE_TEST_PG_URL") or _script("postgres.sh", "url")


def kafka_bootstrap() -> str:
    return os.environ.get("THROUGHLINE_TEST_KAFKA") or _script("kafka.sh", "bootstrap")


def _script(name: str, arg: str) -> str:
    out = subprocess.run(
        [str(ROOT / "deploy/local" / name), arg], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(False)


async def create_database(admin_url: str) -> str:
    name = f"tl_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def count_events(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM tracking_event"))


async def checkpoint(url: str) -> None:
    """Start each timed phase with no dirty buffers left over from the previous one."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


def copy_rows(events: Sequence[TrackingEvent]) -> list[tuple[object, ...]]:
    now = datetime.now(UTC)
    rows = []
    for e in events:
        row = event_row(e)
        row["ingested_at"] = now
        for column in ("location", "handoff"):
            if row[column] is not None:
                row[column] = orjson.dumps(row[column]).decode()
        rows.append(tuple(row[c] for c in EVENT_COLUMNS))
    return rows


async def copy_baseline(url: str, rows: list[tuple[object, ...]], batch: int) -> float:
    """Seconds to COPY ``rows`` into a table indexed like ``tracking_event``, ``batch`` per
    transaction (each commit durable, as the consumer's)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_copy")
        await conn.execute("CREATE TABLE bench_copy (LIKE tracking_event INCLUDING ALL)")
        await conn.execute("CHECKPOINT")
        started = time.perf_counter()
        for i in range(0, len(rows), batch):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_copy", records=rows[i : i + batch], columns=EVENT_COLUMNS
                )
        elapsed = time.perf_counter() - started
        stored = await conn.fetchval("SELECT count(*) FROM bench_copy")
        assert stored == len(rows), f"COPY stored {stored} of {len(rows)}"
        await conn.execute("DROP TABLE bench_copy")
        return elapsed
    finally:
        await conn.close()


async def produce(bootstrap: str, topic: str, records: Sequence[OutRecord]) -> float:
    """Seconds to publish ``records`` (acks=all, idempotent), in chunks of pending sends."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(records), 5000):
            pending = [
                await producer.send(topic, r.value, key=r.key.encode())
                for r in records[i : i + 5000]
            ]
            await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, expect: int, batch: int) -> float:
    """Seconds for a plain aiokafka consumer group to fetch ``expect`` records, decoding nothing."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    started = time.perf_counter()
    await consumer.start()
    try:
        seen = 0
        while seen < expect:
            batches = await consumer.getmany(timeout_ms=200, max_records=batch)
            seen += sum(len(messages) for messages in batches.values())
            if time.perf_counter() - started > 600:
                raise TimeoutError(f"raw consume saw {seen}/{expect} records in 600 s")
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def topic_size(bootstrap: str, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in (consumer.partitions_for_topic(topic) or ())]
        if not parts:
            await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(parts)
        starts = await consumer.beginning_offsets(parts)
        return sum(ends[tp] - starts[tp] for tp in parts)
    finally:
        await consumer.stop()


async def delete_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
