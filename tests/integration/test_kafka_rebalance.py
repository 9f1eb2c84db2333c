"""A second consumer joins mid-batch: the first one's offset commit must not wedge the loop.

Partitions revoked while a batch was handled cannot be committed by the old owner; the commit
keeps the offsets of the partitions still owned and leaves the rest to the new owner, which replays
them from the last committed offset (a replay is a no-op for an idempotent handler).

The group may rebalance more than once while the second member joins, so the test waits until the
two members own disjoint halves before it commits, and runs again with a fresh group if the
assignment moved during the commit itself.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared.bus import InRecord, OutRecord
from shared.bus.kafka import KafkaBus

pytestmark = [pytest.mark.kafka]

ALL = {0, 1, 2, 3}


async def _poll_until(consumer: object, want: int, timeout: float = 30.0) -> list[InRecord]:
    got: list[InRecord] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < want:
        assert asyncio.get_running_loop().time() < deadline, f"polled {len(got)}/{want} records"
        got.extend(await consumer.poll(1000, 200))  # type: ignore[attr-defined]
    return got


def _parts(consumer: object, topic: str) -> set[int]:
    return {p for t, p in consumer.assigned() if t == topic}  # type: ignore[attr-defined]


async def _settled(first: object, second: object, topic: str, timeout: float = 30.0) -> set[int]:
    """Wait until the two members own disjoint, non-empty halves; return the first one's."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await second.poll(1000, 100)  # type: ignore[attr-defined]  # keeps the member in its group
        a, b = _parts(first, topic), _parts(second, topic)
        if a and b and not a & b and a | b == ALL:
            return a
        assert asyncio.get_running_loop().time() < deadline, f"assignment never settled: {a} {b}"
        await asyncio.sleep(0.1)


async def test_commit_after_partitions_were_revoked_keeps_owned_offsets_only(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    bus = KafkaBus(kafka_bootstrap, partitions=4, group_prefix=topic_prefix)
    topic = f"{topic_prefix}rebalance.v1"
    await bus.create_topics([topic])
    await bus.publish(topic, [OutRecord(f"key-{i}", f"v{i}".encode()) for i in range(40)])
    try:
        for attempt in range(3):
            group = f"g{attempt}"
            async with bus.consumer(group, [topic]) as first:
                batch = await _poll_until(first, 40)
                assert {r.partition for r in batch} == ALL
                async with bus.consumer(group, [topic]) as second:
                    # The newcomer gets half the partitions and, with nothing committed, reads
                    # them from the start: the replay of the first consumer's uncommitted batch.
                    replayed = await _poll_until(second, 1)
                    kept = await _settled(first, second, topic)
                    assert {r.partition for r in replayed} <= ALL
                    await asyncio.wait_for(first.commit(batch), 30)
                    stable = _parts(first, topic) == kept
                    committed = await _committed(kafka_bootstrap, f"{topic_prefix}{group}", topic)
            if stable:
                break
        else:
            pytest.fail("the group rebalanced during every commit")
        moved = ALL - kept
        ends = {p: max(r.offset for r in batch if r.partition == p) + 1 for p in ALL}
        assert moved and kept
        assert {p: committed.get(p) for p in kept} == {p: ends[p] for p in kept}
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
