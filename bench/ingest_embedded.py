"""Timeline ingest in the embedded default (SQLite file + SQL-log bus) against raw SQLite inserts.

    .venv/bin/python bench/ingest_embedded.py --events 200000 [--profile prof.txt]

Publishes the events (bench.workload) through SqlBus into a fresh, migrated SQLite file, then:

  (b) raw sqlite3 ``executemany`` of the same rows into a table created with the same DDL and
      indexes, in one transaction (and, for reference, one transaction per consumer batch);
  (c) the timeline consumer (services.timeline.consumer over SqlBus, in this one process, the
      outbox relay publishing shipment updates into the same log) until every event is stored.

Both use the pragmas of shared.db (WAL, synchronous=FULL). The file is deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from bench.breakdown import Breakdown  # noqa: E402
from bench.machine import CpuMeter, describe, rss_mib, start_profiler, stop_profiler  # noqa: E402
from bench.workload import generate  # noqa: E402
from services.cli.runtime import runtime  # noqa: E402
from services.timeline.consumer import timeline_consumer  # noqa: E402
from services.timeline.repository import event_row  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402
from shared.schema import TOPIC_EVENTS, TrackingEvent  # noqa: E402
from shared.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--shipments", type=int, default=None, help="default: events / 10")
    parser.add_argument("--order", choices=("time", "shipment"), default="time")
    parser.add_argument("--batch", type=int, default=Settings().timeline_batch)
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite file goes")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy collapsed stacks of phase (c) to this file")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    print(describe())
    workdir = Path(tempfile.mkdtemp(prefix="tl-bench-", dir=args.dir))
    path = workdir / "bench.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}", bus="sql", timeline_batch=args.batch
    )
    print(f"setup: {path}")
    try:
        await upgrade_async(settings.database_url)
        return await _phases(args, settings, path)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


async def _phases(args: argparse.Namespace, settings: Settings, path: Path) -> int:
    n = args.events
    started = time.perf_counter()
    workload = generate(n, args.shipments, order=args.order)
    records = workload.records()
    print(
        f"workload: {n} events, {len(workload.shipments)} shipments, ordered by {args.order}, "
        f"generated in {time.perf_counter() - started:.1f} s"
    )
    async with runtime(settings) as rt:
        started = time.perf_counter()
        for i in range(0, n, 5000):
            await rt.bus.publish(settings.topic(TOPIC_EVENTS), records[i : i + 5000])
        produced = time.perf_counter() - started
    print(
        f"produce (SqlBus.publish, 5000 per call): {n / produced:,.0f} events/s ({produced:.1f} s)"
    )
    del records

    columns, rows = _rows(workload.events)
    one_tx = _executemany(path, columns, rows, len(rows))
    per_batch = _executemany(path, columns, rows, args.batch)
    del rows, workload
    print(
        f"(b) raw sqlite3 executemany, one transaction: {n / one_tx:,.0f} events/s ({one_tx:.1f} s)"
    )
    print(
        f"    for reference, {args.batch} rows/transaction: {n / per_batch:,.0f} events/s "
        f"({per_batch:.1f} s)"
    )

    elapsed, meter, rss = await _consume(settings, n, args.profile, args.timeout)
    size = path.stat().st_size / 2**20  # noqa: ASYNC240 - one stat, after the clock stopped
    print(
        f"(c) timeline consumer over SqlBus, batch {args.batch}: {n / elapsed:,.0f} events/s "
        f"({elapsed:.1f} s; RSS {rss:.0f} MiB; database file {size:.0f} MiB)"
    )
    print(f"    CPU during (c): {meter.line().split(', postgres')[0]}")
    print(
        f"ratios: consumer/executemany(one transaction) {one_tx / elapsed:.3g}, "
        f"consumer/executemany({args.batch} per transaction) {per_batch / elapsed:.3g}"
    )
    print(f"goal (>= 5,000 events/s): {'met' if n / elapsed >= 5000 else 'MISSED'}")
    return 0


def _rows(events: list[TrackingEvent]) -> tuple[list[str], list[tuple[object, ...]]]:
    """The values as SQLAlchemy stores them in SQLite: hex uuids, naive UTC text, JSON text."""
    now = _sqlite_time(datetime.now(UTC))
    out = []
    for e in events:
        row = event_row(e)
        row["event_id"] = e.event_id.hex
        row["occurred_at"] = _sqlite_time(e.occurred_at) if e.occurred_at else None
        for column in ("location", "handoff"):
            if row[column] is not None:
                row[column] = orjson.dumps(row[column]).decode()
        row["ingested_at"] = now
        out.append(tuple(row.values()))
    return list(row), out


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _executemany(
    path: Path, columns: list[str], rows: list[tuple[object, ...]], per_tx: int
) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'tracking_event' AND sql IS NOT NULL"
        ).fetchall():
            conn.execute(sql.replace("tracking_event", "bench_copy"))
        insert = (
            f"INSERT INTO bench_copy ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})"
        )
        started = time.perf_counter()
        for i in range(0, len(rows), per_tx):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, rows[i : i + per_tx])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM bench_copy").fetchone()[0]
        assert stored == len(rows), f"stored {stored} of {len(rows)}"
        conn.execute("DROP TABLE bench_copy")
        return elapsed
    finally:
        conn.close()


async def _consume(
    settings: Settings, n: int, profile: Path | None, timeout: float
) -> tuple[float, CpuMeter, float]:
    meter = CpuMeter()
    breakdown = Breakdown()
    async with runtime(settings) as rt:
        loop = timeline_consumer(rt.settings, rt.bus, rt.sessions, rt.relay)
        stop = asyncio.Event()
        breakdown.install()
        breakdown.watch_sql(rt.engine)
        spy = start_profiler(profile)
        meter.start()
        started = time.perf_counter()
        task = asyncio.gather(loop.run(stop), rt.relay.run(stop))
        rss = 0.0
        try:
            while loop.stats.records < n or await _stored(rt) < n:
                if task.done():
                    task.result()
                    raise RuntimeError("the consumer stopped by itself")
                if loop.stats.dead_lettered:
                    raise RuntimeError(f"records went to the DLQ: {loop.stats.dlq_reasons}")
                if time.perf_counter() - started > timeout:
                    raise TimeoutError(f"{loop.stats.records}/{n} records in {timeout:.0f} s")
                rss = max(rss, rss_mib(os.getpid()))
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            meter.stop()
            print(breakdown.report(elapsed))
        finally:
            stop_profiler(spy)
            breakdown.uninstall()
            stop.set()
            await task
    return elapsed, meter, rss


async def _stored(rt: object) -> int:
    from sqlalchemy import func, select

    from services.timeline.models import TrackingEventRow

    async with rt.sessions() as session:  # type: ignore[attr-defined]
        return int(await session.scalar(select(func.count()).select_from(TrackingEventRow)) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
