"""All SQL of the timeline service. Functions take the session and only flush."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Row, Select, Table, bindparam, delete, insert, select, text, tuple_, update
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


# PostgreSQL: the whole batch in one statement, one array per column (compiled once, prepared once).
_PG_EVENT_COLUMNS = (
    ("event_id", "uuid"),
    ("carrier", "varchar"),
    ("tracking_number", "varchar"),
    ("occurred_at", "timestamptz"),
    ("occurred_at_local", "varchar"),
    ("utc_offset", "varchar"),
    ("time_basis", "varchar"),
    ("status", "varchar"),
    ("substatus", "varchar"),
    ("module", "varchar"),
    ("carrier_code", "varchar"),
    ("description", "text"),
    ("location", "text"),
    ("handoff", "text"),
    ("source", "varchar"),
    ("raw_ref", "varchar"),
    ("sequence", "int"),
)
_PG_INSERT_EVENTS = text(
    f"INSERT INTO tracking_event ({', '.join(c for c, _ in _PG_EVENT_COLUMNS)}, ingested_at) "
    f"SELECT {', '.join(f'u.{c}::jsonb' if c in ('location', 'handoff') else f'u.{c}' for c, _ in _PG_EVENT_COLUMNS)}, "  # noqa: E501
    f"CAST(:ingested_at AS timestamptz) "
    f"FROM unnest({', '.join(f'CAST(:{c} AS {t}[])' for c, t in _PG_EVENT_COLUMNS)}) "
    f"AS u({', '.join(c for c, _ in _PG_EVENT_COLUMNS)}) "
    "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
)


def _json_text(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name


async def insert_events(session: AsyncSession, events: Sequence[TrackingEvent]) -> set[uuid.UUID]:
    """Insert, skipping event ids already stored; returns the ids that were new."""
    unique = {e.event_id: e for e in events}
    if not unique:
        return set()
    rows = [event_row(e) for e in unique.values()]
    now = utcnow()
    if dialect(session) == "postgresql":
        params: dict[str, object] = {c: [r[c] for r in rows] for c, _ in _PG_EVENT_COLUMNS}
        params["location"] = [_json_text(r["location"]) for r in rows]
        params["handoff"] = [_json_text(r["handoff"]) for r in rows]
        params["ingested_at"] = now
        return set((await session.execute(_PG_INSERT_EVENTS, params)).scalars().all())
    # SQLite has one writer (BEGIN IMMEDIATE): what is not stored now is ours to insert.
    stored = await _stored_event_ids(session, list(unique))
    fresh = [{**r, "ingested_at": now} for r in rows if r["event_id"] not in stored]
    if fresh:
        await session.execute(insert(_EVENTS), fresh)
    return {r["event_id"] for r in fresh}  # type: ignore[misc]


async def _stored_event_ids(session: AsyncSession, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    stored: set[uuid.UUID] = set()
    for start in range(0, len(ids), _CHUNK):
        stmt = select(_EVENTS.c.event_id).where(_EVENTS.c.event_id.in_(ids[start : start + _CHUNK]))
        stored.update((await session.execute(stmt)).scalars().all())
    return stored


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


async def events_for_numbers(
    session: AsyncSession, numbers: set[Number]
) -> dict[Number, list[TrackingEventRow]]:
    """Stored events as ORM rows, for the views."""
    out: dict[Number, list[TrackingEventRow]] = {n: [] for n in numbers}
    if not numbers:
        return out
    stmt = select(TrackingEventRow).where(
        tuple_(TrackingEventRow.carrier, TrackingEventRow.tracking_number).in_(list(numbers))
    )
    for row in await session.scalars(stmt):
        out[(row.carrier, row.tracking_number)].append(row)
    return out


# --- the consumer's set-based statements (Core rows, no ORM objects) ------------------------------

_SHIPMENTS: Table = Shipment.__table__  # type: ignore[assignment]
_LEGS: Table = Leg.__table__  # type: ignore[assignment]
_EVENTS: Table = TrackingEventRow.__table__  # type: ignore[assignment]
_FOLD_COLUMNS = ("status", "substatus", "module", "occurred_at", "occurred_at_local", "sequence")
_FACT_COLUMNS = ("carrier", "tracking_number", "carrier_code", "description", "location", "handoff")
_EVENT_READ = select(
    *(_EVENTS.c[c] for c in ("event_id", *dict.fromkeys(_FACT_COLUMNS + _FOLD_COLUMNS)))
)


async def event_rows(session: AsyncSession, numbers: set[Number]) -> dict[Number, list[Row[Any]]]:
    """Every stored event of these (carrier, number) keys: what linking and derivation read."""
    out: dict[Number, list[Row[Any]]] = {n: [] for n in numbers}
    keys = sorted(numbers)
    for start in range(0, len(keys), _CHUNK):
        stmt = _EVENT_READ.where(
            tuple_(_EVENTS.c.carrier, _EVENTS.c.tracking_number).in_(keys[start : start + _CHUNK])
        )
        for row in await session.execute(stmt):
            out[(row.carrier, row.tracking_number)].append(row)
    return out


async def shipments_holding(
    session: AsyncSession, tracking_numbers: set[str]
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Live shipments with a leg of any of these numbers (under any carrier), and all their legs.

    On PostgreSQL the shipment rows are locked (in id order, so two consumers do not deadlock) until
    the transaction ends: a fold of the stored state must not race another writer's fold.
    """
    numbers = sorted(tracking_numbers)
    shipments: list[Row[Any]] = []
    for start in range(0, len(numbers), _CHUNK):
        holders = select(_LEGS.c.shipment_id).where(
            _LEGS.c.tracking_number.in_(numbers[start : start + _CHUNK])
        )
        stmt = select(_SHIPMENTS).where(
            _SHIPMENTS.c.id.in_(holders), _SHIPMENTS.c.merged_into_id.is_(None)
        )
        shipments.extend(await session.execute(_locked(session, stmt)))
    return shipments, await legs_of(session, [r.id for r in shipments])


async def shipments_by_id(
    session: AsyncSession, ids: list[uuid.UUID]
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    shipments: list[Row[Any]] = []
    for start in range(0, len(ids), _CHUNK):
        stmt = select(_SHIPMENTS).where(_SHIPMENTS.c.id.in_(ids[start : start + _CHUNK]))
        shipments.extend(await session.execute(_locked(session, stmt)))
    return shipments, await legs_of(session, [r.id for r in shipments])


def _locked(session: AsyncSession, stmt: Select[Any]) -> Select[Any]:
    if dialect(session) != "postgresql":
        return stmt  # SQLite: BEGIN IMMEDIATE already holds the one write lock
    return stmt.order_by(_SHIPMENTS.c.id).with_for_update(of=_SHIPMENTS)


async def legs_of(session: AsyncSession, shipment_ids: list[uuid.UUID]) -> list[Row[Any]]:
    legs: list[Row[Any]] = []
    for start in range(0, len(shipment_ids), _CHUNK):
        stmt = (
            select(_LEGS)
            .where(_LEGS.c.shipment_id.in_(shipment_ids[start : start + _CHUNK]))
            .order_by(_LEGS.c.shipment_id, _LEGS.c.position)
        )
        legs.extend(await session.execute(stmt))
    return legs


async def insert_shipments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(insert(_SHIPMENTS), rows)


async def insert_legs(session: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert legs unless the shipment has the number already; returns the ids inserted."""
    if not rows:
        return set()
    module = postgresql if dialect(session) == "postgresql" else sqlite
    stmt = (
        module.insert(_LEGS)
        .on_conflict_do_nothing(index_elements=["shipment_id", "carrier", "tracking_number"])
        .returning(_LEGS.c.id)
    )
    return set((await session.execute(stmt, rows)).scalars().all())


async def delete_legs(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    for start in range(0, len(ids), _CHUNK):
        await session.execute(delete(_LEGS).where(_LEGS.c.id.in_(ids[start : start + _CHUNK])))


_SHIPMENT_STATE = (
    "status",
    "substatus",
    "module_status",
    "customs",
    "last_event_at",
    "merged_into_id",
    "derivation",
    "updated_at",
)
_UPDATE_SHIPMENTS = (
    update(_SHIPMENTS)
    .where(_SHIPMENTS.c.id == bindparam("_id", type_=_SHIPMENTS.c.id.type))
    .values({c: bindparam(f"v_{c}", type_=_SHIPMENTS.c[c].type) for c in _SHIPMENT_STATE})
)
_LEG_STATE = ("status", "substatus", "module", "derivation")
_UPDATE_LEGS = (
    update(_LEGS)
    .where(_LEGS.c.id == bindparam("_id", type_=_LEGS.c.id.type))
    .values({c: bindparam(f"v_{c}", type_=_LEGS.c[c].type) for c in _LEG_STATE})
)


async def update_shipments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """One executemany of every derived column (``_id`` plus ``_SHIPMENT_STATE``)."""
    if rows:
        await session.execute(_UPDATE_SHIPMENTS, [_prefixed(r) for r in rows])


async def update_legs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_UPDATE_LEGS, [_prefixed(r) for r in rows])


def _prefixed(row: dict[str, Any]) -> dict[str, Any]:
    return {k if k == "_id" else f"v_{k}": v for k, v in row.items()}


async def reload(session: AsyncSession, shipment_id: uuid.UUID) -> Shipment:
    """The ORM shipment as stored now (Core statements bypass the session's identity map)."""
    stmt = select(Shipment).where(Shipment.id == shipment_id)
    found = (await session.scalars(stmt.execution_options(populate_existing=True))).one()
    return found


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
