"""The stale scan over a million active shipments on PostgreSQL, against raw baselines, in one run.

    .venv/bin/python bench/alerts_scan.py [--shipments 1000000] [--stale-share 0.05]

Loads ``--shipments`` active shipments (and one or two legs each) into a fresh database with COPY,
then times, in the same run:

  (a) raw: ``SELECT count(*)`` of the scan's candidate predicate (unfinished shipments quiet longer
      than the loosest rule) — what reading the candidates costs, nothing decided;
  (b) raw: the same count joined to each candidate's last leg (the scan's current carrier);
  (c) the first scan (services.alerts.scan): carrier health over every active shipment, rule
      selection, learned thresholds, opening the alerts and writing each to the outbox, committed;
  (d) the next scan: nothing new, the steady state of a scanner running every minute;
  (e) a scan after 1% of the alerted shipments received an event: resolving them.

It prints each time and its ratio to (a). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench import infra  # noqa: E402
from bench.machine import describe  # noqa: E402
from services.alerts.rules import base_rules  # noqa: E402
from services.alerts.scan import ScanConfig, ScanResult, _min_silence_s, scan  # noqa: E402
from shared.db import create_engine, session_factory, transaction  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402
from shared.schema import TOPIC_ALERTS  # noqa: E402

NOW = datetime.now(UTC).replace(microsecond=0)
CARRIERS = ("china-post", "4px", "yanwen", "cainiao", "dhl", "ups", "fedex", "usps", "royal-mail")
DESTINATION_POSTS = ("usps", "royal-mail", "la-poste", "australia-post", "canada-post")
LANES = (("CN", "US"), ("CN", "GB"), ("CN", "FR"), ("CN", "AU"), ("CN", "CA"), ("HK", "US"))
# (status, substatus, share): what an active parcel is doing
STATES = (
    ("pending", None, 0.03),
    ("info_received", None, 0.10),
    ("in_transit", "picked_up", 0.08),
    ("in_transit", "departed_hub", 0.20),
    ("in_transit", "departed_origin_country", 0.15),
    ("in_transit", "arrived_destination_country", 0.10),
    ("in_transit", "import_customs_presented", 0.08),
    ("exception", "import_customs_held", 0.02),
    ("in_transit", None, 0.09),
    ("out_for_delivery", None, 0.10),
    ("available_for_pickup", None, 0.05),
)
SHIPMENT_COLUMNS = (
    "id", "tenant_id", "carrier", "tracking_number", "origin_country", "destination_country",
    "status", "substatus", "module_status", "last_event_at", "created_at", "updated_at",
)  # fmt: skip
LEG_COLUMNS = (
    "id", "shipment_id", "position", "carrier", "tracking_number", "opened_by", "confidence",
    "detected", "created_at",
)  # fmt: skip


def _quiet(rng: random.Random, stale_share: float) -> timedelta:
    """Most parcels spoke within the day; a few went quiet for days."""
    roll = rng.random()
    if roll < stale_share:
        return timedelta(hours=rng.uniform(24 * 4, 24 * 15))
    if roll < 0.30:
        return timedelta(hours=rng.uniform(20, 60))
    return timedelta(hours=rng.uniform(0, 20))


def _rows(
    start: int, n: int, tenants: list[uuid.UUID], rng: random.Random, stale_share: float
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    states = [(s, sub) for s, sub, _ in STATES]
    weights = [w for _, _, w in STATES]
    shipments, legs = [], []
    for i in range(start, start + n):
        sid = uuid.uuid4()
        status, sub = rng.choices(states, weights)[0]
        carrier = rng.choice(CARRIERS)
        origin, destination = rng.choice(LANES)
        last = None if status == "pending" else NOW - _quiet(rng, stale_share)
        created = (last or NOW - _quiet(rng, stale_share)) - timedelta(days=2)
        number = f"BN{i:09d}CN"
        shipments.append(
            (sid, rng.choice(tenants), carrier, number, origin, destination, status, sub, "{}",
             last, created, created)
        )  # fmt: skip
        legs.append((uuid.uuid4(), sid, 0, carrier, number, "registration", 1.0, False, created))
        if sub in ("arrived_destination_country", "import_customs_presented") or rng.random() < 0.1:
            post = rng.choice([p for p in DESTINATION_POSTS if p != carrier])
            legs.append(
                (uuid.uuid4(), sid, 1, post, number, "destination_post", 0.9, False, created)
            )
    return shipments, legs


async def load(url: str, shipments: int, stale_share: float) -> None:
    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        tenants = [uuid.uuid4() for _ in range(20)]
        await conn.copy_records_to_table(
            "tenant",
            records=[(t, f"tenant {i}", NOW) for i, t in enumerate(tenants)],
            columns=("id", "name", "created_at"),
        )
        rng = random.Random(5)
        chunk = 100_000
        for start in range(0, shipments, chunk):
            rows, legs = _rows(start, min(chunk, shipments - start), tenants, rng, stale_share)
            await conn.copy_records_to_table("shipment", records=rows, columns=SHIPMENT_COLUMNS)
            await conn.copy_records_to_table("leg", records=legs, columns=LEG_COLUMNS)
        await conn.execute("VACUUM ANALYZE shipment")
        await conn.execute("VACUUM ANALYZE leg")
    finally:
        await conn.close()


async def raw_baselines(url: str, cutoff: datetime) -> tuple[float, float, int]:
    predicate = (
        "s.status NOT IN ('delivered', 'returned') AND s.merged_into_id IS NULL "
        "AND s.tenant_id IS NOT NULL "
        "AND (s.last_event_at < $1 OR (s.last_event_at IS NULL AND s.created_at < $1))"
    )
    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        started = time.perf_counter()
        n = await conn.fetchval(f"SELECT count(*) FROM shipment s WHERE {predicate}", cutoff)
        count_s = time.perf_counter() - started
        started = time.perf_counter()
        await conn.fetchval(
            "SELECT count(cl.carrier) FROM shipment s LEFT JOIN LATERAL (SELECT l.carrier FROM leg l"
            " WHERE l.shipment_id = s.id ORDER BY l.position DESC LIMIT 1) cl ON true"
            f" WHERE {predicate}",
            cutoff,
        )
        join_s = time.perf_counter() - started
    finally:
        await conn.close()
    return count_s, join_s, int(n)


async def timed_scan(url: str, config: ScanConfig, now: datetime) -> tuple[float, ScanResult]:
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        started = time.perf_counter()
        async with transaction(sessions) as session:
            result = await scan(session, config, now, TOPIC_ALERTS)
        return time.perf_counter() - started, result
    finally:
        await engine.dispose()


async def events_resume(url: str, share: float) -> int:
    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        # What moved is kept aside, so that --reuse can put it back.
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_moved (id uuid PRIMARY KEY, last_event_at timestamptz)"
        )
        await conn.execute(
            "INSERT INTO bench_moved SELECT s.id, s.last_event_at FROM shipment s WHERE s.id IN ("
            "SELECT shipment_id FROM alert WHERE kind = 'shipment' AND resolved_at IS NULL "
            "AND random() < $1) ON CONFLICT DO NOTHING",
            share,
        )
        status = await conn.execute(
            "UPDATE shipment SET last_event_at = $1 FROM bench_moved m WHERE m.id = shipment.id",
            NOW + timedelta(minutes=1),
        )
        return int(status.split()[-1])
    finally:
        await conn.close()


async def reset(url: str) -> None:
    """Back to the loaded state: no alerts, no outbox, the parcels (e) moved as they were; the
    clock is the one of the load."""
    global NOW
    conn = await asyncpg.connect(infra.asyncpg_dsn(url))
    try:
        NOW = await conn.fetchval("SELECT max(created_at) FROM tenant")
        if await conn.fetchval("SELECT to_regclass('bench_moved') IS NOT NULL"):
            await conn.execute(
                "UPDATE shipment SET last_event_at = m.last_event_at FROM bench_moved m "
                "WHERE m.id = shipment.id"
            )
            await conn.execute("TRUNCATE bench_moved")
        await conn.execute(
            "UPDATE shipment SET last_event_at = $1 - interval '5 days' WHERE last_event_at > $1",
            NOW,
        )
        await conn.execute("TRUNCATE alert, outbox_record, carrier_health")
        await conn.execute("VACUUM ANALYZE shipment")
        await conn.execute("VACUUM ANALYZE alert")
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=1_000_000)
    parser.add_argument("--stale-share", type=float, default=0.05)
    parser.add_argument("--keep", action="store_true", help="keep the database; print its URL")
    parser.add_argument("--reuse", metavar="URL", help="a database --keep left (alerts cleared)")
    args = parser.parse_args()
    print(describe())
    admin = infra.pg_admin_url()
    url = args.reuse or await infra.create_database(admin)
    try:
        await upgrade_async(url)
        if args.reuse:
            await reset(url)
        else:
            started = time.perf_counter()
            await load(url, args.shipments, args.stale_share)
            print(
                f"loaded {args.shipments:,} active shipments with COPY in "
                f"{time.perf_counter() - started:.1f} s"
            )
        config = ScanConfig(base=base_rules())
        cutoff = NOW - timedelta(seconds=_min_silence_s(config.base))
        await infra.checkpoint(url)
        count_s, join_s, candidates = await raw_baselines(url, cutoff)
        print(f"(a) raw count(*) of the candidates ({candidates:,}):      {count_s:7.3f} s  1.00x")
        print(
            f"(b) raw count joined to each one's last leg:        {join_s:7.3f} s  {join_s / count_s:5.2f}x"
        )
        await infra.checkpoint(url)
        first_s, first = await timed_scan(url, config, NOW)
        print(
            f"(c) first scan, {first.opened:,} alerts opened (+{first.carrier_opened} carrier): "
            f"{first_s:7.3f} s  {first_s / count_s:5.2f}x"
        )
        again_s, again = await timed_scan(url, config, NOW + timedelta(seconds=60))
        print(
            f"(d) next scan, {again.opened} opened:                     {again_s:7.3f} s  {again_s / count_s:5.2f}x"
        )
        moved = await events_resume(url, 0.01)
        await infra.checkpoint(url)
        resolve_s, resolved = await timed_scan(url, config, NOW + timedelta(seconds=120))
        print(
            f"(e) scan after {moved:,} alerted parcels spoke, {resolved.resolved:,} resolved: "
            f"{resolve_s:7.3f} s  {resolve_s / count_s:5.2f}x"
        )
    finally:
        if args.keep or args.reuse:
            print(f"kept: --reuse {url}")
        else:
            await infra.drop_database(admin, url)


if __name__ == "__main__":
    asyncio.run(main())
