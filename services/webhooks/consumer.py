"""The webhooks consumer: ``shipment.updates.v1`` and ``alerts.v1`` → events and delivery rows, one
transaction a batch. An opened shipment alert becomes ``shipment.stale``: the alerts service is the
one judge of staleness.

It only writes rows; sending is the sender's job. So a slow or dead merchant can never hold up a
partition: the consumer's pace depends on the database alone.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.webhooks.handlers import schedule_stale, schedule_updates
from shared.bus import Bus
from shared.bus.runner import ConsumerLoop, Decoded, Outbox
from shared.db import transaction, utcnow
from shared.errors import InvalidInput
from shared.schema import TOPIC_ALERTS, TOPIC_SHIPMENT_UPDATES, AlertChange, ShipmentUpdate
from shared.settings import Settings

GROUP = "webhooks"


class ScheduleDeliveries:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self._sessions = sessions
        self.deliveries = 0

    async def __call__(self, batch: list[Decoded]) -> Outbox:
        updates, alerts = [], []
        for record, message in batch:
            if isinstance(message, ShipmentUpdate):
                updates.append(message)
            elif isinstance(message, AlertChange):
                alerts.append(message)
            else:
                raise InvalidInput(f"{record.topic}: no webhook comes of a {message.kind}")
        async with transaction(self._sessions) as session:
            now = utcnow()
            made = await schedule_updates(session, updates, now)
            made += await schedule_stale(session, alerts, now)
        self.deliveries += made
        return []


def webhooks_consumer(
    settings: Settings, bus: Bus, sessions: async_sessionmaker[AsyncSession]
) -> ConsumerLoop:
    return ConsumerLoop(
        bus=bus,
        group=GROUP,
        topics=[settings.topic(TOPIC_SHIPMENT_UPDATES), settings.topic(TOPIC_ALERTS)],
        handle=ScheduleDeliveries(sessions),
        batch_size=settings.consumer_batch,
        wait_ms=settings.consumer_wait_ms,
    )
