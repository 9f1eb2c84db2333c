"""SIGKILL the timeline consumer at random moments while it ingests; nothing may be lost or doubled.

The consumer is a real process (``python -m services.cli run timeline-consumer``), killed with
SIGKILL at twelve random points spread over the ingest (a quarter of the kills instead at a
random time after a start) and restarted each time, while this test publishes the events.
After a last, undisturbed run the stored events must be exactly the published set, every shipment's
status must equal the status derived from its full event list, and the outbox must be empty.

Once on Kafka + PostgreSQL and once embedded, on the SQL-log bus in a SQLite file. The sizes keep
the file near three minutes at today's consumer speed (~600 events/s on 2 shared cores);
THROUGHLINE_FAULT_EVENTS=100000 runs the full-size Kafka case (3.5 minutes on its own today), and
THROUGHLINE_FAULT_SQLITE_EVENTS the embedded one. THROUGHLINE_FAULT_SEED replays a kill schedule.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.workload import Workload, generate
from services.timeline.models import Leg, Shipment, TrackingEventRow
from services.timeline.status import derive
from shared.bus import Bus
from shared.migrate import upgrade_async
from shared.outbox import OutboxRecord
from shared.schema import TOPIC_EVENTS
from shared.settings import Settings
from tests.conftest import create_database, drop_database

pytestmark = [pytest.mark.faults]

CLI = [sys.executable, "-m", "services.cli", "run", "timeline-consumer"]
KILLS = 12  # planned; at least MIN_KILLS must land while events are still missing
MIN_KILLS = 10
KAFKA_EVENTS = int(os.environ.get("THROUGHLINE_FAULT_EVENTS", "25000"))
SQLITE_EVENTS = int(os.environ.get("THROUGHLINE_FAULT_SQLITE_EVENTS", "10000"))
DEADLINE_S = float(os.environ.get("THROUGHLINE_FAULT_DEADLINE_S", "900"))


@dataclass
class Report:
    kills: list[int] = field(default_factory=list)  # stored count at each kill
    restarts: int = 0
    exits: list[int] = field(default_factory=list)  # exit codes other than our SIGKILL


class Consumers:
    """Starts consumer processes with the test's environment, one at a time; logs to one file."""

    def __init__(self, env: dict[str, str], workdir: Path):
        self.env = {**os.environ, "THROUGHLINE_LOG_JSON": "false", **env}
        self.workdir = workdir
        self.log = workdir / "consumer.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                CLI, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self.proc

    def kill(self) -> int | None:
        """SIGKILL; returns the exit code if the process had already ended by itself."""
        assert self.proc is not None
        early = self.proc.poll()
        if early is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        return early

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no consumer output)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Store:
    """Reads the consumer's database without taking SQLite's write lock."""

    def __init__(self, url: str):
        self.engine: AsyncEngine = create_async_engine(url)

    async def scalar(self, stmt: Any) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def stored(self) -> int:
        return await self.scalar(select(func.count()).select_from(TrackingEventRow))

    async def outbox(self) -> int:
        return await self.scalar(select(func.count()).select_from(OutboxRecord))

    async def rows(self, stmt: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt)).all())


async def ingest_with_kills(
    bus: Bus, settings: Settings, workload: Workload, consumers: Consumers, store: Store, seed: int
) -> Report:
    """Publish while consumers run; kill one life per kill point spread over the whole ingest."""
    rng = random.Random(seed)
    records = workload.records()
    n = len(records)
    deadline = time.monotonic() + DEADLINE_S
    report = Report()
    topic = settings.topic(TOPIC_EVENTS)
    published = 0

    async def publish_until(upto: int) -> None:
        """The producer side, in chunks, a little ahead of the consumer: a fast consumer cannot
        finish the ingest before the kill schedule has played out."""
        nonlocal published
        while published < upto:
            chunk = records[published : min(upto, published + 2000)]
            await bus.publish(topic, chunk)
            published += len(chunk)

    # Slice the ingest in KILLS + 1: one kill point at a random place in each slice but the last.
    points = [n * (i + rng.uniform(0.05, 0.95)) / (KILLS + 1) for i in range(KILLS)]
    for i, point in enumerate(points):
        consumers.start()
        report.restarts += 1
        # Published: up to half a slice past this kill point, never the whole ingest before the
        # last kill; the rest stays in the producer's hands until the consumer has been killed.
        await publish_until(min(n, int(n * (i + 1.5) / (KILLS + 1))))
        if rng.random() < 0.25:
            # Any moment: during start-up, the group join, a batch, a commit or the outbox flush.
            await asyncio.sleep(rng.uniform(0.2, 3.0))
        else:
            # Mid-ingest: once the kill point is stored, somewhere within the next batch or two.
            while await store.stored() < point and consumers.proc.poll() is None:  # type: ignore[union-attr]
                _check_deadline(deadline, f"waiting for {point:.0f} stored events", consumers)
                await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
        at_kill = await store.stored()
        early = consumers.kill()
        if early is not None:
            report.exits.append(early)
        if at_kill < n:
            report.kills.append(at_kill)
    await publish_until(n)
    consumers.start()
    report.restarts += 1
    while (stored := await store.stored()) < n or await store.outbox():
        _check_deadline(deadline, f"final run has {stored}/{n} events", consumers)
        if consumers.proc.poll() is not None:  # type: ignore[union-attr]
            pytest.fail(f"the final consumer exited with {consumers.proc.returncode}:\n"  # type: ignore[union-attr]
                        f"{consumers.tail()}")  # fmt: skip
        await asyncio.sleep(0.2)
    consumers.stop()
    return report


def _check_deadline(deadline: float, what: str, consumers: Consumers) -> None:
    if time.monotonic() > deadline:
        pytest.fail(
            f"gave up after {DEADLINE_S:.0f} s {what}; consumer output:\n{consumers.tail()}",
            pytrace=False,
        )


async def verify(store: Store, workload: Workload, report: Report, seed: int) -> str:
    expected = {e.event_id for e in workload.events}
    stored_ids = [r[0] for r in await store.rows(select(TrackingEventRow.event_id))]
    stored = set(stored_ids)
    lost, extra = expected - stored, stored - expected
    duplicated = len(stored_ids) - len(stored)
    where = f"(seed {seed}; kills at stored counts {report.kills})"
    assert not lost, f"{len(lost)} events lost {where}"
    assert not extra, f"{len(extra)} unexpected events stored {where}"
    assert duplicated == 0 and len(stored_ids) == len(expected), f"duplicates {where}"

    owners: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    stmt = select(Leg.carrier, Leg.tracking_number, Shipment.status, Shipment.substatus).join(
        Shipment, Shipment.id == Leg.shipment_id
    )
    for carrier, number, status, substatus in await store.rows(stmt):
        owners.setdefault((carrier, number), []).append((status, substatus))
    wrong = []
    for key, events in workload.shipments.items():
        truth = derive(events)
        want = (truth.status.value, truth.substatus)
        if owners.get(key) != [want]:
            wrong.append(f"{key}: stored {owners.get(key)}, derived {want}")
    assert not wrong, f"{len(wrong)} shipments wrong {where}, e.g. {wrong[:5]}"
    return (
        f"{len(report.kills)} kills during ingest (at stored counts {report.kills}), "
        f"{report.restarts} starts, "
        f"{len(expected)} events and {len(workload.shipments)} shipments checked, "
        f"0 lost, 0 duplicated"
    )


def _assert_enough_kills(report: Report, seed: int) -> None:
    assert len(report.kills) >= MIN_KILLS, (
        f"only {len(report.kills)} kills landed before the ingest finished (seed {seed}); "
        f"the consumer outran the kill schedule"
    )


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("THROUGHLINE_FAULT_SEED", str(time.time_ns() % 1_000_000)))
    print(f"kill schedule seed: {value} (THROUGHLINE_FAULT_SEED={value} replays it)")
    return value


@pytest.fixture
async def kafka_pg(
    pg_admin_url: str, kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[Settings]:
    url = await create_database(pg_admin_url)
    try:
        await upgrade_async(url)
        yield Settings(
            database_url=url,
            bus="kafka",
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
        )
    finally:
        await drop_database(pg_admin_url, url)
        await _delete_topics(kafka_bootstrap, topic_prefix)


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()


async def _run(settings: Settings, n: int, tmp_path: Path, seed: int) -> None:
    from services.cli.runtime import runtime

    started = time.monotonic()
    workload = generate(n, seed=seed % 1000, order="shipment")
    env = {
        "THROUGHLINE_DATABASE_URL": settings.database_url,
        "THROUGHLINE_BUS": settings.bus,
        "THROUGHLINE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "THROUGHLINE_TOPIC_PREFIX": settings.topic_prefix,
        "THROUGHLINE_LOG_LEVEL": "WARNING",
        # Kills land between commits: keep the batches small against the ingest (about 40 of
        # them), or a fast consumer stores everything in a handful of commits before most of the
        # schedule's kill points come up.
        "THROUGHLINE_TIMELINE_BATCH": str(max(50, n // 40)),
    }
    consumers = Consumers(env, tmp_path)
    store = Store(settings.database_url)
    try:
        async with runtime(settings) as rt:  # the producer side; creates the topics
            report = await ingest_with_kills(rt.bus, settings, workload, consumers, store, seed)
        _assert_enough_kills(report, seed)
        summary = await verify(store, workload, report, seed)
    finally:
        consumers.stop()
        await store.engine.dispose()
    print(f"{settings.bus}: {summary}; {time.monotonic() - started:.0f} s")
    unexpected = [code for code in report.exits if code != 0]
    assert not unexpected, f"consumer exited by itself with {unexpected}:\n{consumers.tail()}"


@pytest.mark.kafka
@pytest.mark.postgres
async def test_sigkilled_kafka_consumer_loses_and_duplicates_nothing(
    kafka_pg: Settings, tmp_path: Path, seed: int
) -> None:
    await _run(kafka_pg, KAFKA_EVENTS, tmp_path, seed)


async def test_sigkilled_embedded_consumer_loses_and_duplicates_nothing(
    tmp_path: Path, topic_prefix: str, seed: int
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'throughline.db'}"
    await upgrade_async(url)
    settings = Settings(database_url=url, bus="sql", topic_prefix=topic_prefix)
    await _run(settings, SQLITE_EVENTS, tmp_path, seed)
