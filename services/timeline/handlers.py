"""Timeline use cases. Each takes the session first and only writes; the caller commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline import repository
from services.timeline.legs import (
    ShipmentState,
    Stage,
    Work,
    find_leg,
    first_leg,
    follow_new_legs,
    link_events,
    link_leg,
)
from services.timeline.linking import (
    EventFacts,
    links_from_event,
    manifest_link,
    may_open_legs,
    registration_link,
    same_number_link,
)
from services.timeline.models import Leg, Shipment
from shared.errors import NotFound
from shared.numbers import normalise
from shared.outbox import insert_outbox
from shared.schema import TOPIC_SHIPMENT_UPDATES, TrackingEvent


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
    work = Work(session)
    shipment = work.create(
        ShipmentState.create(
            first.carrier,
            number,
            cmd.tenant_id,
            merchant_reference=cmd.merchant_reference,
            origin_country=cmd.origin_country,
            destination_country=cmd.destination_country,
        )
    )
    await link_leg(work, shipment, first)
    await follow_new_legs(work)
    await work.finish(topic, always_publish={shipment.id})
    return await repository.reload(session, shipment.id), True


async def add_leg(
    session: AsyncSession, cmd: AddLeg, topic: str = TOPIC_SHIPMENT_UPDATES
) -> tuple[Leg, bool]:
    """A merchant manifest names another leg; idempotent by (carrier, number): (leg, created)."""
    found = await repository.get_for_tenant(session, cmd.tenant_id, cmd.shipment_id)
    if found is None:
        raise NotFound(f"no shipment {cmd.shipment_id}")
    link = manifest_link(cmd.carrier, cmd.tracking_number, cmd.evidence)
    existing = find_leg(found, link.key)
    if existing is not None:
        return existing, False
    work = Work(session)
    shipment = await work.load_shipment(found.id)
    await link_leg(work, shipment, link)
    await follow_new_legs(work)
    await work.finish(topic)
    leg = find_leg(await repository.reload(session, found.id), link.key)
    assert leg is not None
    return leg, True


async def record_events(
    session: AsyncSession,
    events: Sequence[TrackingEvent],
    topic: str = TOPIC_SHIPMENT_UPDATES,
    stage: Stage = insert_outbox,
) -> int:
    """Store events idempotently, link the legs they reveal and derive the shipments they
    touch; returns how many events were new or corrected.

    A renormalised event whose id is stored already replaces the stored event's mapped fields.
    A batch of any size is a fixed handful of statements (``legs.Work``).
    """
    unique = list({e.event_id: e for e in events}.values())
    new_ids = await repository.insert_events(session, unique)
    corrected = await repository.correct_events(
        session, [e for e in unique if e.renormalised and e.event_id not in new_ids]
    )
    changed = [e for e in unique if e.event_id in new_ids] + corrected
    # Events stored already may still name a leg: a carrier adds the next carrier's number to
    # a scan it reported before (same event id). Linking runs over them too; derivation not.
    done = {e.event_id for e in corrected} | new_ids
    repeated = [
        (e, facts)
        for e in unique
        if e.event_id not in done and may_open_legs(facts := EventFacts.of(e))
    ]
    if not changed and not repeated:
        return 0
    await repository.fill_handoffs(
        session, [e for e, _ in repeated if e.handoff is not None and not e.renormalised]
    )
    work = Work(session)
    by_number = work.new_events
    for event in changed:
        by_number.setdefault((event.carrier, event.tracking_number), []).append(event)
    work.corrected = {(e.carrier, e.tracking_number) for e in corrected}
    await work.load_numbers(
        {number for _, number in by_number} | {e.tracking_number for e, _ in repeated}
    )
    for key in by_number:
        work.touch(work.owners(key))
    await link_events(work, work.live(), changed)
    await relink(work, repeated)
    for key in sorted(by_number):
        # Linking may have claimed it meanwhile (a hand-off and the next leg in one batch).
        if not work.claimed(key):
            await adopt_number(work, key, by_number[key])
    await follow_new_legs(work)
    await work.finish(topic, stage=stage)
    return len(changed)


async def relink(work: Work, repeated: list[tuple[TrackingEvent, EventFacts]]) -> None:
    """Legs that events stored already name and their shipments lack (an existing leg is not
    re-opened, and a shipment that gains nothing is not touched, so not re-derived)."""
    for event, facts in repeated:
        for shipment in work.owners((event.carrier, event.tracking_number)):
            for link in links_from_event(facts, shipment.destination_country):
                if shipment.live and shipment.leg(link.key) is None:
                    await link_leg(work, shipment, link)


async def adopt_number(work: Work, key: tuple[str, str], events: list[TrackingEvent]) -> None:
    """Events for a number that is no leg of any shipment under this carrier; shipments holding
    the same number under other carriers may take it as a leg."""
    carrier, number = key
    linked = False
    for owner in work.holding(number):
        link = same_number_link(carrier, number, (leg.carrier for leg in owner.legs))
        if link is not None:
            linked = await link_leg(work, owner, link) or linked
    if linked:
        return
    # Nobody registered it (a carrier push, an aggregator): it still gets a timeline.
    shipment = ShipmentState.create(carrier, number)
    first_leg(shipment, carrier, number)
    work.create(shipment)
    work.touch([shipment])
    await link_events(work, [shipment], events)
