"""All SQL of the timeline service. Functions take the session and only flush."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    Row,
    String,
    Table,
    TextClause,
    Uuid,
    bindparam,
    delete,
    insert,
    or_,
    select,
    text,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.timeline.models import Leg, Shipment, TrackingEventRow
from shared.db import UtcDateTime, utcnow
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


def _json_text(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name


async def insert_events(session: AsyncSession, events: Sequence[TrackingEvent]) -> set[uuid.UUID]:
    """Insert, skipping event ids already stored; returns the ids that were new."""
    unique = {e.event_id: e for e in events}
    if not unique:
        return set()
    now = utcnow()
    if dialect(session) == "postgresql":
        columns = zip(*(_pg_event(e, now) for e in unique.values()), strict=True)
        arrays = dict(zip(_EVENT_COLUMNS, columns, strict=True))
        result = await session.execute(_pg_statements()["insert_events"], arrays)
        return set(result.scalars().all())
    # SQLite: the driver's own values, as SQLAlchemy would bind them, in multi-row statements
    # that return the ids they inserted (no per-row type processing, no existence query).
    values = [_sqlite_event(e, _sqlite_time(now)) for e in unique.values()]
    connection = await session.connection()
    inserted: set[uuid.UUID] = set()
    for start in range(0, len(values), _SQLITE_ROWS):
        chunk = values[start : start + _SQLITE_ROWS]
        params = tuple(v for row in chunk for v in row)
        result = await connection.exec_driver_sql(_sqlite_insert_events(len(chunk)), params)
        inserted.update(uuid.UUID(hex=stored) for (stored,) in result)
    return inserted


_SQLITE_ROWS = 500  # 18 columns x 500 rows: well under SQLite's 32,766 bound parameters


@functools.lru_cache(maxsize=8)
def _sqlite_insert_events(rows: int) -> str:
    one = "(" + ", ".join("?" * len(_EVENT_COLUMNS)) + ")"
    return (
        f"INSERT INTO tracking_event ({', '.join(_EVENT_COLUMNS)}) VALUES "
        + ", ".join([one] * rows)
        + " ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )


def _sqlite_time(value: datetime) -> str:
    """How SQLAlchemy stores ``UtcDateTime`` in SQLite: UTC, naive, microseconds."""
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


def _sqlite_event(event: TrackingEvent, now: str) -> tuple[object, ...]:
    """``event_row`` as SQLite driver values in ``_EVENT_COLUMNS`` order: uuid as 32 hex digits
    (SQLAlchemy's ``Uuid`` there), instants as ``_sqlite_time``, JSON as text (NULL for None)."""
    location, handoff, occurred_at = event.location, event.handoff, event.occurred_at
    return (
        event.event_id.hex,
        event.carrier,
        event.tracking_number,
        _sqlite_time(occurred_at) if occurred_at is not None else None,
        event.occurred_at_local,
        event.utc_offset,
        event.time_basis.value,
        event.status.value,
        event.substatus.value if event.substatus else None,
        event.module.value if event.module else None,
        event.carrier_code,
        event.description,
        location.model_dump_json(exclude_none=True) if location else None,
        handoff.model_dump_json() if handoff else None,
        event.source.value,
        event.raw_ref,
        event.sequence,
        now,
    )


def _pg_event(event: TrackingEvent, now: datetime) -> tuple[object, ...]:
    """``event_row`` as one tuple in ``_EVENT_COLUMNS`` order, JSON as text."""
    location, handoff = event.location, event.handoff
    return (
        event.event_id,
        event.carrier,
        event.tracking_number,
        event.occurred_at,
        event.occurred_at_local,
        event.utc_offset,
        event.time_basis.value,
        event.status.value,
        event.substatus.value if event.substatus else None,
        event.module.value if event.module else None,
        event.carrier_code,
        event.description,
        location.model_dump_json(exclude_none=True) if location else None,
        handoff.model_dump_json() if handoff else None,
        event.source.value,
        event.raw_ref,
        event.sequence,
        now,
    )


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


async def fill_handoffs(session: AsyncSession, events: Sequence[TrackingEvent]) -> None:
    """Stored events without a hand-off take the one a later delivery of the same scan names
    (a carrier adds the next carrier's number to a scan it reported already)."""
    rows = [
        {"b_id": e.event_id, "v_handoff": e.handoff.model_dump(mode="json")}
        for e in events
        if e.handoff is not None
    ]
    if not rows:
        return
    if dialect(session) == "postgresql":
        arrays = {
            "ids": [r["b_id"] for r in rows],
            "handoffs": [_json_text(r["v_handoff"]) for r in rows],
        }
        await session.execute(_pg_statements()["fill_handoffs"], arrays)
    else:
        await session.execute(_FILL_HANDOFFS, rows)


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
#
# Reads on PostgreSQL take their keys as arrays (``= ANY(:numbers)``), so each statement has one
# text and is prepared once per connection (an IN list would be a new statement per list length).
# JSON columns are read as text and parsed with orjson by the caller, on both databases.

_SHIPMENTS: Table = Shipment.__table__  # type: ignore[assignment]
_LEGS: Table = Leg.__table__  # type: ignore[assignment]
_EVENTS: Table = TrackingEventRow.__table__  # type: ignore[assignment]


class StoredEvent:
    """What linking (``EventFacts``) and derivation (``status.EventView``) read of a stored event."""

    __slots__ = (
        "event_id", "carrier", "tracking_number", "carrier_code", "description", "location",
        "handoff", "status", "substatus", "module", "occurred_at", "occurred_at_local", "sequence",
    )  # fmt: skip

    def __init__(self, row: Any):
        (
            self.event_id, self.carrier, self.tracking_number, self.carrier_code,
            self.description, location, handoff, self.status, self.substatus, self.module,
            self.occurred_at, self.occurred_at_local, self.sequence,
        ) = row  # fmt: skip
        self.location = orjson.loads(location) if location is not None else None
        self.handoff = orjson.loads(handoff) if handoff is not None else None


_EVENT_READ_COLUMNS = StoredEvent.__slots__


def _as_text(table: Table, names: Sequence[str]) -> list[Any]:
    """Columns for a Core select, JSON ones as their stored text."""
    return [
        type_coerce(table.c[n], String).label(n)
        if isinstance(table.c[n].type, JSON)
        else table.c[n]
        for n in names
    ]


def _pg_columns(table: Table, names: Sequence[str], alias: str) -> str:
    return ", ".join(
        f"{alias}.{n}::text AS {n}" if isinstance(table.c[n].type, JSON) else f"{alias}.{n}"
        for n in names
    )


@functools.cache
def _pg_reads() -> dict[str, TextClause]:
    shipments = _pg_columns(_SHIPMENTS, _SHIPMENT_COLUMNS, "s")
    return {
        # Locked in id order, so two consumers never wait on each other in a cycle. A merged
        # shipment has no legs left, so it is never a holder (and a filter on merged_into_id
        # would cost a sequential scan on a table without statistics yet, at 0.5 % estimated).
        "holders": text(
            f"SELECT {shipments} FROM shipment AS s WHERE s.id IN (SELECT shipment_id FROM leg "
            "WHERE tracking_number = ANY(CAST(:numbers AS text[]))) ORDER BY s.id FOR UPDATE"
        ),
        "by_id": text(
            f"SELECT {shipments} FROM shipment AS s WHERE s.id = ANY(CAST(:ids AS uuid[])) "
            "ORDER BY s.id FOR UPDATE"
        ),
        "legs": text(
            f"SELECT {_pg_columns(_LEGS, _LEG_COLUMNS, 'l')} FROM leg AS l "
            "WHERE l.shipment_id = ANY(CAST(:ids AS uuid[])) ORDER BY l.shipment_id, l.position"
        ),
        "events": text(
            f"SELECT {_pg_columns(_EVENTS, _EVENT_READ_COLUMNS, 'e')} FROM tracking_event AS e "
            "JOIN unnest(CAST(:carriers AS text[]), CAST(:numbers AS text[])) "
            "AS k(carrier, tracking_number) "
            "ON e.carrier = k.carrier AND e.tracking_number = k.tracking_number"
        ),
    }


async def event_rows(
    session: AsyncSession, numbers: set[Number]
) -> dict[Number, list[StoredEvent]]:
    """Every stored event of these (carrier, number) keys: what linking and derivation read."""
    out: dict[Number, list[StoredEvent]] = {n: [] for n in numbers}
    if not numbers:
        return out
    keys = sorted(numbers)
    if dialect(session) == "postgresql":
        params = {"carriers": [c for c, _ in keys], "numbers": [n for _, n in keys]}
        rows: list[Any] = list(await session.execute(_pg_reads()["events"], params))
    else:
        # By number alone (the index's first column; SQLite scans on a (carrier, number) list).
        rows = []
        read = select(*_as_text(_EVENTS, _EVENT_READ_COLUMNS))
        tracking_numbers = sorted({n for _, n in keys})
        for start in range(0, len(tracking_numbers), _CHUNK):
            chunk = tracking_numbers[start : start + _CHUNK]
            rows.extend(await session.execute(read.where(_EVENTS.c.tracking_number.in_(chunk))))
    for row in rows:
        event = StoredEvent(row)
        wanted = out.get((event.carrier, event.tracking_number))
        if wanted is not None:
            wanted.append(event)
    return out


async def shipments_holding(
    session: AsyncSession, tracking_numbers: set[str]
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """Shipments with a leg of any of these numbers (under any carrier), and all their legs;
    JSON columns as text.

    On PostgreSQL the shipment rows are locked until the transaction ends: a fold of the stored
    state must not race another writer's fold (SQLite: BEGIN IMMEDIATE holds the one write lock).
    """
    numbers = sorted(tracking_numbers)
    if dialect(session) == "postgresql":
        params = {"numbers": numbers}
        shipments = list(await session.execute(_pg_reads()["holders"], params))
    else:
        shipments = []
        for start in range(0, len(numbers), _CHUNK):
            holders = select(_LEGS.c.shipment_id).where(
                _LEGS.c.tracking_number.in_(numbers[start : start + _CHUNK])
            )
            stmt = select(*_as_text(_SHIPMENTS, _SHIPMENT_COLUMNS)).where(
                _SHIPMENTS.c.id.in_(holders)
            )
            shipments.extend(await session.execute(stmt))
    return shipments, await legs_of(session, [r.id for r in shipments])


async def shipments_by_id(
    session: AsyncSession, ids: list[uuid.UUID]
) -> tuple[list[Row[Any]], list[Row[Any]]]:
    if dialect(session) == "postgresql":
        shipments = list(await session.execute(_pg_reads()["by_id"], {"ids": ids}))
    else:
        stmt = select(*_as_text(_SHIPMENTS, _SHIPMENT_COLUMNS)).where(_SHIPMENTS.c.id.in_(ids))
        shipments = list(await session.execute(stmt))
    return shipments, await legs_of(session, [r.id for r in shipments])


async def legs_of(session: AsyncSession, shipment_ids: list[uuid.UUID]) -> list[Row[Any]]:
    if not shipment_ids:
        return []
    if dialect(session) == "postgresql":
        return list(await session.execute(_pg_reads()["legs"], {"ids": shipment_ids}))
    legs: list[Row[Any]] = []
    for start in range(0, len(shipment_ids), _CHUNK):
        stmt = (
            select(*_as_text(_LEGS, _LEG_COLUMNS))
            .where(_LEGS.c.shipment_id.in_(shipment_ids[start : start + _CHUNK]))
            .order_by(_LEGS.c.shipment_id, _LEGS.c.position)
        )
        legs.extend(await session.execute(stmt))
    return legs


# PostgreSQL writes a batch of rows as one statement over one array per column:
#   INSERT INTO t (a, b) SELECT u.a, u.b FROM unnest($1::uuid[], $2::text[]) AS u(a, b)
#   UPDATE t SET b = u.b FROM unnest(...) AS u(id, b) WHERE t.id = u.id
# SQLite (in-process, no round trips) takes the same rows as one executemany.


def _pg_type(column: Column[Any]) -> str:
    kind = column.type
    if isinstance(kind, JSON):
        return "text"  # sent as JSON text, cast per row
    for python_type, pg in ((Uuid, "uuid"), (UtcDateTime, "timestamptz"), (Boolean, "bool"),
                            (BigInteger, "int8"), (Integer, "int4"), (Float, "float8"),
                            (LargeBinary, "bytea"), (String, "text")):  # fmt: skip
        if isinstance(kind, python_type):
            return pg
    raise TypeError(f"no array type for {column}")


def _pg_select(table: Table, columns: Sequence[str]) -> tuple[str, str]:
    """The unnest(...) source and a select list for these columns of ``table``."""
    arrays = ", ".join(f"CAST(:{c} AS {_pg_type(table.c[c])}[])" for c in columns)
    source = f"unnest({arrays}) AS u({', '.join(columns)})"
    values = [f"u.{c}::jsonb" if isinstance(table.c[c].type, JSON) else f"u.{c}" for c in columns]
    return source, ", ".join(values)


def _pg_insert(table: Table, columns: Sequence[str], suffix: str = "") -> TextClause:
    source, values = _pg_select(table, columns)
    return text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT {values} FROM {source} {suffix}"
    )


def _pg_update(table: Table, columns: Sequence[str]) -> TextClause:
    source, values = _pg_select(table, ["id", *columns])
    assignments = ", ".join(
        f"{c} = {v}" for c, v in zip(columns, values.split(", ")[1:], strict=True)
    )
    return text(f"UPDATE {table.name} AS t SET {assignments} FROM {source} WHERE t.id = u.id")


def _pg_arrays(table: Table, columns: Sequence[str], rows: list[dict[str, Any]]) -> dict[str, Any]:
    arrays: dict[str, Any] = {}
    for c in columns:
        if isinstance(table.c[c].type, JSON):
            arrays[c] = [_json_text(r[c]) for r in rows]
        else:
            arrays[c] = [r[c] for r in rows]
    return arrays


_EVENT_COLUMNS = (
    "event_id", "carrier", "tracking_number", "occurred_at", "occurred_at_local", "utc_offset",
    "time_basis", "status", "substatus", "module", "carrier_code", "description", "location",
    "handoff", "source", "raw_ref", "sequence", "ingested_at",
)  # fmt: skip
_SHIPMENT_COLUMNS = tuple(c.name for c in Shipment.__table__.columns)
_LEG_COLUMNS = tuple(c.name for c in Leg.__table__.columns)
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
_LEG_STATE = ("status", "substatus", "module", "derivation")


@functools.cache
def _pg_statements() -> dict[str, TextClause]:
    # Built on first use: a foreign key column knows its type once the referred table is mapped.
    return {
        "insert_events": _pg_insert(
            _EVENTS, _EVENT_COLUMNS, "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        ),
        "insert_shipments": _pg_insert(_SHIPMENTS, _SHIPMENT_COLUMNS),
        "insert_legs": _pg_insert(
            _LEGS,
            _LEG_COLUMNS,
            "ON CONFLICT (shipment_id, carrier, tracking_number) DO NOTHING RETURNING id",
        ),
        "fill_handoffs": text(
            "UPDATE tracking_event AS t SET handoff = u.handoff::jsonb "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:handoffs AS text[])) AS u(id, handoff) "
            "WHERE t.event_id = u.id AND t.handoff IS NULL"
        ),
        "update_shipments": _pg_update(_SHIPMENTS, _SHIPMENT_STATE),
        "update_legs": _pg_update(_LEGS, _LEG_STATE),
    }


_FILL_HANDOFFS = (
    update(_EVENTS)
    .where(_EVENTS.c.event_id == bindparam("b_id", type_=_EVENTS.c.event_id.type))
    # A JSON column stores Python None as JSON null on SQLite.
    .where(or_(_EVENTS.c.handoff.is_(None), type_coerce(_EVENTS.c.handoff, String) == "null"))
    .values(handoff=bindparam("v_handoff", type_=_EVENTS.c.handoff.type))
)


async def insert_shipments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New shipments: every column of ``shipment`` per row."""
    if not rows:
        return
    if dialect(session) == "postgresql":
        arrays = _pg_arrays(_SHIPMENTS, _SHIPMENT_COLUMNS, rows)
        await session.execute(_pg_statements()["insert_shipments"], arrays)
    else:
        await session.execute(insert(_SHIPMENTS), rows)


async def insert_legs(session: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert legs unless the shipment has the number already; returns the ids inserted."""
    if not rows:
        return set()
    if dialect(session) == "postgresql":
        result = await session.execute(
            _pg_statements()["insert_legs"], _pg_arrays(_LEGS, _LEG_COLUMNS, rows)
        )
        return set(result.scalars().all())
    stmt = (
        sqlite.insert(_LEGS)
        .on_conflict_do_nothing(index_elements=["shipment_id", "carrier", "tracking_number"])
        .returning(_LEGS.c.id)
    )
    return set((await session.execute(stmt, rows)).scalars().all())


async def delete_legs(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    for start in range(0, len(ids), _CHUNK):
        await session.execute(delete(_LEGS).where(_LEGS.c.id.in_(ids[start : start + _CHUNK])))


async def update_shipments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Derived state of existing shipments: ``id`` plus ``_SHIPMENT_STATE`` per row."""
    if not rows:
        return
    if dialect(session) == "postgresql":
        arrays = _pg_arrays(_SHIPMENTS, ("id", *_SHIPMENT_STATE), rows)
        await session.execute(_pg_statements()["update_shipments"], arrays)
    else:
        await _sqlite_update(session, _SHIPMENTS, _SHIPMENT_STATE, rows)


async def update_legs(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Derived state of existing legs: ``id`` plus ``_LEG_STATE`` per row."""
    if not rows:
        return
    if dialect(session) == "postgresql":
        await session.execute(
            _pg_statements()["update_legs"], _pg_arrays(_LEGS, ("id", *_LEG_STATE), rows)
        )
    else:
        await _sqlite_update(session, _LEGS, _LEG_STATE, rows)


async def _sqlite_update(
    session: AsyncSession, table: Table, columns: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """One executemany of driver values (``_sqlite_value``), no per-row type processing."""
    convert = [_sqlite_value(table.c[c]) for c in (*columns, "id")]
    params = [tuple(f(r[c]) for f, c in zip(convert, (*columns, "id"), strict=True)) for r in rows]
    sql = f"UPDATE {table.name} SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"
    await (await session.connection()).exec_driver_sql(sql, params)


def _identity(value: Any) -> Any:
    return value


def _sqlite_value(column: Column[Any]) -> Callable[[Any], Any]:
    """How SQLAlchemy binds a column's Python value in SQLite (JSON None as NULL, as on
    PostgreSQL's array path)."""
    kind = column.type
    if isinstance(kind, JSON):
        return _json_text
    if isinstance(kind, Uuid):
        return lambda v: None if v is None else v.hex
    if isinstance(kind, UtcDateTime):
        return lambda v: None if v is None else _sqlite_time(v)
    if isinstance(kind, Boolean):
        return lambda v: None if v is None else int(v)
    return _identity


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
