"""Faults at the edges the existing tests leave out (on both stacks):

- a merchant receiver whose connections are reset (TCP RST, through a ``FaultProxy``) until it
  comes back: every event reaches it exactly once, every failed try is recorded;
- a carrier sandbox too slow for the client's timeout, over real HTTP: the poll fails, backs off
  and keeps nothing, then the next poll publishes the journey once.

(500, 429/503 with Retry-After, 410 and hanging receivers are in tests/integration/
test_webhooks.py; carrier 429, 5xx and garbage in tests/integration/test_poller.py.)
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select

from services.carriers.client import DhlClient
from services.carriers.models import PollTarget, RawPayloadRow
from services.carriers.poller import Poller
from services.cli.runtime import Runtime, serve
from services.simulator.app import create_app
from services.simulator.journeys import valid_dhl_express_number
from shared.db import transaction, utcnow
from shared.schema import TOPIC_EVENTS, TrackingEvent, decode
from tests.faults.proxy import FaultProxy
from tests.faults.servers import free_port
from tests.integration import hooks
from tests.integration.conftest import stack  # noqa: F401 - the fixture, for this folder
from tests.integration.receiver import Receiver, ok
from tests.integration.test_ingest import read_topic

pytestmark = [pytest.mark.faults]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


async def test_a_receiver_resetting_connections_gets_every_event_once(
    stack: Runtime,  # noqa: F811
    receiver: Receiver,
) -> None:
    rt = hooks.tuned(stack)
    tenant, _ = await hooks.new_tenant(rt, "resets")
    url = receiver.on("/hook", ok)
    port = int(url.split(":")[2].split("/")[0])
    async with FaultProxy("127.0.0.1", port) as proxy:
        proxy.set("reset")
        target = await hooks.new_endpoint(rt, tenant, url.replace(f":{port}/", f":{proxy.port}/"))
        for _ in range(3):
            await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4()))
        network_before = _metric("throughline_webhook_attempts_total", outcome="network")
        async with hooks.running_sender(rt):

            async def reset_more_than_once() -> bool:
                rows = await hooks.deliveries(rt, target.id)
                return bool(rows) and all(d.attempt_count >= 2 for d in rows)

            await hooks.eventually(reset_more_than_once, 30, "two reset attempts per delivery")
            proxy.set("pass")
            await hooks.eventually(lambda: hooks.all_settled(rt, target.id), 30, "delivered")
    rows = await hooks.deliveries(rt, target.id)
    assert len(rows) == 12
    got = Counter(r.msg_id for r in receiver.at("/hook"))
    assert got == {str(d.event_id): 1 for d in rows}  # none lost, none twice
    for d in rows:
        tries = await hooks.attempts(rt, d.id)
        assert len(tries) == d.attempt_count >= 3
        assert all(t.status_code is None and t.error for t in tries[:-1])
        assert tries[-1].status_code == 200 and d.delivered_at is not None
    resets = sum(d.attempt_count - 1 for d in rows)
    moved = _metric("throughline_webhook_attempts_total", outcome="network") - network_before
    assert moved == resets and proxy.stats.resets >= resets


@pytest.fixture
async def live_sandbox(stack: Runtime) -> AsyncIterator[str]:  # noqa: F811
    """The carrier simulator over real HTTP (a timeout needs a real socket)."""
    port = free_port()
    stop = asyncio.Event()
    app = create_app(stack.settings)
    task = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(100):
            try:
                await http.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    try:
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_slow_carrier_times_out_backs_off_and_loses_nothing(
    stack: Runtime,  # noqa: F811
    live_sandbox: str,
) -> None:
    number = valid_dhl_express_number(21)
    async with httpx.AsyncClient(base_url=live_sandbox) as http:
        started = (utcnow() - timedelta(days=30)).isoformat()
        r = await http.post(
            "/_sim/journeys",
            json={
                "tracking_number": number,
                "journey": "dhl-express-door-to-door",
                "started_at": started,
            },
        )
        assert r.status_code == 201
        fault = {"carrier": "dhl", "mode": "slow", "count": 1, "delay_s": 3}
        assert (await http.post("/_sim/faults", json=fault)).status_code < 300
    async with transaction(stack.sessions) as s:
        s.add(PollTarget(carrier="dhl", tracking_number=number, next_poll_at=utcnow()))
    before = {
        "errors": _metric("throughline_carrier_poll_errors_total", carrier="dhl", reason="network"),
        "ok": _metric("throughline_carrier_polls_total", carrier="dhl", outcome="ok"),
    }
    async with DhlClient(live_sandbox, stack.settings.dhl_api_key, timeout=0.5) as dhl:
        poller = Poller(stack.settings, stack.bus, stack.sessions, {"dhl": dhl})
        assert await poller.poll_once() == 1
        async with stack.sessions() as s:
            target = await s.get(PollTarget, ("dhl", number))
            assert target is not None and target.failures == 1
            assert "Timeout" in (target.last_error or "")
            assert not (await s.scalars(select(RawPayloadRow))).all()  # nothing kept
        assert poller.stats.errors == 1 and poller.stats.events == 0
        async with transaction(stack.sessions) as s:  # the back-off has passed
            target = await s.get(PollTarget, ("dhl", number))
            assert target is not None and target.next_poll_at > utcnow() - timedelta(seconds=1)
            target.next_poll_at = utcnow()
        assert await poller.poll_once() == 1
    events = await read_topic(stack, stack.settings.topic(TOPIC_EVENTS), expect=11)
    ids = [
        e.event_id for e in map(decode, (r.value for r in events)) if isinstance(e, TrackingEvent)
    ]
    assert len(ids) == 11 and len(set(ids)) == 11  # published once, after the recovery
    async with stack.sessions() as s:
        assert len((await s.scalars(select(RawPayloadRow))).all()) == 1
        target = await s.get(PollTarget, ("dhl", number))
        assert target is not None and target.failures == 0
    errors = _metric("throughline_carrier_poll_errors_total", carrier="dhl", reason="network")
    assert errors - before["errors"] == 1
    assert (
        _metric("throughline_carrier_polls_total", carrier="dhl", outcome="ok") - before["ok"] == 1
    )
