"""A second consumer joins mid-batch: the first one's offset commit must not wedge the loop.

Partitions revoked while a batch was handled cannot be committed by the old owner; the commit
keeps the offsets of the partitions still owned and leaves the rest to the new owner, which replays
them from the last committed offset (a replay is a no-op for an idempotent handler).
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.bus import InRecord, OutRecord
from shared.bus.kafka import KafkaBus

pytestmark = [pytest.mark.kafka]


async def _poll_until(consumer: object, want: int, timeout: float = 30.0) -> list[InRecord]:
    got: list[InRecord] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < want:
        assert asyncio.get_running_loop().time() < deadline, f"polled {len(got)}/{want} records"
        got.extend(await consumer.poll(1000, 200))  # type: ignore[attr-defined]
    return got


async def test_commit_after_partitions_were_revoked_keeps_owned_offsets_only(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = KafkaBus(kafka_bootstrap, partitions=4, group_prefix=topic_prefix)
    topic = f"{topic_prefix}rebalance.v1"
    await bus.create_topics([topic])
    await bus.publish(topic, [OutRecord(f"key-{i}", f"v{i}".encode()) for i in range(40)])
    try:
        async with bus.consumer("g", [topic]) as first:
            batch = await _poll_until(first, 40)
            assert {r.partition for r in batch} == {0, 1, 2, 3}
            async with bus.consumer("g", [topic]) as second:
                # The newcomer gets half the partitions and, with nothing committed, reads them
                # from the start: the replay of the first consumer's uncommitted batch.
                replayed = await _poll_until(second, 1)
                moved = {r.partition for r in replayed}
                await asyncio.wait_for(first.commit(batch), 30)
                committed = await _committed(kafka_bootstrap, f"{topic_prefix}g", topic)
        kept = {0, 1, 2, 3} - moved
        ends = {p: max(r.offset for r in batch if r.partition == p) + 1 for p in range(4)}
        assert moved and kept
        assert {p: committed[p] for p in kept} == {p: ends[p] for p in kept}
        assert all(committed.get(p, -1) <= 0 for p in moved), committed
    finally:
        await bus.close()


async def _committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}
    finally:
        await admin.close()
