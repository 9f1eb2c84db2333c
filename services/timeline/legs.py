"""Opening legs on shipments: the session side of ``linking``'s rules.

Opening a leg may reveal more: the new number's stored events are read for further hand-offs
(``follow_new_legs``), and a tenant-less shipment that was made for events nobody registered folds
into the shipment that turns out to own its number (its legs move there, it keeps a pointer).
Functions take the session first and only flush.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline import repository
from services.timeline.linking import (
    FIRST_EVENT,
    EventFacts,
    Link,
    links_from_event,
    same_number_link,
)
from services.timeline.models import Leg, Shipment
from shared.db import utcnow
from shared.schema import TrackingEvent
from shared.taxonomy import Status

log = logging.getLogger("throughline.timeline")

# A runaway chain of hand-offs (a carrier quoting numbers in every scan) stops here.
MAX_LEGS = 12


@dataclass
class Changes:
    """The shipments one unit of work touched, the legs it opened and the shipments it retired."""

    shipments: dict[uuid.UUID, Shipment] = field(default_factory=dict)
    added: dict[uuid.UUID, list[tuple[str, str]]] = field(default_factory=dict)
    unscanned: list[tuple[Shipment, tuple[str, str]]] = field(default_factory=list)

    def touch(self, shipments: Iterable[Shipment]) -> None:
        for shipment in shipments:
            self.shipments.setdefault(shipment.id, shipment)

    def live(self) -> list[Shipment]:
        return [s for s in self.shipments.values() if s.merged_into_id is None]


async def link_leg(session: AsyncSession, shipment: Shipment, link: Link, changes: Changes) -> bool:
    """Open a leg on ``shipment`` (no-op if it has it) and absorb tenant-less duplicates."""
    changes.touch([shipment])
    if shipment.merged_into_id is not None or find_leg(shipment, link.key) is not None:
        return False
    if len(shipment.legs) >= MAX_LEGS:
        log.warning("leg limit reached", extra={"shipment": str(shipment.id), "link": link.key})
        return False
    added = await repository.add_leg(
        session,
        shipment,
        {
            "position": max((leg.position for leg in shipment.legs), default=-1) + 1,
            "carrier": link.carrier,
            "tracking_number": link.tracking_number,
            "opened_by": link.opened_by,
            "evidence": link.evidence,
            "confidence": link.confidence,
            "detected": link.detected,
        },
    )
    if added:
        changes.added.setdefault(shipment.id, []).append(link.key)
        changes.unscanned.append((shipment, link.key))
        await _absorb(session, shipment, link.key, changes)
    return added


async def _absorb(
    session: AsyncSession, shipment: Shipment, key: tuple[str, str], changes: Changes
) -> None:
    """Tenant-less shipments made for events nobody registered fold into the shipment that
    turned out to own their number; a tenant-less shipment folds into registered owners."""
    others = [
        s
        for s in await repository.shipments_with_numbers(session, {key})
        if s.id != shipment.id and s.merged_into_id is None
    ]
    changes.touch(others)
    if shipment.tenant_id is None and any(o.tenant_id is not None for o in others):
        await _merge(session, shipment, [o for o in others if o.tenant_id is not None], changes)
        return
    for other in others:
        if other.tenant_id is None:
            await _merge(session, other, [shipment], changes)


async def _merge(
    session: AsyncSession, source: Shipment, targets: list[Shipment], changes: Changes
) -> None:
    legs = [
        Link(
            leg.carrier,
            leg.tracking_number,
            leg.opened_by,
            leg.evidence or "",
            leg.confidence,
            leg.detected,
        )
        for leg in source.legs
    ]
    await repository.remove_legs(session, source)
    source.merged_into_id = targets[0].id
    source.updated_at = utcnow()
    log.info(
        "tenant-less shipment merged",
        extra={"shipment": str(source.id), "into": [str(t.id) for t in targets]},
    )
    for target in targets:
        for link in legs:
            await link_leg(session, target, link, changes)


async def link_events(
    session: AsyncSession,
    shipments: list[Shipment],
    events: Sequence[TrackingEvent],
    changes: Changes,
) -> None:
    owners: dict[tuple[str, str], list[Shipment]] = {}
    for shipment in shipments:
        for leg in shipment.legs:
            owners.setdefault((leg.carrier, leg.tracking_number), []).append(shipment)
    for event in events:
        facts = EventFacts.of(event)
        for shipment in owners.get((facts.carrier, facts.tracking_number), []):
            if shipment.merged_into_id is None:  # a merge moved its legs on; they are followed
                for link in links_from_event(facts, shipment.destination_country):
                    await link_leg(session, shipment, link, changes)


async def adopt_number(
    session: AsyncSession,
    key: tuple[str, str],
    events: list[TrackingEvent],
    owners: list[Shipment],
    changes: Changes,
) -> None:
    """Events for a number that is no leg of any shipment under this carrier; ``owners`` hold
    the same number under other carriers."""
    carrier, number = key
    linked = False
    for owner in {s.id: s for s in owners if s.merged_into_id is None}.values():
        link = same_number_link(carrier, number, (leg.carrier for leg in owner.legs))
        if link is not None:
            linked = await link_leg(session, owner, link, changes) or linked
    if linked:
        return
    # Nobody registered it (a carrier push, an aggregator): it still gets a timeline.
    shipment = Shipment(
        carrier=carrier, tracking_number=number, status=Status.PENDING.value, module_status={}
    )
    leg = Leg(carrier=carrier, tracking_number=number, opened_by=FIRST_EVENT)
    shipment = await repository.add_shipment(session, shipment, [leg])
    changes.touch([shipment])
    await link_events(session, [shipment], events, changes)


async def follow_new_legs(session: AsyncSession, changes: Changes) -> None:
    """A new leg's number may have events stored already (polled, pushed, or merged in): read
    them for further hand-offs until no new leg appears."""
    while changes.unscanned:
        shipment, key = changes.unscanned.pop(0)
        if shipment.merged_into_id is not None:
            continue
        stored = (await repository.events_for_numbers(session, {key}))[key]
        for facts in (EventFacts.of(row) for row in stored):
            for link in links_from_event(facts, shipment.destination_country):
                await link_leg(session, shipment, link, changes)


def find_leg(shipment: Shipment, key: tuple[str, str]) -> Leg | None:
    return next((leg for leg in shipment.legs if (leg.carrier, leg.tracking_number) == key), None)


def holding(shipments: Iterable[Shipment], number: str) -> list[Shipment]:
    return [s for s in shipments if any(leg.tracking_number == number for leg in s.legs)]


def numbers_of(shipments: Iterable[Shipment]) -> set[tuple[str, str]]:
    return {(leg.carrier, leg.tracking_number) for s in shipments for leg in s.legs}
