"""Delivery semantics of the timeline consumer on both buses: idempotency, crash-replay, DLQ."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from services.cli.runtime import Runtime
from services.timeline.consumer import timeline_consumer
from services.timeline.models import Shipment, TrackingEventRow
from shared.bus import Consumer, InRecord, OutRecord
from shared.bus.runner import ConsumerLoop
from shared.schema import (
    TOPIC_EVENTS,
    TOPIC_SHIPMENT_UPDATES,
    ShipmentUpdate,
    TrackingEvent,
    decode,
    dlq_topic,
    encode,
    make_event_id,
)
from shared.taxonomy import Status, TimeBasis

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


def event(number: str, i: int, status: Status = Status.IN_TRANSIT) -> TrackingEvent:
    local = (T0 + timedelta(hours=i)).replace(tzinfo=None).isoformat()
    return TrackingEvent(
        event_id=make_event_id("dhl", number, f"C{i}", local, "Leipzig"),
        carrier="dhl",
        tracking_number=number,
        occurred_at_local=local,
        occurred_at=T0 + timedelta(hours=i),
        time_basis=TimeBasis.CARRIER_UTC,
        status=status,
        description=f"scan {i}",
        sequence=i,
    )


def records(events: Sequence[TrackingEvent]) -> list[OutRecord]:
    return [OutRecord(f"{e.carrier}:{e.tracking_number}", encode(e)) for e in events]


async def count_events(rt: Runtime, number: str | None = None) -> int:
    async with rt.sessions() as s:
        stmt = select(func.count()).select_from(TrackingEventRow)
        if number:
            stmt = stmt.where(TrackingEventRow.tracking_number == number)
        return int(await s.scalar(stmt) or 0)


async def drain(rt: Runtime, loop: ConsumerLoop, until: int, timeout: float = 30.0) -> None:
    """Run the consumer until ``until`` records were processed."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    while loop.stats.records < until:
        if task.done():
            task.result()
        assert asyncio.get_running_loop().time() < deadline, (
            f"processed {loop.stats.records}/{until}"
        )
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 30)


async def read_topic(rt: Runtime, topic: str, expect: int, timeout: float = 30.0) -> list[InRecord]:
    got: list[InRecord] = []
    async with rt.bus.consumer(f"reader-{topic}", [topic]) as consumer:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(got) < expect and asyncio.get_running_loop().time() < deadline:
            got.extend(await consumer.poll(100, 200))
    return got


async def test_event_published_twice_is_stored_once(stack: Runtime) -> None:
    topic = stack.settings.topic(TOPIC_EVENTS)
    batch = [event("1000000001", i) for i in range(5)]
    await stack.bus.publish(topic, records(batch))
    await stack.bus.publish(topic, records(batch))
    loop = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)
    await drain(stack, loop, until=10)
    assert await count_events(stack, "1000000001") == 5
    async with stack.sessions() as s:
        shipments = (await s.scalars(select(Shipment))).all()
    assert [(sh.tracking_number, sh.status) for sh in shipments] == [("1000000001", "in_transit")]


class Crash(BaseException):
    """Stands for the process dying: nothing after it runs."""


class CrashBeforeOffsetCommit:
    def __init__(self, inner: Consumer):
        self.inner = inner

    async def poll(self, max_records: int, timeout_ms: int) -> list[InRecord]:
        return await self.inner.poll(max_records, timeout_ms)

    async def commit(self, records: Sequence[InRecord]) -> None:
        raise Crash

    async def dead_letter(self, record: InRecord, reason: str, error: str) -> None:
        await self.inner.dead_letter(record, reason, error)


async def test_crash_between_db_commit_and_offset_commit_replays_without_duplicates(
    stack: Runtime,
) -> None:
    topic = stack.settings.topic(TOPIC_EVENTS)
    await stack.bus.publish(topic, records([event("1000000002", i) for i in range(4)]))
    await stack.bus.publish(topic, records([event("1000000002", 9, Status.DELIVERED)]))
    loop = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)

    async with stack.bus.consumer(loop.group, loop.topics) as consumer:
        batch: list[InRecord] = []
        while len(batch) < 5:
            batch.extend(await consumer.poll(100, 500))
        with pytest.raises(Crash):
            await loop.process(CrashBeforeOffsetCommit(consumer), batch)
    assert await count_events(stack, "1000000002") == 5  # the database commit happened

    replay = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)
    await drain(stack, replay, until=5)  # the same five records come again
    assert await count_events(stack, "1000000002") == 5
    async with stack.sessions() as s:
        status = await s.scalar(
            select(Shipment.status).where(Shipment.tracking_number == "1000000002")
        )
    assert status == "delivered"


async def test_malformed_record_goes_to_dlq_with_reason_and_consumer_carries_on(
    stack: Runtime,
) -> None:
    topic = stack.settings.topic(TOPIC_EVENTS)
    good_before, good_after = event("1000000003", 1), event("1000000003", 2)
    await stack.bus.publish(topic, records([good_before]))
    await stack.bus.publish(
        topic, [OutRecord("dhl:1000000003", b'{"kind":"tracking_event","oops":1}')]
    )
    await stack.bus.publish(topic, [OutRecord("dhl:x", b"\xff not json")])
    await stack.bus.publish(topic, records([good_after]))
    loop = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)
    await drain(stack, loop, until=4)

    assert await count_events(stack, "1000000003") == 2
    dead = await read_topic(stack, dlq_topic(topic), expect=2)
    assert len(dead) == 2
    for record in dead:
        headers = dict(record.headers)
        assert headers["dlq-reason"] == b"invalid_record"
        assert headers["dlq-error"]
        assert headers["dlq-source-topic"] == topic.encode()
    assert {r.value for r in dead} == {b'{"kind":"tracking_event","oops":1}', b"\xff not json"}
    assert loop.stats.dead_lettered == 2


async def test_status_change_is_published_after_commit(stack: Runtime) -> None:
    topic = stack.settings.topic(TOPIC_EVENTS)
    await stack.bus.publish(
        topic, records([event("1000000004", 1), event("1000000004", 2, Status.DELIVERED)])
    )
    loop = timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay)
    await drain(stack, loop, until=2)
    updates = await read_topic(stack, stack.settings.topic(TOPIC_SHIPMENT_UPDATES), expect=1)
    decoded = [decode(r.value) for r in updates]
    assert decoded and all(isinstance(u, ShipmentUpdate) for u in decoded)
    last = decoded[-1]
    assert isinstance(last, ShipmentUpdate) and last.status is Status.DELIVERED
    assert updates[-1].key == str(last.shipment_id)
