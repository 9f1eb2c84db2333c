"""Timeline use cases. Each takes the session first and only flushes; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline import repository
from services.timeline.models import Leg, Shipment
from services.timeline.status import derive
from shared.bus import OutRecord
from shared.db import utcnow
from shared.errors import InvalidInput
from shared.numbers import CARRIER_IDS, detect, normalise
from shared.outbox import add_to_outbox
from shared.schema import TOPIC_SHIPMENT_UPDATES, LegRef, ShipmentUpdate, TrackingEvent, encode
from shared.taxonomy import Status, Substatus


@dataclass(frozen=True)
class RegisterShipment:
    tenant_id: uuid.UUID
    tracking_number: str
    carrier: str | None = None
    merchant_reference: str | None = None
    origin_country: str | None = None
    destination_country: str | None = None


def resolve_carrier(number: str, carrier: str | None) -> str:
    if carrier is not None:
        if carrier not in CARRIER_IDS:
            raise InvalidInput(f"unknown carrier {carrier!r}; supported: {', '.join(CARRIER_IDS)}")
        return carrier
    candidates = detect(number)
    if not candidates:
        raise InvalidInput(
            f"cannot tell the carrier of {number!r} from the number; pass 'carrier' "
            f"(one of: {', '.join(CARRIER_IDS)})"
        )
    return candidates[0].carrier


async def register_shipment(
    session: AsyncSession, cmd: RegisterShipment, topic: str = TOPIC_SHIPMENT_UPDATES
) -> tuple[Shipment, bool]:
    """Idempotent by (tenant, carrier, number): returns (shipment, created)."""
    number = normalise(cmd.tracking_number)
    carrier = resolve_carrier(number, cmd.carrier)
    existing = await repository.find_registered(session, cmd.tenant_id, carrier, number)
    if existing is not None:
        return existing, False
    shipment = Shipment(
        tenant_id=cmd.tenant_id,
        carrier=carrier,
        tracking_number=number,
        merchant_reference=cmd.merchant_reference,
        origin_country=cmd.origin_country,
        destination_country=cmd.destination_country,
        status=Status.PENDING.value,
        module_status={},
    )
    leg = Leg(carrier=carrier, tracking_number=number, position=0, opened_by="registration")
    shipment = await repository.add_shipment(session, shipment, [leg])
    await _rederive(session, [shipment], topic, always_publish=True)
    return shipment, True


async def record_events(
    session: AsyncSession, events: Sequence[TrackingEvent], topic: str = TOPIC_SHIPMENT_UPDATES
) -> int:
    """Store events idempotently and re-derive the shipments they touch; returns new events."""
    new_ids = await repository.insert_events(session, events)
    if not new_ids:
        return 0
    numbers = {(e.carrier, e.tracking_number) for e in events if e.event_id in new_ids}
    shipments = await repository.shipments_with_numbers(session, numbers)
    known = {(leg.carrier, leg.tracking_number) for s in shipments for leg in s.legs}
    for carrier, number in sorted(numbers - known):
        # Events for a number nobody registered (a push, an aggregator): it still gets a timeline.
        shipment = Shipment(
            carrier=carrier, tracking_number=number, status=Status.PENDING.value, module_status={}
        )
        leg = Leg(carrier=carrier, tracking_number=number, opened_by="first_event")
        shipments.append(await repository.add_shipment(session, shipment, [leg]))
    await _rederive(session, shipments, topic)
    return len(new_ids)


async def _rederive(
    session: AsyncSession, shipments: list[Shipment], topic: str, always_publish: bool = False
) -> None:
    numbers = {(leg.carrier, leg.tracking_number) for s in shipments for leg in s.legs}
    events = await repository.events_for_numbers(session, numbers)
    now = utcnow()
    updates: list[OutRecord] = []
    for shipment in shipments:
        rows = [e for leg in shipment.legs for e in events[(leg.carrier, leg.tracking_number)]]
        derived = derive(rows)
        previous = shipment.status
        changed = (
            previous != derived.status.value
            or shipment.substatus != derived.substatus
            or shipment.module_status != derived.module_status
        )
        if changed or shipment.last_event_at != derived.last_event_at:
            shipment.status = derived.status.value
            shipment.substatus = derived.substatus
            shipment.module_status = derived.module_status
            shipment.last_event_at = derived.last_event_at
            shipment.updated_at = now
        if changed or always_publish:
            updates.append(_update_record(shipment, Status(previous) if previous else None))
    await session.flush()
    add_to_outbox(session, topic, updates)


def _update_record(shipment: Shipment, previous: Status | None) -> OutRecord:
    update = ShipmentUpdate(
        shipment_id=shipment.id,
        tenant_id=shipment.tenant_id,
        status=Status(shipment.status),
        substatus=Substatus(shipment.substatus) if shipment.substatus else None,
        previous_status=previous if previous != Status(shipment.status) else None,
        legs=[
            LegRef(carrier=leg.carrier, tracking_number=leg.tracking_number)
            for leg in shipment.legs
        ],
        last_event_at=shipment.last_event_at,
        updated_at=shipment.updated_at,
    )
    return OutRecord(key=str(shipment.id), value=encode(update))
