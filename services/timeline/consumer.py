"""The timeline consumer: ``tracking.events.v1`` → stored events and derived shipment status."""

from __future__ import annotations

import gc
import logging

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.timeline.handlers import record_events
from shared.bus import Bus
from shared.bus.runner import ConsumerLoop, Decoded, Outbox, is_transient
from shared.bus.sql import SqlBus
from shared.db import transaction
from shared.errors import InvalidInput, RetryableError
from shared.outbox import OutboxRelay
from shared.schema import TOPIC_EVENTS, TOPIC_SHIPMENT_UPDATES, TrackingEvent
from shared.settings import Settings

log = logging.getLogger("throughline.timeline")
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock detected
GROUP = "timeline"


class TimelineHandler:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], relay: OutboxRelay
    ):
        self._sessions = sessions
        self._relay = relay
        self._updates_topic = settings.topic(TOPIC_SHIPMENT_UPDATES)

    async def __call__(self, batch: list[Decoded]) -> Outbox:
        events = []
        for record, message in batch:
            if not isinstance(message, TrackingEvent):
                raise InvalidInput(f"{record.topic} carries tracking events, got {message.kind}")
            events.append(message)
        try:
            async with transaction(self._sessions) as session:
                await record_events(
                    session, events, topic=self._updates_topic, stage=self._relay.stage
                )
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) not in _RETRY_SQLSTATES:
                raise
            # Two consumers met on the same shipments: the batch is rolled back; do it again.
            raise RetryableError(f"timeline batch rolled back: {exc.orig!r}") from exc
        try:
            await self._relay.after_commit()
        except Exception as exc:  # noqa: BLE001 - the rows stay in the outbox for the sweeper
            if not is_transient(exc):
                raise
            log.warning("publishing shipment updates deferred", extra={"error": repr(exc)})
        return []


_GC_GEN0 = 20_000  # allocations between young collections (CPython's default: 700)
_heap_settled = False


def settle_heap() -> None:
    """Once per process, when a consumer starts: what is alive by now (modules, schemas,
    mappers, settings) lives as long as the process, so the cyclic collector stops walking it
    (``gc.freeze``), and young collections run less often. A batch of 2,000 events allocates
    hundreds of thousands of objects, nearly all freed by reference counting; with the defaults
    the collector took about a fifth of the consumer's CPU, mostly full collections walking the
    whole heap (bench/ingest_kafka.py, "python: cyclic GC")."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(_GC_GEN0, gc.get_threshold()[0]), gen1, gen2)


def timeline_consumer(
    settings: Settings, bus: Bus, sessions: async_sessionmaker[AsyncSession], relay: OutboxRelay
) -> ConsumerLoop:
    settle_heap()
    return ConsumerLoop(
        bus=bus,
        group=GROUP,
        topics=[settings.topic(TOPIC_EVENTS)],
        handle=TimelineHandler(settings, sessions, relay),
        batch_size=settings.timeline_batch,
        wait_ms=settings.consumer_wait_ms,
        # On the SQL log every read takes SQLite's one write lock (BEGIN IMMEDIATE): a poll
        # ahead would only queue behind the batch's transaction and delay the next one.
        prefetch=not isinstance(bus, SqlBus),
    )
