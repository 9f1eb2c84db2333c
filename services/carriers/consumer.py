"""The carriers service's consumer: shipment updates → the numbers the poller looks after."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.carriers import repository
from shared.bus import Bus
from shared.bus.runner import ConsumerLoop, Decoded, Outbox
from shared.db import transaction, utcnow
from shared.errors import InvalidInput
from shared.schema import TOPIC_SHIPMENT_UPDATES, ShipmentUpdate
from shared.settings import Settings

GROUP = "carriers"


class TrackTargets:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], carriers: set[str]):
        self._sessions = sessions
        self._carriers = carriers

    async def __call__(self, batch: list[Decoded]) -> Outbox:
        now = utcnow()
        async with transaction(self._sessions) as session:
            for record, message in batch:
                if not isinstance(message, ShipmentUpdate):
                    raise InvalidInput(
                        f"{record.topic} carries shipment updates, got {message.kind}"
                    )
                for leg in message.legs:
                    if leg.carrier in self._carriers:
                        await repository.upsert_target(
                            session, leg.carrier, leg.tracking_number, message.status.value, now
                        )
        return []


def carriers_consumer(
    settings: Settings, bus: Bus, sessions: async_sessionmaker[AsyncSession], carriers: set[str]
) -> ConsumerLoop:
    return ConsumerLoop(
        bus=bus,
        group=GROUP,
        topics=[settings.topic(TOPIC_SHIPMENT_UPDATES)],
        handle=TrackTargets(sessions, carriers),
        batch_size=settings.consumer_batch,
        wait_ms=settings.consumer_wait_ms,
    )
