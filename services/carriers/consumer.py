"""The carriers service's consumer: shipment updates → the numbers the poller looks after."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.carriers import repository
from services.carriers.repository import TargetState
from shared.bus import Bus
from shared.bus.runner import ConsumerLoop, Decoded, Outbox
from shared.db import transaction, utcnow
from shared.errors import InvalidInput
from shared.schema import TOPIC_SHIPMENT_UPDATES, LegRef, ShipmentUpdate
from shared.settings import Settings
from shared.taxonomy import TERMINAL_STATUSES

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
                            session,
                            leg.carrier,
                            leg.tracking_number,
                            target_state(message, leg),
                            now,
                        )
        return []


def target_state(update: ShipmentUpdate, leg: LegRef) -> TargetState:
    """A leg is polled by its own state; before its first event, by the shipment's (a leg opened
    at a hand-off is due soon). Once the shipment is delivered or returned every leg stops."""
    if update.status in TERMINAL_STATUSES or leg.status is None:
        status, substatus = update.status, update.substatus
    else:
        status, substatus = leg.status, leg.substatus
    return TargetState(
        status=status.value,
        substatus=substatus.value if substatus else None,
        module=leg.module.value if leg.module else None,
        detected=leg.detected,
    )


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
