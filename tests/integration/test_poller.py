"""The poller on both buses against the DHL sandbox: events out, carrier faults, DLQ, schedule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from services.carriers.client import DhlClient
from services.carriers.consumer import carriers_consumer
from services.carriers.models import PollQuota, PollTarget, RawPayloadRow
from services.carriers.poller import Poller
from services.cli.runtime import Runtime
from services.simulator.app import create_app
from services.simulator.journeys import valid_dhl_express_number
from shared.db import transaction, utcnow
from shared.schema import TOPIC_EVENTS, TOPIC_RAW, TrackingEvent, decode, dlq_topic
from tests.integration.test_ingest import read_topic

SIM = "http://dhl-sandbox"


@pytest.fixture
async def sandbox(stack: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, Poller]]:
    app = create_app(stack.settings)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=SIM)
    dhl = DhlClient(SIM, stack.settings.dhl_api_key, http=http)
    yield http, Poller(stack.settings, stack.bus, stack.sessions, {"dhl": dhl})
    await http.aclose()


async def _target(stack: Runtime, number: str, **fields: object) -> None:
    async with transaction(stack.sessions) as s:
        s.add(PollTarget(carrier="dhl", tracking_number=number, next_poll_at=utcnow(), **fields))


async def _get(stack: Runtime, number: str) -> PollTarget:
    async with stack.sessions() as s:
        target = await s.get(PollTarget, ("dhl", number))
        assert target is not None
        return target


async def _journey(http: httpx.AsyncClient, number: str) -> None:
    started = (utcnow() - timedelta(days=30)).isoformat()  # long ago: the whole journey is visible
    r = await http.post(
        "/_sim/journeys",
        json={
            "tracking_number": number,
            "journey": "dhl-express-door-to-door",
            "started_at": started,
        },
    )
    assert r.status_code == 201


async def test_poll_publishes_raw_and_events_and_reschedules(
    stack: Runtime, sandbox: tuple[httpx.AsyncClient, Poller]
) -> None:
    http, poller = sandbox
    number = valid_dhl_express_number(7)
    await _journey(http, number)
    await _target(stack, number)
    assert await poller.poll_once() == 1
    events = await read_topic(stack, stack.settings.topic(TOPIC_EVENTS), expect=11)
    decoded = [decode(r.value) for r in events]
    assert len(decoded) == 11 and all(isinstance(e, TrackingEvent) for e in decoded)
    assert {r.key for r in events} == {f"dhl:{number}"}
    raw = await read_topic(stack, stack.settings.topic(TOPIC_RAW), expect=1)
    assert len(raw) == 1
    async with stack.sessions() as s:
        stored = (await s.scalars(select(RawPayloadRow))).all()
    assert len(stored) == 1 and stored[0].http_status == 200
    assert {e.raw_ref for e in decoded if isinstance(e, TrackingEvent)} == {str(stored[0].id)}
    target = await _get(stack, number)
    assert target.next_poll_at > utcnow() and target.failures == 0 and target.last_polled_at


async def test_carrier_outage_backs_off_then_recovers(
    stack: Runtime, sandbox: tuple[httpx.AsyncClient, Poller]
) -> None:
    http, poller = sandbox
    number = valid_dhl_express_number(8)
    await _journey(http, number)
    await _target(stack, number)
    await http.post(
        "/_sim/faults", json={"carrier": "dhl", "mode": "429", "count": 1, "retry_after_s": 30}
    )
    await poller.poll_once()
    target = await _get(stack, number)
    assert target.failures == 1 and target.last_error
    assert target.next_poll_at >= utcnow() + timedelta(seconds=29)  # Retry-After honoured
    # A 429 is about the key, not the number: the whole carrier waits, even for due numbers.
    async with transaction(stack.sessions) as s:
        (await s.get(PollTarget, ("dhl", number))).next_poll_at = utcnow()  # type: ignore[union-attr]
    assert await poller.poll_once() == 0
    async with transaction(stack.sessions) as s:  # the Retry-After has passed
        quota = await s.get(PollQuota, "dhl")
        assert quota is not None and quota.tokens < 0
        quota.refilled_at = utcnow() - timedelta(seconds=60)
    await http.post("/_sim/faults", json={"carrier": "dhl", "mode": "5xx", "count": 1})
    await poller.poll_once()
    assert (await _get(stack, number)).failures == 2
    async with transaction(stack.sessions) as s:
        (await s.get(PollTarget, ("dhl", number))).next_poll_at = utcnow()  # type: ignore[union-attr]
    await poller.poll_once()
    target = await _get(stack, number)
    assert target.failures == 0 and target.last_error is None
    assert len(await read_topic(stack, stack.settings.topic(TOPIC_EVENTS), expect=11)) == 11


async def test_garbage_payload_goes_to_raw_dlq_with_reason(
    stack: Runtime, sandbox: tuple[httpx.AsyncClient, Poller]
) -> None:
    http, poller = sandbox
    number = valid_dhl_express_number(9)
    await _journey(http, number)
    await _target(stack, number)
    await http.post("/_sim/faults", json={"carrier": "dhl", "mode": "garbage", "count": 1})
    await poller.poll_once()
    dead = await read_topic(stack, dlq_topic(stack.settings.topic(TOPIC_RAW)), expect=1)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["dlq-reason"] == b"malformed_payload" and headers["dlq-error"]
    assert poller.stats.dead_lettered == 1
    assert (await _get(stack, number)).active  # it will be polled again


async def test_unknown_number_counts_not_found(
    stack: Runtime, sandbox: tuple[httpx.AsyncClient, Poller]
) -> None:
    _, poller = sandbox
    number = valid_dhl_express_number(10)
    await _target(stack, number)
    await poller.poll_once()
    target = await _get(stack, number)
    assert (
        target.not_found == 1 and target.failures == 0 and "not_found" in (target.last_error or "")
    )


async def test_shipment_updates_become_poll_targets(stack: Runtime) -> None:
    from services.timeline.handlers import RegisterShipment, register_shipment
    from shared.auth import create_tenant

    async with transaction(stack.sessions) as s:
        tenant = await create_tenant(s, "t")
        await register_shipment(
            s,
            RegisterShipment(tenant.id, valid_dhl_express_number(11)),
            topic=stack.settings.topic("shipment.updates.v1"),
        )
    await stack.relay.flush()
    loop = carriers_consumer(stack.settings, stack.bus, stack.sessions, {"dhl"})
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    for _ in range(200):
        if loop.stats.records:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    target = await _get(stack, valid_dhl_express_number(11))
    assert target.active and target.status == "pending"
