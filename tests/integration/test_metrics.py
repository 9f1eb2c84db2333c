"""Prometheus /metrics: scraped from running roles after real work, the counters must have moved.

- A real ``throughline run timeline-consumer`` process (both stacks) with ``metrics_port`` set:
  after it ingests a workload and a record it cannot decode, its /metrics says how many records
  and events it committed, one DLQ record, and a lag of zero on every partition it owns.
- The API app's own /metrics counts requests by route template and reads the open alerts.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.workload import generate
from services.cli.app import create_api_app
from services.cli.runtime import Runtime
from shared.bus import OutRecord
from shared.db import utcnow
from shared.schema import TOPIC_EVENTS
from tests.integration.alerting import new_alert


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def series(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    want = set(labels.items())
    return {ls: v for (n, ls), v in samples.items() if n == name and want <= ls}


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def role_env(settings: object, **extra: str) -> dict[str, str]:
    s = settings
    return {
        **os.environ,
        "THROUGHLINE_DATABASE_URL": s.database_url,  # type: ignore[attr-defined]
        "THROUGHLINE_BUS": s.bus,  # type: ignore[attr-defined]
        "THROUGHLINE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,  # type: ignore[attr-defined]
        "THROUGHLINE_TOPIC_PREFIX": s.topic_prefix,  # type: ignore[attr-defined]
        "THROUGHLINE_LOG_LEVEL": "WARNING",
        **extra,
    }


def start_role(role: str, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", role],
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
async def consumer_process(stack: Runtime, tmp_path: Path) -> AsyncIterator[str]:
    """A timeline-consumer process serving /metrics; yields the metrics URL."""
    port = free_port()
    log = tmp_path / "consumer.log"
    env = role_env(stack.settings, THROUGHLINE_METRICS_PORT=str(port))
    proc = start_role("timeline-consumer", env, tmp_path, log)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.returncode not in (0, -15):
            print(log.read_text(errors="replace")[-3000:])


async def test_a_consumer_process_reports_its_work(stack: Runtime, consumer_process: str) -> None:
    workload = generate(600, seed=7, order="shipment")
    topic = stack.settings.topic(TOPIC_EVENTS)
    await stack.bus.publish(topic, workload.records())
    await stack.bus.publish(topic, [OutRecord("bad", b"{not json")])
    total = len(workload.events) + 1

    deadline = time.monotonic() + 90
    samples: Samples = {}
    while time.monotonic() < deadline:
        try:
            samples = await scrape(consumer_process)
        except httpx.TransportError:  # not listening yet
            await asyncio.sleep(0.3)
            continue
        done = value(samples, "throughline_consumer_records_total", group="timeline")
        lags = series(samples, "throughline_consumer_lag", group="timeline", topic=topic)
        if done >= total and lags and not any(lags.values()):
            break
        await asyncio.sleep(0.3)
    else:
        pytest.fail(f"the consumer's metrics never settled: {sorted(samples.items())[:40]}")

    assert (
        value(samples, "throughline_consumer_records_total", group="timeline", topic=topic) == total
    )
    assert value(samples, "throughline_events_ingested_total", group="timeline") == len(
        workload.events
    )
    assert (
        value(
            samples,
            "throughline_dlq_records_total",
            group="timeline",
            topic=topic,
            reason="invalid_record",
        )
        == 1
    )
    assert value(samples, "throughline_consumer_batch_seconds_count", group="timeline") >= 1
    lags = series(samples, "throughline_consumer_lag", group="timeline", topic=topic)
    partitions = {dict(ls)["partition"] for ls in lags}
    want = {"0"} if stack.settings.bus == "sql" else {"0", "1", "2", "3"}
    assert partitions == want and set(lags.values()) == {0.0}


async def test_the_api_counts_requests_by_route_and_reads_open_alerts(stack: Runtime) -> None:
    app = create_api_app(stack)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        before = parse((await http.get("/metrics")).text)
        for number in ("1234567891", "1234567892", "1234567893"):
            assert (await http.get(f"/v1/tracking/{number}")).status_code == 404
        assert (await http.get("/healthz")).status_code == 200
        # Two open alerts and one resolved, written as the scan writes them.
        await new_alert(stack, None)
        await new_alert(stack, None, rule_key="linehaul")
        await new_alert(
            stack, None, rule_key="out_for_delivery", state="resolved", resolved_at=utcnow()
        )
        r = await http.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    after = parse(r.text)
    route = {"method": "GET", "route": "/v1/tracking/{tracking_number}", "status": "404"}
    moved = value(after, "throughline_http_requests_total", **route) - value(
        before, "throughline_http_requests_total", **route
    )
    assert moved == 3
    assert not series(after, "throughline_http_requests_total", route="/v1/tracking/1234567891")
    assert value(after, "throughline_alerts_open") == 2
