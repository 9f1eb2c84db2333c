"""Merchant webhooks on the real stack (Kafka + PostgreSQL, SQL log + SQLite) with real receivers on
127.0.0.1: the consumer's outbox rows, signatures, retries, isolation and endpoint health."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from services.cli.runtime import Runtime
from services.webhooks import endpoints, handlers
from services.webhooks import events as ev
from services.webhooks.consumer import webhooks_consumer
from services.webhooks.models import WebhookDelivery, WebhookEvent
from shared.bus import OutRecord
from shared.db import transaction
from shared.schema import TOPIC_ALERTS, TOPIC_SHIPMENT_UPDATES, encode
from shared.taxonomy import Status
from tests.integration import hooks
from tests.integration.hooks import T0
from tests.integration.receiver import Receiver, always, fail_first, hang, ok


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


async def _count(rt: Runtime, model: type[WebhookEvent] | type[WebhookDelivery]) -> int:
    async with rt.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def _consume(rt: Runtime, records: int, group: str | None = None) -> None:
    loop = webhooks_consumer(rt.settings, rt.bus, rt.sessions)
    if group:
        loop.group = group
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await hooks.eventually(lambda: _processed(loop.stats.records, records, task), 30, "consumed")
    stop.set()
    await asyncio.wait_for(task, 30)


async def _processed(done: int, want: int, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()
    return done >= want


async def test_updates_on_the_bus_reach_the_receiver_signed(
    stack: Runtime, receiver: Receiver
) -> None:
    rt = hooks.tuned(stack)
    tenant, _ = await hooks.new_tenant(rt, "A")
    everything = await hooks.new_endpoint(rt, tenant, receiver.on("/all", ok))
    only_delivered = await hooks.new_endpoint(
        rt, tenant, receiver.on("/delivered", ok), event_types=[ev.DELIVERED]
    )
    shipment = uuid.uuid4()
    updates = hooks.journey(tenant, shipment)
    records = [OutRecord(str(shipment), encode(u)) for u in updates]
    await rt.bus.publish(rt.settings.topic(TOPIC_SHIPMENT_UPDATES), records)
    await _consume(rt, len(records))
    assert await _count(rt, WebhookEvent) == 4  # 3 status changes + delivered
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: hooks.all_settled(rt, everything.id), what="all delivered")
        await hooks.eventually(lambda: hooks.all_settled(rt, only_delivered.id))
    got = receiver.at("/all")
    assert Counter(r.type for r in got) == {ev.STATUS_CHANGED: 3, ev.DELIVERED: 1}
    assert [r.type for r in receiver.at("/delivered")] == [ev.DELIVERED]
    for r in got:
        payload = Webhook(everything.secret).verify(r.body, r.headers)
        assert payload["data"]["shipment_id"] == str(shipment)
        assert r.headers["User-Agent"].startswith("Throughline-Webhooks")
    # A replay of the whole topic (a new consumer group) creates nothing new.
    await _consume(rt, len(records), group="webhooks-replay")
    assert await _count(rt, WebhookEvent) == 4
    assert await _count(rt, WebhookDelivery) == 5


async def test_a_failing_then_recovering_receiver_gets_every_event_once(
    stack: Runtime, receiver: Receiver
) -> None:
    rt = hooks.tuned(stack)
    tenant, _ = await hooks.new_tenant(rt, "A")
    target = await hooks.new_endpoint(rt, tenant, receiver.on("/flaky", fail_first(2, 500)))
    for _ in range(3):
        await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4()))
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: hooks.all_settled(rt, target.id), what="recovered")
    rows = await hooks.deliveries(rt, target.id)
    assert len(rows) == 12
    requests = receiver.at("/flaky")
    assert Counter(r.msg_id for r in requests) == {str(d.event_id): 3 for d in rows}
    accepted = [r.msg_id for i, r in enumerate(requests) if _nth(requests, i) == 3]
    assert sorted(accepted) == sorted(str(d.event_id) for d in rows)  # each id accepted once
    tries = await hooks.attempts(rt, rows[0].id)
    assert [a.status_code for a in tries] == [500, 500, 200]
    assert tries[0].response_body == "not now" and tries[0].latency_ms >= 0
    assert all(d.attempt_count == 3 and d.delivered_at is not None for d in rows)


def _nth(requests: list[object], i: int) -> int:
    mine = requests[i].msg_id  # type: ignore[attr-defined]
    return sum(1 for r in requests[: i + 1] if r.msg_id == mine)  # type: ignore[attr-defined]


async def test_a_hanging_merchant_does_not_delay_another(
    stack: Runtime, receiver: Receiver
) -> None:
    rt = hooks.tuned(stack, webhook_timeout_s=10.0, webhook_endpoint_concurrency=2)
    slow_tenant, _ = await hooks.new_tenant(rt, "hangs")
    good_tenant, _ = await hooks.new_tenant(rt, "healthy")
    slow = await hooks.new_endpoint(rt, slow_tenant, receiver.on("/hang", hang))
    good = await hooks.new_endpoint(rt, good_tenant, receiver.on("/ok", ok))
    for _ in range(5):  # the hanging tenant's events come first
        await hooks.schedule(rt, hooks.journey(slow_tenant, uuid.uuid4()))
    for _ in range(5):
        await hooks.schedule(rt, hooks.journey(good_tenant, uuid.uuid4()))
    async with hooks.running_sender(rt) as sender:
        took = await hooks.eventually(lambda: hooks.all_settled(rt, good.id), 5.0, "healthy done")
        pending = [d for d in await hooks.deliveries(rt, slow.id) if d.status == "pending"]
        assert len(pending) == 20 and len(receiver.at("/hang")) == 2  # capped at 2 in flight
        assert sender.stats.per_endpoint_peak[slow.id] == 2
        await receiver.stop()  # let the hanging requests fail fast
    assert took < 3.0, f"the healthy tenant waited {took:.1f} s"
    assert len(receiver.at("/ok")) == 20


async def test_410_disables_the_endpoint_and_tells_the_tenant(
    stack: Runtime, receiver: Receiver
) -> None:
    rt = hooks.tuned(stack, webhook_endpoint_concurrency=1)
    tenant, _ = await hooks.new_tenant(rt, "A")
    gone = await hooks.new_endpoint(rt, tenant, receiver.on("/gone", always(410)))
    watcher = await hooks.new_endpoint(
        rt, tenant, receiver.on("/watch", ok), event_types=[ev.ENDPOINT_DISABLED]
    )
    await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4()))
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: _disabled(rt, gone.id), what="disabled")
        await hooks.eventually(lambda: hooks.all_settled(rt, watcher.id), what="notice sent")
    after = await hooks.endpoint(rt, gone.id)
    assert after.disabled_reason == "the endpoint answered 410 Gone"
    assert len(receiver.at("/gone")) == 1  # nothing more after the 410
    rows = await hooks.deliveries(rt, gone.id)
    assert [d.status for d in rows] == ["failed"] * 4
    assert all("410" in (d.last_error or "") for d in rows)
    (notice,) = receiver.at("/watch")
    assert notice.type == ev.ENDPOINT_DISABLED
    data = Webhook(watcher.secret).verify(notice.body, notice.headers)["data"]
    assert data["endpoint_id"] == str(gone.id) and "410" in data["reason"]


async def _disabled(rt: Runtime, endpoint_id: uuid.UUID) -> bool:
    return not (await hooks.endpoint(rt, endpoint_id)).enabled


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(stack: Runtime, receiver: Receiver, status: int) -> None:
    rt = hooks.tuned(stack)
    tenant, _ = await hooks.new_tenant(rt, "A")
    behaviour = fail_first(1, status, headers={"Retry-After": "2"})
    target = await hooks.new_endpoint(rt, tenant, receiver.on("/busy", behaviour))
    await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4())[:2])
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: hooks.all_settled(rt, target.id), what="delivered")
    first, second = receiver.at("/busy")
    assert first.msg_id == second.msg_id
    # The compressed schedule alone would retry after ~5 ms.
    assert second.at - first.at >= 1.9


async def test_redirects_are_not_followed(stack: Runtime, receiver: Receiver) -> None:
    rt = hooks.tuned(stack)
    tenant, _ = await hooks.new_tenant(rt, "A")
    receiver.on("/target", ok)

    async def redirect(_: object, __: int) -> object:
        from aiohttp import web

        return web.Response(status=302, headers={"Location": f"{receiver.base_url}/target"})

    target = await hooks.new_endpoint(rt, tenant, receiver.on("/moved", redirect))  # type: ignore[arg-type]
    await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4())[:2])
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: _attempted(rt, target.id, 3), what="retried")
    assert receiver.at("/target") == []
    (row,) = await hooks.deliveries(rt, target.id)
    assert row.status == "pending" and row.last_status_code == 302


async def _attempted(rt: Runtime, endpoint_id: uuid.UUID, n: int) -> bool:
    rows = await hooks.deliveries(rt, endpoint_id)
    return bool(rows) and all(d.attempt_count >= n for d in rows)


async def test_an_endpoint_failing_too_long_is_disabled(stack: Runtime, receiver: Receiver) -> None:
    rt = hooks.tuned(stack, webhook_disable_after_s=0.25)
    tenant, _ = await hooks.new_tenant(rt, "A")
    broken = await hooks.new_endpoint(rt, tenant, receiver.on("/broken", always(500)))
    await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4())[:2])
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: _disabled(rt, broken.id), what="disabled")
    after = await hooks.endpoint(rt, broken.id)
    assert after.disabled_reason and after.disabled_reason.startswith(
        "every delivery has failed since"
    )
    (row,) = await hooks.deliveries(rt, broken.id)
    assert row.status == "failed" and row.last_error and "endpoint disabled" in row.last_error


async def test_ssrf_is_checked_again_at_delivery(stack: Runtime, receiver: Receiver) -> None:
    # Stored while loopback was allowed; the sender runs with it forbidden.
    rt = hooks.tuned(stack, webhook_allow_loopback=False)
    tenant, _ = await hooks.new_tenant(rt, "A")
    target = await hooks.new_endpoint(rt, tenant, receiver.on("/inside", ok))
    await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4())[:2])
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: _attempted(rt, target.id, 1), what="attempted")
    (row,) = await hooks.deliveries(rt, target.id)
    assert row.status == "pending" and "127.0.0.1 is a loopback address" in (row.last_error or "")
    assert receiver.at("/inside") == []


async def test_secret_rotation_signs_with_both_during_the_overlap(
    stack: Runtime, receiver: Receiver
) -> None:
    rt = hooks.tuned(stack, webhook_secret_overlap_s=1.0)
    tenant, _ = await hooks.new_tenant(rt, "A")
    target = await hooks.new_endpoint(rt, tenant, receiver.on("/rot", ok))
    old = target.secret
    policy = handlers.Policy.from_settings(rt.settings)
    async with transaction(rt.sessions) as s:
        found = await endpoints.get_endpoint(s, tenant, target.id)
        new = (await endpoints.rotate_secret(s, found, policy, datetime.now(UTC))).secret
        await endpoints.send_test(s, found, ev.STATUS_CHANGED, datetime.now(UTC))
    async with hooks.running_sender(rt):
        await hooks.eventually(lambda: hooks.all_settled(rt, target.id))
        (during,) = receiver.at("/rot")
        assert len(during.headers["webhook-signature"].split()) == 2
        for secret in (old, new):
            assert Webhook(secret).verify(during.body, during.headers)["data"]["test"] is True
        await asyncio.sleep(1.1)
        async with transaction(rt.sessions) as s:
            found = await endpoints.get_endpoint(s, tenant, target.id)
            await endpoints.send_test(s, found, ev.DELIVERED, datetime.now(UTC))
        await hooks.eventually(lambda: _requests(receiver, "/rot", 2))
    after = receiver.at("/rot")[1]
    assert len(after.headers["webhook-signature"].split()) == 1
    Webhook(new).verify(after.body, after.headers)


async def _requests(receiver: Receiver, path: str, n: int) -> bool:
    return len(receiver.at(path)) >= n


async def test_legs_and_quiet_shipments_become_events(stack: Runtime) -> None:
    rt = hooks.tuned(stack)
    tenant, _ = await hooks.new_tenant(rt, "A")
    await hooks.new_endpoint(rt, tenant, "http://127.0.0.1:9/none")
    shipment = uuid.uuid4()
    dhl, ups = ("dhl", "1234567891"), ("ups", "1Z999AA10123456784")
    registered = hooks.shipment_update(tenant, shipment, Status.PENDING, None, legs=[dhl])
    linked = hooks.shipment_update(
        tenant, shipment, Status.IN_TRANSIT, Status.PENDING, legs=[dhl, ups], at=T0 + timedelta(1)
    )
    await hooks.schedule(rt, [registered, linked])
    await hooks.schedule(rt, [registered, linked])  # a replay: nothing new
    async with rt.sessions() as s:
        types = Counter((await s.scalars(select(WebhookEvent.type))).all())
    assert types == {ev.STATUS_CHANGED: 1, ev.LEG_ADDED: 1}
    # Staleness is the alerts service's call: an opened shipment alert on alerts.v1 becomes
    # shipment.stale (once, however often it is replayed); other changes and carrier alerts do not.
    opened = hooks.alert_change(tenant, shipment, "opened")
    records = [
        OutRecord(str(shipment), encode(m))
        for m in (
            opened,
            opened,
            hooks.alert_change(tenant, shipment, "resolved", alert_id=opened.alert_id),
            hooks.alert_change(None, None, "opened", alert_kind="carrier"),
        )
    ]
    await rt.bus.publish(rt.settings.topic(TOPIC_ALERTS), records)
    await _consume(rt, len(records))
    async with rt.sessions() as s:
        stale = (await s.scalars(select(WebhookEvent).where(WebhookEvent.type == ev.STALE))).all()
    assert len(stale) == 1 and stale[0].shipment_id == shipment
    body = orjson.loads(stale[0].body)["data"]
    assert body["alert"]["rule"] == "handoff_black_hole" and body["tracking_number"] == dhl[1]
    assert [(leg["carrier"], leg["tracking_number"]) for leg in body["legs"]] == [dhl, ups]
    assert await _count(rt, WebhookDelivery) == 3
