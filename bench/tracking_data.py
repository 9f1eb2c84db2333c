"""Bulk-loading a tracking database for read benchmarks: shipments, legs and events by COPY.

Deterministic: shipment ``i`` always gets the same numbers, carriers and journey stage, so the
numbers file and the expected answers can be made without reading the database back. Events get
random ids (as real ones look). Derived state (shipment and leg status, module status, customs,
last event) is computed with the timeline's own ``status.derive`` over each journey template, so
the stored rows look exactly like what the consumer writes.

Each shipment follows one cross-border journey: origin scans, export customs, linehaul and import
customs on the first-leg carrier's number; the last mile on a second, linked number (two in three
shipments) or on the same number.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import asyncpg
import orjson

from services.timeline.status import derive
from shared.taxonomy import Module, Status, Substatus

T0 = datetime(2024, 3, 1, tzinfo=UTC)
TENANT = uuid.UUID("00000000-0000-4000-8000-00000000be0c")

FIRST = ("4px", "yanwen", "cainiao", "yunexpress")
LAST = ("usps", "royal-mail", "la-poste")
ORIGIN_TZ, DEST_TZ = timedelta(hours=8), timedelta(hours=-5)

# (status, substatus, module, code, description, city, country, facility, on_last_mile, hours)
_STEPS: list[tuple[Any, ...]] = [
    (Status.INFO_RECEIVED, None, Module.ORIGIN, "PRE", "Shipment information received",
     "Shenzhen", "CN", None, False, 0),
    (Status.IN_TRANSIT, Substatus.PICKED_UP, Module.ORIGIN, "EMA", "Posting/collection",
     "Shenzhen", "CN", "Bao'an collection", False, 9),
    (Status.IN_TRANSIT, Substatus.ARRIVED_HUB, Module.ORIGIN, "AHO", "Arrived at sorting centre",
     "Shenzhen", "CN", "Shenzhen hub", False, 15),
    (Status.IN_TRANSIT, Substatus.DEPARTED_HUB, Module.ORIGIN, "DHO", "Departed sorting centre",
     "Shenzhen", "CN", "Shenzhen hub", False, 22),
    (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL, "EXA",
     "Presented to export customs", "Guangzhou", "CN", "Export office", False, 30),
    (Status.IN_TRANSIT, Substatus.EXPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL, "EXC",
     "Released by export customs", "Guangzhou", "CN", "Export office", False, 41),
    (Status.IN_TRANSIT, Substatus.DEPARTED_ORIGIN_COUNTRY, Module.INTERNATIONAL, "EMC",
     "Departed from outward office of exchange", "Guangzhou", "CN", None, False, 50),
    (Status.IN_TRANSIT, Substatus.ARRIVED_DESTINATION_COUNTRY, Module.INTERNATIONAL, "EMD",
     "Arrived at inward office of exchange", "Chicago", "US", "ISC Chicago", False, 75),
    (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL, "EDA",
     "Held at inward office of exchange", "Chicago", "US", "ISC Chicago", False, 80),
    (Status.IN_TRANSIT, Substatus.IMPORT_CUSTOMS_RELEASED, Module.INTERNATIONAL, "EDC",
     "Released from import customs", "Chicago", "US", "ISC Chicago", False, 96),
    (Status.IN_TRANSIT, Substatus.HANDED_OVER, Module.DESTINATION, "EMF",
     "Handed over to the delivery carrier", "Chicago", "US", None, True, 101),
    (Status.IN_TRANSIT, None, Module.DESTINATION, "T1", "Arrived at post office",
     "Springfield", "US", "Springfield post office", True, 130),
    (Status.OUT_FOR_DELIVERY, None, Module.DESTINATION, "OFD", "Out for delivery",
     "Springfield", "US", None, True, 150),
    (Status.DELIVERED, None, Module.DESTINATION, "DLV", "Delivered, in/at mailbox",
     "Springfield", "US", None, True, 156),
]  # fmt: skip
MAX_STEPS = len(_STEPS)


def first_number(i: int) -> tuple[str, str]:
    carrier = FIRST[i % len(FIRST)]
    number = {
        "4px": f"4PX3{i:012d}CN",
        "yanwen": f"UG{i:09d}YP",
        "cainiao": f"LP00{i:012d}",
        "yunexpress": f"YT{i:016d}",
    }[carrier]
    return carrier, number


HANDOVER = next(n for n, s in enumerate(_STEPS) if s[8])  # the step that opens the last mile


def has_last_mile(i: int, shipments: int, events: int) -> bool:
    """Two in three shipments change carrier for the last mile, once they got that far."""
    return i % 3 != 0 and steps_of(i, shipments, events) > HANDOVER


def last_number(i: int) -> tuple[str, str]:
    carrier = LAST[i % len(LAST)]
    number = {
        "usps": f"9400{i:018d}",
        "royal-mail": f"RM{i:09d}GB",
        "la-poste": f"6A{i:011d}",
    }[carrier]
    return carrier, number


def steps_of(i: int, shipments: int, events: int) -> int:
    """How far shipment ``i`` got; the counts add up to ``events`` over all shipments."""
    base, extra = divmod(events, shipments)
    mean = base + (1 if i < extra else 0)
    # spread around the mean (±3), in pairs that cancel, within 1..MAX_STEPS
    spread = (i // 2) % 4 - 1 if mean <= MAX_STEPS - 3 else 0
    k = mean + (spread if i % 2 == 0 else -spread)
    return max(1, min(MAX_STEPS, k))


@dataclass(frozen=True)
class Derived:
    status: str
    substatus: str | None
    module_status: str  # JSON
    customs: str  # JSON
    last_hours: int | None
    legs: tuple[tuple[str | None, str | None, str | None], ...]  # (status, substatus, module)


_DERIVED: dict[tuple[int, bool], Derived] = {}


def derived(k: int, two_legs: bool) -> Derived:
    """Derived state of a journey that got ``k`` steps in, computed once per template."""
    key = (k, two_legs)
    if key not in _DERIVED:
        rows = [
            SimpleNamespace(
                status=s[0].value, substatus=s[1].value if s[1] else None, module=s[2].value,
                occurred_at=T0 + timedelta(hours=s[9]), occurred_at_local=None, sequence=n,
                leg=1 if (two_legs and s[8]) else 0,
            )
            for n, s in enumerate(_STEPS[:k])
        ]  # fmt: skip
        d = derive(rows)
        legs = []
        for leg in (0, 1) if two_legs else (0,):
            mine = [r for r in rows if r.leg == leg]
            ld = derive(mine) if mine else None
            legs.append((ld.status.value, ld.substatus, ld.module) if ld else (None, None, None))
        _DERIVED[key] = Derived(
            d.status.value,
            d.substatus,
            orjson.dumps(d.module_status).decode(),
            orjson.dumps(d.customs.as_dict()).decode(),
            _STEPS[k - 1][9],
            tuple(legs),
        )
    return _DERIVED[key]


def rows_for(
    lo: int, hi: int, shipments: int, events: int
) -> tuple[list[Any], list[Any], list[Any]]:
    """Shipment, leg and event rows of shipments ``lo`` to ``hi``."""
    ship_rows: list[Any] = []
    leg_rows: list[Any] = []
    event_rows: list[Any] = []
    now = datetime.now(UTC)
    rand = os.urandom
    hour = timedelta(hours=1)
    for i in range(lo, hi):
        k = steps_of(i, shipments, events)
        two = has_last_mile(i, shipments, events)
        d = derived(k, two)
        start = T0 + timedelta(minutes=(i * 37) % (60 * 24 * 60))
        sid = uuid.UUID(bytes=rand(16))
        c0, n0 = first_number(i)
        numbers = [(c0, n0)]
        if two:
            numbers.append(last_number(i))
        last_at = start + d.last_hours * hour if d.last_hours is not None else None
        ship_rows.append((
            sid, TENANT, c0, n0, f"ORDER-{i:07d}", "CN", "US", d.status, d.substatus,
            d.module_status, d.customs, last_at, None, start, last_at or start,
        ))  # fmt: skip
        for pos, (carrier, number) in enumerate(numbers):
            ls, lss, lm = d.legs[pos]
            leg_rows.append((
                uuid.UUID(bytes=rand(16)), sid, pos, carrier, number,
                "registration" if pos == 0 else "handoff_field",
                None if pos == 0 else "lastMileNo", 1.0 if pos == 0 else 0.95, False,
                ls, lss, lm, start,
            ))  # fmt: skip
        for seq, s in enumerate(_STEPS[:k]):
            carrier, number = numbers[1 if (two and s[8]) else 0]
            at = start + s[9] * hour
            tz = DEST_TZ if s[6] == "US" else ORIGIN_TZ
            handoff = None
            if two and s[3] == "EMF":
                lc, ln = numbers[1]
                handoff = f'{{"carrier": "{lc}", "tracking_number": "{ln}", "confidence": 0.95}}'
            loc = {"city": s[5], "country": s[6]}
            if s[7]:
                loc["facility"] = s[7]
            event_rows.append((
                uuid.UUID(bytes=rand(16)), carrier, number, at,
                (at + tz).replace(tzinfo=None).isoformat(), "+08:00" if tz == ORIGIN_TZ else "-05:00",
                "carrier_offset", s[0].value, s[1].value if s[1] else None, s[2].value, s[3], s[4],
                orjson.dumps(loc).decode(), handoff, "poll", None, seq, now,
            ))  # fmt: skip
    return ship_rows, leg_rows, event_rows


SHIPMENT_COLUMNS = (
    "id", "tenant_id", "carrier", "tracking_number", "merchant_reference", "origin_country",
    "destination_country", "status", "substatus", "module_status", "customs", "last_event_at",
    "merged_into_id", "created_at", "updated_at",
)  # fmt: skip
LEG_COLUMNS = (
    "id", "shipment_id", "position", "carrier", "tracking_number", "opened_by", "evidence",
    "confidence", "detected", "status", "substatus", "module", "created_at",
)  # fmt: skip
EVENT_COLUMNS = (
    "event_id", "carrier", "tracking_number", "occurred_at", "occurred_at_local", "utc_offset",
    "time_basis", "status", "substatus", "module", "carrier_code", "description", "location",
    "handoff", "source", "raw_ref", "sequence", "ingested_at",
)  # fmt: skip
TABLES = ("shipment", "leg", "tracking_event")


async def _copy_range(dsn: str, lo: int, hi: int, shipments: int, events: int) -> int:
    conn = await asyncpg.connect(dsn)
    copied = 0
    try:
        for start in range(lo, hi, 10_000):
            s, legs, ev = rows_for(start, min(hi, start + 10_000), shipments, events)
            await conn.copy_records_to_table("shipment", records=s, columns=SHIPMENT_COLUMNS)
            await conn.copy_records_to_table("leg", records=legs, columns=LEG_COLUMNS)
            await conn.copy_records_to_table("tracking_event", records=ev, columns=EVENT_COLUMNS)
            copied += len(ev)
    finally:
        await conn.close()
    return copied


def copy_range(dsn: str, lo: int, hi: int, shipments: int, events: int) -> int:
    """One loader process's share (run in a process pool)."""
    return asyncio.run(_copy_range(dsn, lo, hi, shipments, events))


async def drop_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the three tables' constraints and indexes; returns the DDL that recreates them as
    they were (from the catalog, so the schema stays exactly the migrated one)."""
    names = list(TABLES)
    cons = await conn.fetch(
        """SELECT c.conrelid::regclass::text AS tbl, c.conname, c.contype::text AS contype,
                  pg_get_constraintdef(c.oid) AS def
           FROM pg_constraint c WHERE c.conrelid::regclass::text = ANY($1::text[])
             AND c.contype IN ('p', 'u', 'f')""",
        names,
    )
    idx = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
           FROM pg_index i WHERE i.indrelid::regclass::text = ANY($1::text[])
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        names,
    )
    recreate: list[str] = []
    # foreign keys first (they depend on the primary keys), recreated last
    for c in sorted(cons, key=lambda c: c["contype"] != "f"):
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
    for i in idx:
        await conn.execute(f'DROP INDEX "{i["name"]}"')
        recreate.append(i["def"])
    for c in sorted(cons, key=lambda c: c["contype"] == "f"):
        recreate.append(f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}')
    return recreate


async def load(dsn: str, shipments: int, events: int, jobs: int) -> dict[str, float]:
    """COPY everything with the indexes off, then rebuild them and analyse; returns timings."""
    from concurrent.futures import ProcessPoolExecutor

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO tenant (id, name, created_at) VALUES ($1, 'bench', now())", TENANT
        )
        recreate = await drop_indexes(conn)
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        bounds = [shipments * j // jobs for j in range(jobs + 1)]
        with ProcessPoolExecutor(jobs) as pool:
            futures = [
                loop.run_in_executor(pool, copy_range, dsn, bounds[j], bounds[j + 1], shipments,
                                     events)
                for j in range(jobs)
            ]  # fmt: skip
            copied = sum(await asyncio.gather(*futures))
        t1 = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '512MB'")
        for ddl in recreate:
            await conn.execute(ddl)
        t2 = time.perf_counter()
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        t3 = time.perf_counter()
        return {"copy_s": t1 - t0, "index_s": t2 - t1, "vacuum_s": t3 - t2, "events": copied}
    finally:
        await conn.close()
