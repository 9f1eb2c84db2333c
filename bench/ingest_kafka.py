"""Timeline ingest on Kafka + PostgreSQL against raw baselines, in one run.

    .venv/bin/python bench/ingest_kafka.py --events 200000 [--profile prof.txt]

Generates the events (bench.workload) into a fresh topic (random prefix) on the local Kafka, then:

  (a) raw aiokafka: a consumer group fetches every record and decodes nothing;
  (b) raw asyncpg COPY of the same rows into a table indexed like ``tracking_event``, one
      transaction per consumer batch;
  (c) the timeline consumer (services.timeline.consumer over the real KafkaBus and PostgreSQL, in
      this one process, with the outbox relay publishing shipment updates) until every event is
      stored.

and prints events/s for each and the ratios. The database is created fresh, migrated with
shared.migrate, and dropped at the end with the topics (``--keep`` keeps both).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench import infra  # noqa: E402
from bench.breakdown import Breakdown  # noqa: E402
from bench.machine import CpuMeter, describe, rss_mib, start_profiler, stop_profiler  # noqa: E402
from bench.workload import generate  # noqa: E402
from services.cli.runtime import runtime  # noqa: E402
from services.timeline.consumer import timeline_consumer  # noqa: E402
from shared.migrate import upgrade_async  # noqa: E402
from shared.schema import ALL_TOPICS, TOPIC_EVENTS, TOPIC_SHIPMENT_UPDATES  # noqa: E402
from shared.settings import Settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--shipments", type=int, default=None, help="default: events / 10")
    parser.add_argument("--order", choices=("time", "shipment"), default="time",
                        help="interleave shipments by instant (default) or keep each together")  # fmt: skip
    parser.add_argument("--batch", type=int, default=Settings().timeline_batch)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy collapsed stacks of phase (c) to this file")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the database and topics")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up on (c) after this")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    return asyncio.run(run(args))


async def run(args: argparse.Namespace) -> int:
    print(describe())
    admin_url, bootstrap = infra.pg_admin_url(), infra.kafka_bootstrap()
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    url = await infra.create_database(admin_url)
    await upgrade_async(url)
    settings = Settings(
        database_url=url,
        bus="kafka",
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        topic_partitions=args.partitions,
        timeline_batch=args.batch,
    )
    topic = settings.topic(TOPIC_EVENTS)
    print(f"setup: database {url.rsplit('/', 1)[-1]}, topic {topic} ({args.partitions} partitions)")
    try:
        return await _phases(args, settings, bootstrap)
    finally:
        if not args.keep:
            await infra.drop_database(admin_url, url)
            await infra.delete_topics(bootstrap, prefix)


async def _phases(args: argparse.Namespace, settings: Settings, bootstrap: str) -> int:
    n, topic = args.events, settings.topic(TOPIC_EVENTS)
    started = time.perf_counter()
    workload = generate(n, args.shipments, order=args.order)
    records = workload.records()
    size = sum(len(r.value) for r in records) / n
    print(
        f"workload: {n} events, {len(workload.shipments)} shipments, {size:.0f} bytes/event, "
        f"ordered by {args.order}, "
        f"generated in {time.perf_counter() - started:.1f} s"
    )
    async with runtime(settings):  # creates every topic and its .dlq twin
        pass
    produced = await infra.produce(bootstrap, topic, records)
    print(f"produce (acks=all, idempotent): {n / produced:,.0f} events/s ({produced:.1f} s)")
    del records

    raw = await infra.raw_consume(bootstrap, topic, n, args.batch)
    print(f"(a) raw aiokafka consume, decode nothing: {n / raw:,.0f} events/s ({raw:.1f} s)")

    rows = infra.copy_rows(workload.events)
    copy_s = await infra.copy_baseline(settings.database_url, rows, args.batch)
    del rows
    print(
        f"(b) raw asyncpg COPY, {args.batch} rows/transaction, same indexes: "
        f"{n / copy_s:,.0f} events/s ({copy_s:.1f} s)"
    )
    del workload

    await infra.checkpoint(settings.database_url)
    consumer_s, first_s, meter, rss = await _consume(settings, n, args.profile, args.timeout)
    updates = await infra.topic_size(bootstrap, settings.topic(TOPIC_SHIPMENT_UPDATES))
    print(
        f"(c) timeline consumer, 1 process, batch {args.batch}: {n / consumer_s:,.0f} events/s "
        f"({consumer_s:.1f} s; first batch stored after {first_s:.1f} s; "
        f"{updates} shipment updates published; RSS {rss:.0f} MiB)"
    )
    print(f"    CPU during (c): {meter.line()}")
    slower = max(raw, copy_s)
    print(
        f"ratios: consumer/raw-consume {raw / consumer_s:.3g}, consumer/COPY {copy_s / consumer_s:.3g},"
        f" consumer/slower baseline {slower / consumer_s:.3g}"
    )
    goal = n / consumer_s >= 25_000 and slower / consumer_s >= 0.5
    print(
        f"goal (>= 25,000 events/s and >= 0.5 x the slower baseline): {'met' if goal else 'MISSED'}"
    )
    return 0


async def _consume(
    settings: Settings, n: int, profile: Path | None, timeout: float
) -> tuple[float, float, CpuMeter, float]:
    """Run the consumer and the outbox sweeper until ``n`` events are stored."""
    meter = CpuMeter()
    breakdown = Breakdown()
    async with runtime(settings) as rt:
        await rt.bus.create_topics([settings.topic(t) for t in ALL_TOPICS])
        loop = timeline_consumer(rt.settings, rt.bus, rt.sessions, rt.relay)
        stop = asyncio.Event()
        breakdown.install()
        breakdown.watch_sql(rt.engine)
        spy = start_profiler(profile)
        meter.start()
        started = time.perf_counter()
        task = asyncio.gather(loop.run(stop), rt.relay.run(stop))
        first = 0.0
        rss = 0.0
        check = await asyncpg.connect(infra.asyncpg_dsn(settings.database_url))
        try:
            while True:
                if task.done():
                    task.result()
                    raise RuntimeError("the consumer stopped by itself")
                if loop.stats.dead_lettered:
                    raise RuntimeError(f"records went to the DLQ: {loop.stats.dlq_reasons}")
                if time.perf_counter() - started > timeout:
                    raise TimeoutError(f"{loop.stats.records}/{n} records in {timeout:.0f} s")
                if not first and loop.stats.records:
                    first = time.perf_counter() - started
                if loop.stats.records >= n and await infra.count_events(check) >= n:
                    break
                rss = max(rss, rss_mib(os.getpid()))
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            meter.stop()
            print(breakdown.report(elapsed))
        finally:
            await check.close()
            stop_profiler(spy)
            breakdown.uninstall()
            stop.set()
            await task
    return elapsed, first, meter, rss


if __name__ == "__main__":
    raise SystemExit(main())
