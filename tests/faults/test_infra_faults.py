"""The broker and the database fail under a running consumer; it must recover by itself and the
stored events must be exactly the published set.

The consumer is a real process (``python -m services.cli run timeline-consumer``); the servers are
the private ones of conftest.py, never the shared ones:

- the Kafka broker is SIGKILLed mid-ingest and started again on the same port and data folder;
- PostgreSQL is stopped with ``pg_ctl stop -m immediate`` mid-ingest and started again;
- the network between the consumer and the broker, then between the consumer (and an API
  process) and the database, goes through a ``FaultProxy``: latency, a black hole, resets.

In each case, events keep being published during the fault, the consumer must never exit, and at
the end the stored event ids must equal the published ones with no duplicate, every shipment's
status must be the one derived from its events and the outbox must be empty.
THROUGHLINE_FAULT_INFRA_EVENTS sets the workload size (default 3000 events per test).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import SQLAlchemyError

from bench.workload import Workload, generate
from services.cli.runtime import runtime
from shared.bus import Bus, OutRecord
from shared.errors import RetryableError
from shared.migrate import upgrade_async
from shared.schema import TOPIC_EVENTS
from shared.settings import Settings
from tests.conftest import create_database, drop_database
from tests.faults.conftest import KafkaUnderTest
from tests.faults.proxy import FaultProxy
from tests.faults.servers import PrivatePostgres, free_port
from tests.faults.test_kill_consumer import Consumers, Report, Store, verify

pytestmark = [pytest.mark.faults]

EVENTS = int(os.environ.get("THROUGHLINE_FAULT_INFRA_EVENTS", "3000"))
DEADLINE_S = 150.0
Fault = Callable[[], Awaitable[str]]


def _env(settings: Settings) -> dict[str, str]:
    return {
        "THROUGHLINE_DATABASE_URL": settings.database_url,
        "THROUGHLINE_BUS": settings.bus,
        "THROUGHLINE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "THROUGHLINE_TOPIC_PREFIX": settings.topic_prefix,
        "THROUGHLINE_LOG_LEVEL": "WARNING",
        "THROUGHLINE_LOG_JSON": "true",  # with each record's topic, partition and offset
    }


async def _stored(store: Store, last: int) -> int:
    """The stored count, or the last one seen while the database is away."""
    try:
        return await asyncio.wait_for(store.stored(), 5)
    except (SQLAlchemyError, OSError, TimeoutError):
        return last


async def _outbox(store: Store) -> int:
    try:
        return await asyncio.wait_for(store.outbox(), 5)
    except (SQLAlchemyError, OSError, TimeoutError):
        return -1


async def _publish(bus: Bus, topic: str, records: list[OutRecord], chunk: int = 250) -> int:
    """Publish in chunks; a chunk refused while the broker is away is sent again. Returns the
    number of refusals (the broker is idempotent per producer session; the consumer dedupes)."""
    refused = 0
    for start in range(0, len(records), chunk):
        while True:
            try:
                await bus.publish(topic, records[start : start + chunk])
                break
            except RetryableError:
                refused += 1
                await asyncio.sleep(0.5)
        await asyncio.sleep(0.05)
    return refused


async def ingest_through_fault(
    consumer_settings: Settings,
    producer_settings: Settings,
    store_url: str,
    tmp_path: Path,
    fault: Fault,
    *,
    seed: int,
) -> str:
    """Half the workload, the fault once a quarter is stored (the second half is published while
    it lasts), then wait for everything; the consumer must stay up throughout."""
    workload: Workload = generate(EVENTS, seed=seed, order="shipment")
    records = workload.records()
    n = len(records)
    half = n // 2
    consumers = Consumers(_env(consumer_settings), tmp_path)
    store = Store(store_url)
    report = Report()
    deadline = time.monotonic() + DEADLINE_S
    started = time.monotonic()
    try:
        async with runtime(producer_settings) as rt:
            topic = producer_settings.topic(TOPIC_EVENTS)
            consumers.start()
            report.restarts = 1
            await _publish(rt.bus, topic, records[:half])
            stored = 0
            while (stored := await _stored(store, stored)) < n // 4:
                _alive(consumers, deadline, f"{stored}/{n} stored before the fault")
                await asyncio.sleep(0.05)
            report.kills.append(stored)
            second = asyncio.create_task(_publish(rt.bus, topic, records[half:]))
            fault_began = time.monotonic()
            what = await fault()
            fault_ended = time.monotonic()
            at_end = stored = await _stored(store, stored)
            await second
            while (stored := await _stored(store, stored)) < n or await _outbox(store) != 0:
                _alive(consumers, deadline, f"{stored}/{n} stored after the fault")
                await asyncio.sleep(0.2)
            _alive(consumers, deadline, "the end")
            caught_up = time.monotonic()
        summary = await verify(store, workload, report, seed)
    finally:
        consumers.stop()
        await store.engine.dispose()
    checked = summary.split("starts, ", 1)[-1]
    return (
        f"{what} ({fault_ended - fault_began:.0f} s, {at_end}/{n} stored when it ended, all "
        f"{caught_up - fault_ended:.0f} s later); {checked}; {time.monotonic() - started:.0f} s"
    )


def _alive(consumers: Consumers, deadline: float, what: str) -> None:
    assert consumers.proc is not None
    if consumers.proc.poll() is not None:
        pytest.fail(
            f"the consumer exited with {consumers.proc.returncode} ({what}):\n{consumers.tail()}",
            pytrace=False,
        )
    if time.monotonic() > deadline:
        pytest.fail(f"gave up after {DEADLINE_S:.0f} s: {what}\n{consumers.tail()}", pytrace=False)


def _settings(database_url: str, bootstrap: str, prefix: str) -> Settings:
    return Settings(
        database_url=database_url,
        bus="kafka",
        kafka_bootstrap=bootstrap,
        topic_prefix=prefix,
        consumer_wait_ms=100,
    )


@pytest.fixture
async def shared_pg_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh database on the shared PostgreSQL (only the broker fails in these tests)."""
    url = await create_database(pg_admin_url)
    try:
        await upgrade_async(url)
        yield url
    finally:
        await drop_database(pg_admin_url, url)


@pytest.fixture
async def private_pg_url(private_pg: PrivatePostgres) -> str:
    url = await private_pg.create_database(f"tl_fault_{uuid.uuid4().hex[:12]}")
    await upgrade_async(url)
    return url


def _prefix() -> str:
    return f"f{uuid.uuid4().hex[:10]}."


# --- the broker ----------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_broker_killed_mid_ingest_loses_nothing(
    private_kafka: KafkaUnderTest, shared_pg_url: str, tmp_path: Path
) -> None:
    broker = private_kafka.broker
    settings = _settings(shared_pg_url, broker.direct, _prefix())

    async def kill_and_restart() -> str:
        await asyncio.to_thread(broker.kill)
        await asyncio.sleep(3)  # producer and consumer both meet a dead broker
        broker.start()
        began = time.monotonic()
        await broker.wait_ready()
        return f"broker SIGKILLed, back after {time.monotonic() - began + 3:.0f} s"

    summary = await ingest_through_fault(
        settings, settings, shared_pg_url, tmp_path, kill_and_restart, seed=11
    )
    print(f"kafka kill -9: {summary}")


@pytest.mark.kafka
async def test_postgres_crashed_mid_ingest_loses_nothing(
    private_pg: PrivatePostgres, private_pg_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _settings(private_pg_url, kafka_bootstrap, _prefix())

    async def crash_and_restart() -> str:
        await asyncio.to_thread(private_pg.crash)
        await asyncio.sleep(3)
        began = time.monotonic()
        await asyncio.to_thread(private_pg.start)  # replays the WAL
        return f"postgres stopped -m immediate, back after {time.monotonic() - began + 3:.0f} s"

    try:
        summary = await ingest_through_fault(
            settings, settings, private_pg_url, tmp_path, crash_and_restart, seed=12
        )
    finally:
        await _delete_topics(kafka_bootstrap, settings.topic_prefix)
    print(f"postgres crash: {summary}")


# --- the network ---------------------------------------------------------------------------------


async def _play(proxy: FaultProxy, check: Callable[[str], Awaitable[None]] | None = None) -> str:
    """Latency, a black hole, resets, then a healthy network again."""
    proxy.set("latency", 0.2)
    await asyncio.sleep(3)
    proxy.set("blackhole")
    await asyncio.sleep(1)
    if check:
        await check("blackhole")
    await asyncio.sleep(4)
    proxy.set("reset")
    if check:
        await check("reset")
    await asyncio.sleep(2)
    proxy.set("pass")
    if check:
        await check("pass")
    return (
        f"latency 0.2 s for 3 s, black hole 5 s, resets 2 s: {proxy.stats.connections} "
        f"connections, {proxy.stats.resets} reset"
    )


@pytest.mark.postgres
async def test_network_faults_to_the_broker_lose_nothing(
    private_kafka: KafkaUnderTest, shared_pg_url: str, tmp_path: Path
) -> None:
    prefix = _prefix()
    proxy = private_kafka.proxy
    proxy.set("pass")
    consumer = _settings(shared_pg_url, private_kafka.broker.proxied, prefix)
    producer = _settings(shared_pg_url, private_kafka.broker.direct, prefix)
    summary = await ingest_through_fault(
        consumer, producer, shared_pg_url, tmp_path, lambda: _play(proxy), seed=13
    )
    print(f"consumer ⇄ broker network: {summary}")


@pytest.mark.kafka
async def test_network_faults_to_the_database_lose_nothing_and_readiness_follows(
    private_pg: PrivatePostgres, private_pg_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = _prefix()
    async with FaultProxy("127.0.0.1", private_pg.port) as proxy:
        proxied_url = private_pg_url.replace(f":{private_pg.port}/", f":{proxy.port}/")
        consumer = _settings(proxied_url, kafka_bootstrap, prefix)
        producer = _settings(private_pg_url, kafka_bootstrap, prefix)
        api = await _start_api(consumer, tmp_path)
        readiness: list[str] = []

        async def check(mode: str) -> None:
            want = 200 if mode == "pass" else 503
            got = await _readyz(api.url, want, within_s=15)
            readiness.append(f"{mode}: {got}")
            assert got == want, f"readyz answered {got} with the network in {mode}"

        try:
            await check("pass")
            summary = await ingest_through_fault(
                consumer, producer, private_pg_url, tmp_path, lambda: _play(proxy, check), seed=14
            )
        finally:
            api.stop()
            await _delete_topics(kafka_bootstrap, prefix)
    print(f"consumer/api ⇄ database network: {summary}; readyz {readiness}")


class RoleProcess(Consumers):
    """Like ``Consumers``, for any role."""

    def __init__(self, role: str, env: dict[str, str], workdir: Path):
        super().__init__(env, workdir)
        self.role = role
        self.log = workdir / f"{role}.log"

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "run", self.role],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self.proc


class _Api:
    def __init__(self, process: RoleProcess, url: str):
        self.process = process
        self.url = url

    def stop(self) -> None:
        self.process.stop()


async def _start_api(settings: Settings, tmp_path: Path) -> _Api:
    port = free_port()
    env = {**_env(settings), "THROUGHLINE_API_PORT": str(port)}
    workdir = tmp_path / "api"
    workdir.mkdir()
    api = RoleProcess("api", env, workdir)
    api.start()
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                await http.get(url)
                return _Api(api, url)
            except httpx.TransportError:
                await asyncio.sleep(0.3)
    api.stop()
    pytest.fail(f"the api did not start:\n{api.tail()}")


async def _readyz(url: str, want: int, within_s: float) -> int | None:
    """Polls /readyz until it answers ``want`` or ``within_s`` passes; returns the last answer.
    Each request may take at most 5 s: readiness must answer, not hang, when the database does."""
    deadline = time.monotonic() + within_s
    got: int | None = None
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                got = (await http.get(url)).status_code
            except httpx.TimeoutException:
                got = None
            if got == want:
                return got
            await asyncio.sleep(0.2)
    return got


async def _delete_topics(bootstrap: str, prefix: str) -> None:
    from tests.conftest import _delete_topics as delete

    await delete(bootstrap, prefix)
