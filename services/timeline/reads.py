"""The public tracking read path: one statement per lookup and the answer encoded once, as bytes.

On PostgreSQL one statement finds the shipment by any of its numbers and brings its legs and every
leg's events along (as arrays of rows), through a small asyncpg pool of its own: no ORM objects,
no transaction (a single statement reads one snapshot) and no ping per checkout. Lookups that
arrive in the same turn of the event loop (concurrent requests) share that statement, up to
``MAX_BATCH`` numbers each: fewer round trips and wake-ups per request under load, and nothing
waits on purpose. Elsewhere (SQLite, the embedded mode) the repository's queries do the same in
three steps.

Either way the answer is built by ``encode`` from plain values and is exactly what
``views.public_timeline`` and the ``TrackingOut`` schema produce (a test compares them), without
building pydantic models per event. Only the public fields are read: no tenant, merchant reference
or location field beyond city, region, country and facility.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.timeline import repository
from services.timeline.customs import CustomsState
from services.timeline.views import current_module, group_by_module, next_step

log = logging.getLogger("throughline.timeline")

_LOCATION_FIELDS = ("city", "region", "country", "facility")
POOL_SIZE = 8  # connections per API process; a lookup holds one for a single round trip

# Lookups that arrive together (concurrent requests) share one statement: one round trip and one
# plan for a batch of numbers, each answered with the earliest registered shipment holding it.
_SQL = """
WITH s AS (
    SELECT DISTINCT ON (n.number) n.number, sh.id, sh.status, sh.substatus, sh.module_status,
        sh.customs, sh.last_event_at
    FROM unnest($1::text[]) AS n(number)
    JOIN leg l ON l.tracking_number = n.number
    JOIN shipment sh ON sh.id = l.shipment_id
    ORDER BY n.number, sh.created_at
)
SELECT s.number, s.status, s.substatus, s.module_status, s.customs, s.last_event_at,
    ARRAY(
        SELECT ROW(l.position, l.carrier, l.tracking_number, l.status, l.module)
        FROM leg l WHERE l.shipment_id = s.id ORDER BY l.position
    ) AS legs,
    ARRAY(
        SELECT ROW(e.occurred_at, e.occurred_at_local, e.utc_offset, e.time_basis, e.status,
                   e.substatus, e.carrier, e.tracking_number, e.carrier_code, e.description,
                   e.location, e.module, e.sequence)
        FROM leg l
        JOIN tracking_event e ON e.tracking_number = l.tracking_number AND e.carrier = l.carrier
        WHERE l.shipment_id = s.id
    ) AS events
FROM s
"""
MAX_BATCH = 8  # measured: 64 serialises the work in one backend and was slower than 8


@dataclass(slots=True)
class PublicEventRow:
    """The public fields of a stored event, plus what ordering and grouping need."""

    occurred_at: datetime | None
    occurred_at_local: str | None
    utc_offset: str | None
    time_basis: str
    status: str
    substatus: str | None
    carrier: str
    tracking_number: str
    carrier_code: str | None
    description: str
    location: dict[str, Any] | None
    module: str | None
    sequence: int


def encode(
    number: str,
    status: str,
    substatus: str | None,
    module_status: dict[str, str] | None,
    customs: dict[str, Any] | None,
    last_event_at: datetime | None,
    legs: Sequence[tuple[int, str, str, str | None, str | None]],
    events: Sequence[PublicEventRow],
) -> bytes:
    """The ``TrackingOut`` JSON of one parcel (same fields, order and formats as pydantic's)."""
    module_status = module_status or {}
    state = CustomsState.from_dict(customs)
    body = {
        "tracking_number": number,
        "status": status,
        "substatus": substatus,
        "last_event_at": last_event_at,
        "next_step": next_step(status, substatus, current_module(module_status), state),
        "customs": {"export": state.export, "import": state.import_, "duties": state.duties},
        "legs": [
            {"position": p, "carrier": c, "tracking_number": n, "status": s, "module": m}
            for p, c, n, s, m in legs
        ],
        "modules": [
            {
                "module": module,
                "status": module_status.get(module),
                "events": [_event(e) for e in rows],
            }
            for module, rows in group_by_module(events).items()
        ],
    }
    return orjson.dumps(body, option=orjson.OPT_UTC_Z)


def _event(e: PublicEventRow) -> dict[str, Any]:
    loc = e.location or {}
    location = {k: loc.get(k) for k in _LOCATION_FIELDS}
    return {
        "occurred_at": e.occurred_at,
        "occurred_at_local": e.occurred_at_local,
        "utc_offset": e.utc_offset,
        "time_basis": e.time_basis,
        "status": e.status,
        "substatus": e.substatus,
        "carrier": e.carrier,
        "tracking_number": e.tracking_number,
        "carrier_code": e.carrier_code,
        "description": e.description,
        "location": location if any(v is not None for v in location.values()) else None,
    }


class _PgReads:
    """A few asyncpg connections for the lookup statement (closed with the engine's runtime).

    Lookups made in the same event-loop turn go out together, as one statement (at most
    ``MAX_BATCH`` numbers); nothing waits on purpose: a batch leaves on the next turn of the loop.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self._dsn = dsn
        self._size = size
        self._pool: Any = None
        self._lock = asyncio.Lock()
        self._pending: dict[str, list[asyncio.Future[Any]]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Future[None]] = set()

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    import asyncpg  # type: ignore[import-untyped]

                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=self._size,
                        reset=_no_reset,  # only single read statements run here
                        statement_cache_size=16,
                    )
        return self._pool

    async def fetch(self, number: str) -> Any:
        """The row for ``number`` (None when unknown), looked up with whatever else is waiting."""
        waiters = self._pending.get(number)
        if waiters is None:
            waiters = self._pending[number] = []
            if not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        return await future

    def _flush(self) -> None:
        """Send what is pending now, in batches of at most ``MAX_BATCH`` numbers."""
        self._scheduled = False
        pending, self._pending = self._pending, {}
        numbers = list(pending)
        for start in range(0, len(numbers), MAX_BATCH):
            batch = {n: pending[n] for n in numbers[start : start + MAX_BATCH]}
            task = asyncio.ensure_future(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: dict[str, list[asyncio.Future[Any]]]) -> None:
        try:
            rows = await self._query(list(batch))
        except BaseException as exc:
            for futures in batch.values():
                for f in futures:
                    if not f.done():
                        f.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        found = {r["number"]: r for r in rows}
        for number, futures in batch.items():
            for f in futures:
                if not f.done():
                    f.set_result(found.get(number))

    async def _query(self, numbers: list[str]) -> list[Any]:
        import asyncpg

        for attempt in (1, 2):
            pool = await self._get_pool()
            try:
                async with pool.acquire() as conn:
                    return list(await conn.fetch(_SQL, numbers))
            except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
                if attempt == 2:
                    raise
                log.warning("tracking read: connection lost, retrying once")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _no_reset(_conn: Any) -> None:
    return None


_READERS: weakref.WeakKeyDictionary[AsyncEngine, _PgReads] = weakref.WeakKeyDictionary()


def _pg_reads(engine: AsyncEngine) -> _PgReads | None:
    if engine.dialect.name != "postgresql":
        return None
    reads = _READERS.get(engine)
    if reads is None:
        url = engine.url.set(drivername="postgresql")
        reads = _PgReads(url.render_as_string(hide_password=False), POOL_SIZE)
        _READERS[engine] = reads
    return reads


async def close_reads(engine: AsyncEngine) -> None:
    """Close the lookup connections of this engine's database (when the runtime ends)."""
    reads = _READERS.pop(engine, None)
    if reads is not None:
        await reads.close()


async def tracking_json(sessions: async_sessionmaker[AsyncSession], number: str) -> bytes | None:
    """The public timeline of the parcel that has ``number`` on any leg, as JSON; None if unknown."""
    engine = sessions.kw["bind"]
    reads = _pg_reads(engine)
    if reads is not None:
        row = await reads.fetch(number)
        if row is None:
            return None
        events = [
            PublicEventRow(
                e[0],
                e[1],
                e[2],
                e[3],
                e[4],
                e[5],
                e[6],
                e[7],
                e[8],
                e[9],
                orjson.loads(e[10]) if e[10] else None,
                e[11],
                e[12],
            )  # fmt: skip
            for e in row["events"]
        ]
        return encode(
            number,
            row["status"],
            row["substatus"],
            orjson.loads(row["module_status"]) if row["module_status"] else None,
            orjson.loads(row["customs"]) if row["customs"] else None,
            row["last_event_at"],
            row["legs"],
            events,
        )
    async with sessions() as session:
        shipment = await repository.find_by_any_number(session, number)
        if shipment is None:
            return None
        keys = {(leg.carrier, leg.tracking_number) for leg in shipment.legs}
        stored = await repository.events_for_numbers(session, keys)
        events = [
            PublicEventRow(
                r.occurred_at,
                r.occurred_at_local,
                r.utc_offset,
                r.time_basis,
                r.status,
                r.substatus,
                r.carrier,
                r.tracking_number,
                r.carrier_code,
                r.description,
                r.location,
                r.module,
                r.sequence,
            )  # fmt: skip
            for rows in stored.values()
            for r in rows
        ]
        legs = [
            (leg.position, leg.carrier, leg.tracking_number, leg.status, leg.module)
            for leg in shipment.legs
        ]
        return encode(
            number,
            shipment.status,
            shipment.substatus,
            shipment.module_status,
            shipment.customs,
            shipment.last_event_at,
            legs,
            events,
        )
