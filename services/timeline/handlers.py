"""Timeline use cases. Each takes the session first and only flushes; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline import repository
from services.timeline.legs import (
    Changes,
    adopt_number,
    find_leg,
    follow_new_legs,
    holding,
    link_events,
    link_leg,
    numbers_of,
)
from services.timeline.linking import manifest_link, registration_link
from services.timeline.models import Leg, Shipment, TrackingEventRow
from services.timeline.status import derive
from shared.bus import OutRecord
from shared.db import utcnow
from shared.errors import NotFound
from shared.numbers import normalise
from shared.outbox import add_to_outbox
from shared.schema import TOPIC_SHIPMENT_UPDATES, LegRef, ShipmentUpdate, TrackingEvent, encode
from shared.taxonomy import Module, Status, Substatus


@dataclass(frozen=True)
class RegisterShipment:
    tenant_id: uuid.UUID
    tracking_number: str
    carrier: str | None = None
    merchant_reference: str | None = None
    origin_country: str | None = None
    destination_country: str | None = None


@dataclass(frozen=True)
class AddLeg:
    tenant_id: uuid.UUID
    shipment_id: uuid.UUID
    carrier: str
    tracking_number: str
    evidence: str | None = None


async def register_shipment(
    session: AsyncSession, cmd: RegisterShipment, topic: str = TOPIC_SHIPMENT_UPDATES
) -> tuple[Shipment, bool]:
    """Idempotent by (tenant, carrier, number): returns (shipment, created)."""
    number = normalise(cmd.tracking_number)
    first = registration_link(number, cmd.carrier)
    existing = await repository.find_registered(session, cmd.tenant_id, first.carrier, number)
    if existing is not None:
        return existing, False
    shipment = Shipment(
        tenant_id=cmd.tenant_id,
        carrier=first.carrier,
        tracking_number=number,
        merchant_reference=cmd.merchant_reference,
        origin_country=cmd.origin_country,
        destination_country=cmd.destination_country,
        status=Status.PENDING.value,
        module_status={},
    )
    shipment = await repository.add_shipment(session, shipment, [])
    changes = Changes()
    await link_leg(session, shipment, first, changes)
    await follow_new_legs(session, changes)
    await _rederive(session, changes, topic, always_publish={shipment.id})
    return shipment, True


async def add_leg(
    session: AsyncSession, cmd: AddLeg, topic: str = TOPIC_SHIPMENT_UPDATES
) -> tuple[Leg, bool]:
    """A merchant manifest names another leg; idempotent by (carrier, number): (leg, created)."""
    shipment = await repository.get_for_tenant(session, cmd.tenant_id, cmd.shipment_id)
    if shipment is None:
        raise NotFound(f"no shipment {cmd.shipment_id}")
    link = manifest_link(cmd.carrier, cmd.tracking_number, cmd.evidence)
    existing = find_leg(shipment, link.key)
    if existing is not None:
        return existing, False
    changes = Changes()
    await link_leg(session, shipment, link, changes)
    await follow_new_legs(session, changes)
    await _rederive(session, changes, topic)
    leg = find_leg(shipment, link.key)
    assert leg is not None
    return leg, True


async def record_events(
    session: AsyncSession, events: Sequence[TrackingEvent], topic: str = TOPIC_SHIPMENT_UPDATES
) -> int:
    """Store events idempotently, link the legs they reveal and re-derive the shipments they
    touch; returns how many events were new or corrected.

    A renormalised event whose id is stored already replaces the stored event's mapped fields.
    """
    unique = list({e.event_id: e for e in events}.values())
    new_ids = await repository.insert_events(session, unique)
    corrected = await repository.correct_events(
        session, [e for e in unique if e.renormalised and e.event_id not in new_ids]
    )
    changed = [e for e in unique if e.event_id in new_ids] + corrected
    if not changed:
        return 0
    by_number: dict[tuple[str, str], list[TrackingEvent]] = {}
    for event in changed:
        by_number.setdefault((event.carrier, event.tracking_number), []).append(event)
    changes = Changes()
    changes.touch(await repository.shipments_with_numbers(session, set(by_number)))
    await link_events(session, changes.live(), changed, changes)
    unclaimed = sorted(set(by_number) - numbers_of(changes.live()))
    holders = await repository.shipments_by_number(session, {n for _, n in unclaimed})
    for key in unclaimed:
        # Linking may have claimed it meanwhile (a hand-off and the next leg in one batch).
        if key not in numbers_of(changes.live()):
            owners = [*holders.get(key[1], []), *holding(changes.live(), key[1])]
            await adopt_number(session, key, by_number[key], owners, changes)
    await follow_new_legs(session, changes)
    await _rederive(session, changes, topic)
    return len(changed)


async def _rederive(
    session: AsyncSession,
    changes: Changes,
    topic: str,
    always_publish: set[uuid.UUID] | None = None,
) -> None:
    shipments = changes.live()
    events = await repository.events_for_numbers(session, numbers_of(shipments))
    now = utcnow()
    updates: list[OutRecord] = []
    for shipment in shipments:
        legs_changed = _derive_legs(shipment, events)
        rows = [e for leg in shipment.legs for e in events[(leg.carrier, leg.tracking_number)]]
        derived = derive(rows)
        customs = derived.customs.as_dict()
        previous = shipment.status
        changed = (
            previous != derived.status.value
            or shipment.substatus != derived.substatus
            or shipment.module_status != derived.module_status
            or (shipment.customs or {}) != customs
        )
        if changed or shipment.last_event_at != derived.last_event_at:
            shipment.status = derived.status.value
            shipment.substatus = derived.substatus
            shipment.module_status = derived.module_status
            shipment.customs = customs
            shipment.last_event_at = derived.last_event_at
            shipment.updated_at = now
        added = changes.added.get(shipment.id, [])
        if changed or legs_changed or added or shipment.id in (always_publish or set()):
            updates.append(_update_record(shipment, Status(previous) if previous else None, added))
    await session.flush()
    add_to_outbox(session, topic, updates)


def _derive_legs(shipment: Shipment, events: dict[tuple[str, str], list[TrackingEventRow]]) -> bool:
    """Each leg's own status from its number's events; True when any leg changed."""
    changed = False
    for leg in shipment.legs:
        rows = events.get((leg.carrier, leg.tracking_number), [])
        derived = derive(rows) if rows else None
        status = derived.status.value if derived else None
        substatus = derived.substatus if derived else None
        module = derived.module if derived else None
        if (leg.status, leg.substatus, leg.module) != (status, substatus, module):
            leg.status, leg.substatus, leg.module = status, substatus, module
            changed = True
    return changed


def _leg_ref(leg: Leg) -> LegRef:
    return LegRef(
        carrier=leg.carrier,
        tracking_number=leg.tracking_number,
        status=Status(leg.status) if leg.status else None,
        substatus=Substatus(leg.substatus) if leg.substatus else None,
        module=Module(leg.module) if leg.module else None,
        detected=leg.detected,
    )


def _update_record(
    shipment: Shipment, previous: Status | None, added: list[tuple[str, str]]
) -> OutRecord:
    update = ShipmentUpdate(
        shipment_id=shipment.id,
        tenant_id=shipment.tenant_id,
        status=Status(shipment.status),
        substatus=Substatus(shipment.substatus) if shipment.substatus else None,
        previous_status=previous if previous != Status(shipment.status) else None,
        legs=[_leg_ref(leg) for leg in shipment.legs],
        added_legs=[
            _leg_ref(leg) for leg in shipment.legs if (leg.carrier, leg.tracking_number) in added
        ],
        last_event_at=shipment.last_event_at,
        updated_at=shipment.updated_at,
    )
    return OutRecord(key=str(shipment.id), value=encode(update))
