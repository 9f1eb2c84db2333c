"""All SQL of the timeline service. Functions take the session and only flush."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Insert, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline.models import Leg, Shipment, TrackingEventRow
from shared.db import utcnow
from shared.schema import TrackingEvent

Number = tuple[str, str]  # (carrier, tracking_number)

# What a renormalisation may change in a stored event: everything the adapter's mapping decides.
# The identity (carrier, number, carrier code, raw timestamp, location text) is the event id's.
MUTABLE_FIELDS = (
    "status",
    "substatus",
    "module",
    "description",
    "handoff",
    "location",
    "occurred_at",
    "utc_offset",
    "time_basis",
)
_CHUNK = 500  # stay under bind-parameter limits


def _insert_ignoring_duplicates(session: AsyncSession, rows: list[dict[str, object]]) -> Insert:
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(TrackingEventRow).values(rows)
    return stmt.on_conflict_do_nothing(index_elements=["event_id"]).returning(  # type: ignore[no-any-return]
        TrackingEventRow.event_id
    )


def event_row(event: TrackingEvent) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "carrier": event.carrier,
        "tracking_number": event.tracking_number,
        "occurred_at": event.occurred_at,
        "occurred_at_local": event.occurred_at_local,
        "utc_offset": event.utc_offset,
        "time_basis": event.time_basis.value,
        "status": event.status.value,
        "substatus": event.substatus.value if event.substatus else None,
        "module": event.module.value if event.module else None,
        "carrier_code": event.carrier_code,
        "description": event.description,
        "location": event.location.model_dump(exclude_none=True) if event.location else None,
        "handoff": event.handoff.model_dump(mode="json") if event.handoff else None,
        "source": event.source.value,
        "raw_ref": event.raw_ref,
        "sequence": event.sequence,
    }


async def insert_events(session: AsyncSession, events: Sequence[TrackingEvent]) -> set[uuid.UUID]:
    """Insert, skipping event ids already stored; returns the ids that were new."""
    unique = {e.event_id: e for e in events}
    if not unique:
        return set()
    rows = [event_row(e) for e in unique.values()]
    inserted: set[uuid.UUID] = set()
    for start in range(0, len(rows), _CHUNK):
        result = await session.execute(
            _insert_ignoring_duplicates(session, rows[start : start + _CHUNK])
        )
        inserted.update(result.scalars().all())
    return inserted


async def correct_events(
    session: AsyncSession, events: Sequence[TrackingEvent]
) -> list[TrackingEvent]:
    """Overwrite the mapped fields of stored events; returns the events that changed anything."""
    by_id = {e.event_id: e for e in events}
    ids = list(by_id)
    changed: list[TrackingEvent] = []
    now = utcnow()
    for start in range(0, len(ids), _CHUNK):
        stmt = select(TrackingEventRow).where(
            TrackingEventRow.event_id.in_(ids[start : start + _CHUNK])
        )
        for row in await session.scalars(stmt):
            values = event_row(by_id[row.event_id])
            diff = {f: values[f] for f in MUTABLE_FIELDS if getattr(row, f) != values[f]}
            if diff:
                for name, value in diff.items():
                    setattr(row, name, value)
                row.renormalised_at = now
                changed.append(by_id[row.event_id])
    await session.flush()
    return changed


async def shipments_with_numbers(session: AsyncSession, numbers: set[Number]) -> list[Shipment]:
    if not numbers:
        return []
    ids = select(Leg.shipment_id).where(tuple_(Leg.carrier, Leg.tracking_number).in_(list(numbers)))
    result = await session.scalars(select(Shipment).where(Shipment.id.in_(ids)))
    return list(result.unique().all())


async def events_for_numbers(
    session: AsyncSession, numbers: set[Number]
) -> dict[Number, list[TrackingEventRow]]:
    out: dict[Number, list[TrackingEventRow]] = {n: [] for n in numbers}
    if not numbers:
        return out
    stmt = select(TrackingEventRow).where(
        tuple_(TrackingEventRow.carrier, TrackingEventRow.tracking_number).in_(list(numbers))
    )
    for row in await session.scalars(stmt):
        out[(row.carrier, row.tracking_number)].append(row)
    return out


async def shipments_by_number(
    session: AsyncSession, tracking_numbers: set[str]
) -> dict[str, list[Shipment]]:
    """Shipments with a leg of each number, under any carrier."""
    out: dict[str, list[Shipment]] = {}
    if not tracking_numbers:
        return out
    stmt = (
        select(Leg.tracking_number, Shipment)
        .join(Shipment, Shipment.id == Leg.shipment_id)
        .where(Leg.tracking_number.in_(sorted(tracking_numbers)))
    )
    for number, shipment in (await session.execute(stmt)).unique().all():
        out.setdefault(number, []).append(shipment)
    return out


async def add_leg(session: AsyncSession, shipment: Shipment, values: dict[str, object]) -> bool:
    """Add a leg unless the shipment has it (a concurrent writer may have added it meanwhile)."""
    dialect = session.bind.dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = (
        module.insert(Leg)
        .values(id=uuid.uuid4(), shipment_id=shipment.id, created_at=utcnow(), **values)
        .on_conflict_do_nothing(index_elements=["shipment_id", "carrier", "tracking_number"])
        .returning(Leg.id)
    )
    added = (await session.execute(stmt)).first() is not None
    await session.refresh(shipment, ["legs"])
    return added


async def remove_legs(session: AsyncSession, shipment: Shipment) -> None:
    await session.execute(delete(Leg).where(Leg.shipment_id == shipment.id))
    await session.refresh(shipment, ["legs"])


async def add_shipment(session: AsyncSession, shipment: Shipment, legs: list[Leg]) -> Shipment:
    session.add(shipment)
    await session.flush()
    for leg in legs:
        leg.shipment_id = shipment.id
        session.add(leg)
    await session.flush()
    await session.refresh(shipment, ["legs"])
    return shipment


async def find_registered(
    session: AsyncSession, tenant_id: uuid.UUID, carrier: str, tracking_number: str
) -> Shipment | None:
    stmt = select(Shipment).where(
        Shipment.tenant_id == tenant_id,
        Shipment.carrier == carrier,
        Shipment.tracking_number == tracking_number,
    )
    return (await session.scalars(stmt)).first()


async def get_for_tenant(
    session: AsyncSession, tenant_id: uuid.UUID, shipment_id: uuid.UUID
) -> Shipment | None:
    stmt = select(Shipment).where(Shipment.id == shipment_id, Shipment.tenant_id == tenant_id)
    return (await session.scalars(stmt)).first()


async def find_by_any_number(session: AsyncSession, tracking_number: str) -> Shipment | None:
    """The shipment any of whose legs carries this number (the earliest registered one)."""
    ids = select(Leg.shipment_id).where(Leg.tracking_number == tracking_number)
    return (
        await session.scalars(
            select(Shipment).where(Shipment.id.in_(ids)).order_by(Shipment.created_at).limit(1)
        )
    ).first()
