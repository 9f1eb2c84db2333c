"""Legs on the real stack: hand-offs, the destination post, manifests, merges, renormalisation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from services.carriers.consumer import carriers_consumer
from services.carriers.models import PollTarget, RawPayloadRow
from services.carriers.renormalise import renormalise
from services.cli import main
from services.cli.app import create_api_app
from services.cli.runtime import Runtime
from services.timeline.consumer import timeline_consumer
from services.timeline.handlers import RegisterShipment, register_shipment
from services.timeline.models import Leg, Shipment, TrackingEventRow
from services.timeline.repository import find_by_any_number
from shared.auth import create_api_key, create_tenant
from shared.bus.runner import ConsumerLoop
from shared.db import transaction
from shared.schema import (
    TOPIC_EVENTS,
    TOPIC_SHIPMENT_UPDATES,
    Handoff,
    Location,
    ShipmentUpdate,
    TrackingEvent,
    decode,
    make_event_id,
)
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.integration.test_ingest import drain, read_topic, records

S10_CN = "RR123456785CN"  # valid S10 (check digit 5), issued by China Post
IMPB = "9405803699300124287899"  # valid USPS IMpb
FOURPX = "4PX3000123456789CN"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def ev(
    carrier: str,
    number: str,
    hours: float,
    status: Status = Status.IN_TRANSIT,
    substatus: Substatus | None = None,
    module: Module | None = None,
    *,
    code: str | None = None,
    description: str = "",
    country: str | None = None,
    handoff: Handoff | None = None,
    renormalised: bool = False,
) -> TrackingEvent:
    local = (T0 + timedelta(hours=hours)).replace(tzinfo=None).isoformat()
    return TrackingEvent(
        event_id=make_event_id(carrier, number, code or f"C{hours}", local, country),
        carrier=carrier,
        tracking_number=number,
        occurred_at_local=local,
        occurred_at=T0 + timedelta(hours=hours),
        time_basis=TimeBasis.CARRIER_UTC,
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=code,
        description=description or f"{carrier} scan at {hours} h",
        location=Location(country=country, text=country) if country else None,
        handoff=handoff,
        renormalised=renormalised,
    )


async def deliver(stack: Runtime, events: list[TrackingEvent]) -> None:
    """Publish events to tracking.events.v1 and run the timeline consumer over them."""
    await stack.bus.publish(stack.settings.topic(TOPIC_EVENTS), records(events))
    await drain(
        stack,
        timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay),
        len(events),
    )


async def register(
    stack: Runtime, number: str, carrier: str | None = None, destination: str | None = None
) -> uuid.UUID:
    async with transaction(stack.sessions) as s:
        tenant = await create_tenant(s, f"merchant-{number}")
        shipment, _ = await register_shipment(
            s,
            RegisterShipment(tenant.id, number, carrier=carrier, destination_country=destination),
            topic=stack.settings.topic(TOPIC_SHIPMENT_UPDATES),
        )
    await stack.relay.flush()
    return shipment.id


async def shipment(stack: Runtime, shipment_id: uuid.UUID) -> Shipment:
    async with stack.sessions() as s:
        found = await s.get(Shipment, shipment_id)
        assert found is not None
        return found


def legs(found: Shipment) -> list[tuple[str, str, str]]:
    return [(leg.carrier, leg.tracking_number, leg.opened_by) for leg in found.legs]


async def count(stack: Runtime, model: type[object]) -> int:
    async with stack.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def run_until(
    loop: ConsumerLoop, done: Callable[[], Awaitable[bool]], timeout: float = 30
) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while not await done():
            if task.done():
                task.result()
            assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def poll_target(stack: Runtime, carrier: str, number: str) -> PollTarget | None:
    async with stack.sessions() as s:
        return await s.get(PollTarget, (carrier, number))


# --- (a) a hand-off field -----------------------------------------------------------------------


async def test_handoff_field_opens_a_leg_and_the_new_number_is_polled(stack: Runtime) -> None:
    sid = await register(stack, FOURPX, "4px", destination="US")
    handoff = Handoff(carrier="usps", tracking_number=IMPB, evidence="lastMileNo", confidence=0.95)
    await deliver(
        stack,
        [
            ev("4px", FOURPX, 1, substatus=Substatus.PICKED_UP, country="CN"),
            ev("4px", FOURPX, 40, substatus=Substatus.HANDED_OVER, country="US", handoff=handoff),
        ],
    )
    found = await shipment(stack, sid)
    assert legs(found) == [("4px", FOURPX, "registration"), ("usps", IMPB, "handoff_field")]
    usps = found.legs[1]
    assert usps.confidence == 0.95 and "lastMileNo" in (usps.evidence or "")

    # The update announcing the leg makes the carriers service poll the new number.
    targets = carriers_consumer(stack.settings, stack.bus, stack.sessions, {"4px", "usps"})

    async def polled() -> bool:
        return await poll_target(stack, "usps", IMPB) is not None

    await run_until(targets, polled)
    target = await poll_target(stack, "usps", IMPB)
    assert target is not None and target.active and target.status == "in_transit"
    assert target.substatus == "handed_over"  # the shipment's state until the leg has its own

    # The next carrier's events join the same shipment; no tenant-less shipment appears.
    last_mile = [
        ev("usps", IMPB, 50, module=Module.DESTINATION, country="US"),
        ev("usps", IMPB, 60, Status.DELIVERED, module=Module.DESTINATION, country="US"),
    ]
    await deliver(stack, last_mile)
    await deliver(stack, last_mile)  # a replay changes nothing
    assert await count(stack, Shipment) == 1
    assert await count(stack, TrackingEventRow) == 4
    found = await shipment(stack, sid)
    assert found.status == "delivered" and len(found.legs) == 2
    assert (found.legs[1].status, found.legs[0].status) == ("delivered", "in_transit")
    async with stack.sessions() as s:
        resolved = await find_by_any_number(s, IMPB)
    assert resolved is not None and resolved.id == sid


async def test_a_handoff_added_to_a_stored_scan_opens_the_leg(stack: Runtime) -> None:
    """A carrier adds the last-mile number to a scan it reported already (same event id)."""
    sid = await register(stack, FOURPX, "4px", destination="US")
    scan = ev("4px", FOURPX, 40, substatus=Substatus.HANDED_OVER, country="US")
    await deliver(stack, [ev("4px", FOURPX, 1, substatus=Substatus.PICKED_UP, country="CN"), scan])
    assert legs(await shipment(stack, sid)) == [("4px", FOURPX, "registration")]
    status_before = (await shipment(stack, sid)).status

    handoff = Handoff(carrier="usps", tracking_number=IMPB, evidence="lastMileNo", confidence=0.9)
    again = scan.model_copy(update={"handoff": handoff})
    assert again.event_id == scan.event_id
    await deliver(stack, [again])

    assert await count(stack, TrackingEventRow) == 2  # no duplicate event
    found = await shipment(stack, sid)
    assert legs(found) == [("4px", FOURPX, "registration"), ("usps", IMPB, "handoff_field")]
    usps = found.legs[1]
    assert usps.confidence == 0.9 and "4px hand-off field (lastMileNo)" == usps.evidence
    assert found.status == status_before
    async with stack.sessions() as s:
        resolved = await find_by_any_number(s, IMPB)
        stored = await s.get(TrackingEventRow, scan.event_id)
    assert resolved is not None and resolved.id == sid
    assert stored is not None and stored.handoff is not None  # the stored scan gained it
    assert stored.handoff["tracking_number"] == IMPB

    await deliver(stack, [again])  # linking is idempotent: the leg is not opened twice
    assert await count(stack, Leg) == 2 and await count(stack, Shipment) == 1


# --- (c) the destination post for S10 -----------------------------------------------------------


async def test_s10_at_emd_opens_the_destination_post_leg(stack: Runtime) -> None:
    sid = await register(stack, S10_CN, destination="GB")  # detected: china-post
    origin = [
        ev("china-post", S10_CN, 0, substatus=Substatus.PICKED_UP, module=Module.ORIGIN, code="EMA", country="CN"),
        ev("china-post", S10_CN, 20, substatus=Substatus.DEPARTED_ORIGIN_COUNTRY, module=Module.INTERNATIONAL, code="EMC", country="CN"),
    ]  # fmt: skip
    await deliver(stack, origin)
    # Leaving through the outward office of exchange puts the item in the UPU network.
    assert legs(await shipment(stack, sid)) == [
        ("china-post", S10_CN, "registration"),
        ("upu", S10_CN, "postal_network"),
    ]
    emd = ev(
        "china-post", S10_CN, 60, substatus=Substatus.ARRIVED_DESTINATION_COUNTRY,
        module=Module.INTERNATIONAL, code="EMD", country="GB",
    )  # fmt: skip
    await deliver(stack, [emd])
    found = await shipment(stack, sid)
    assert legs(found) == [
        ("china-post", S10_CN, "registration"),
        ("upu", S10_CN, "postal_network"),
        ("royal-mail", S10_CN, "destination_post"),
    ]
    assert found.legs[2].confidence < 1 and "GB" in (found.legs[2].evidence or "")
    assert found.legs[0].detected and not found.legs[2].detected

    destination = [
        ev("royal-mail", S10_CN, 70, substatus=Substatus.IMPORT_CUSTOMS_HELD, code="EME", country="GB"),
        ev("royal-mail", S10_CN, 90, substatus=Substatus.DUTIES_PAYABLE, country="GB"),
    ]  # fmt: skip
    await deliver(stack, destination)
    assert await count(stack, Shipment) == 1
    app = create_api_app(stack)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = (await c.get(f"/v1/tracking/{S10_CN}")).json()
    assert [(leg["carrier"], leg["status"]) for leg in body["legs"]] == [
        ("china-post", "in_transit"),
        ("upu", None),  # opened, no scan from the UPU feed yet
        ("royal-mail", "in_transit"),
    ]
    # Nobody scanned export customs: the state says so rather than guessing.
    assert body["customs"] == {"export": None, "import": "held", "duties": "payable"}
    assert body["next_step"] == "Duties or taxes to pay before delivery"
    assert "evidence" not in str(body) and "confidence" not in str(body)


async def test_events_from_another_post_for_a_leg_number_join_it(stack: Runtime) -> None:
    sid = await register(stack, S10_CN, "china-post")
    await deliver(stack, [ev("upu", S10_CN, 5, code="EMB", country="CN")])
    assert await count(stack, Shipment) == 1
    assert legs(await shipment(stack, sid)) == [
        ("china-post", S10_CN, "registration"),
        ("upu", S10_CN, "same_number"),
    ]


# --- merging a tenant-less shipment -------------------------------------------------------------


async def test_a_tenantless_shipment_is_merged_when_its_number_becomes_a_leg(
    stack: Runtime,
) -> None:
    # USPS pushes scans for a number nobody registered yet: it gets a tenant-less timeline.
    await deliver(stack, [ev("usps", IMPB, 50, Status.OUT_FOR_DELIVERY, module=Module.DESTINATION)])
    async with stack.sessions() as s:
        orphan = (await s.scalars(select(Shipment).where(Shipment.tenant_id.is_(None)))).one()
    sid = await register(stack, FOURPX, "4px")
    handoff = Handoff(carrier="usps", tracking_number=IMPB, evidence="lastMileNo")
    await deliver(stack, [ev("4px", FOURPX, 40, substatus=Substatus.HANDED_OVER, handoff=handoff)])

    found = await shipment(stack, sid)
    assert legs(found) == [("4px", FOURPX, "registration"), ("usps", IMPB, "handoff_field")]
    assert found.status == "out_for_delivery"  # the earlier USPS scan counts
    retired = await shipment(stack, orphan.id)
    assert retired.merged_into_id == sid and retired.legs == []
    async with stack.sessions() as s:
        resolved = await find_by_any_number(s, IMPB)
    assert resolved is not None and resolved.id == sid


# --- (d) the merchant manifest ------------------------------------------------------------------


@pytest.fixture
async def api(stack: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api_app(stack))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def _key(stack: Runtime, name: str) -> dict[str, str]:
    async with transaction(stack.sessions) as s:
        tenant = await create_tenant(s, name)
        _, key = await create_api_key(s, tenant.id, ("merchant",))
    return {"Authorization": f"Bearer {key}"}


async def test_manifest_adds_a_leg_idempotently_and_per_tenant(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    a, b = await _key(stack, "A"), await _key(stack, "B")
    created = await api.post(
        "/v1/shipments", json={"tracking_number": FOURPX, "carrier": "4px"}, headers=a
    )
    sid = created.json()["id"]
    body = {"carrier": "usps", "tracking_number": "9405 8036 9930 0124 2878 99", "evidence": "M-1"}
    first = await api.post(f"/v1/shipments/{sid}/legs", json=body, headers=a)
    assert first.status_code == 201, first.text
    assert first.json() == {
        "position": 1, "carrier": "usps", "tracking_number": IMPB, "opened_by": "manifest",
        "evidence": "M-1", "confidence": 1.0, "detected": False, "status": None,
        "substatus": None, "module": None,
    }  # fmt: skip
    again = await api.post(f"/v1/shipments/{sid}/legs", json=body, headers=a)
    assert again.status_code == 200 and again.json()["position"] == 1

    assert (await api.post(f"/v1/shipments/{sid}/legs", json=body, headers=b)).status_code == 404
    unknown = await api.post(f"/v1/shipments/{uuid.uuid4()}/legs", json=body, headers=a)
    assert unknown.status_code == 404
    bad = await api.post(
        f"/v1/shipments/{sid}/legs", json={**body, "tracking_number": IMPB[:-1] + "0"}, headers=a
    )
    assert bad.status_code == 422 and "check digit" in bad.json()["detail"]
    pigeon = await api.post(f"/v1/shipments/{sid}/legs", json={**body, "carrier": "x"}, headers=a)
    assert pigeon.status_code == 422
    assert (await api.post(f"/v1/shipments/{sid}/legs", json=body)).status_code == 401

    out = (await api.get(f"/v1/shipments/{sid}", headers=a)).json()
    assert [leg["tracking_number"] for leg in out["legs"]] == [FOURPX, IMPB]
    tracking = (await api.get(f"/v1/tracking/{IMPB}")).json()
    assert [leg["carrier"] for leg in tracking["legs"]] == ["4px", "usps"]

    updates = await read_topic(stack, stack.settings.topic(TOPIC_SHIPMENT_UPDATES), expect=2)
    announced = [
        u for u in map(decode, (r.value for r in updates)) if isinstance(u, ShipmentUpdate)
    ]
    added = [leg for u in announced for leg in u.added_legs]
    assert [(leg.carrier, leg.tracking_number) for leg in added] == [
        ("4px", FOURPX),
        ("usps", IMPB),
    ]


# --- renormalisation ----------------------------------------------------------------------------


async def test_a_renormalised_event_corrects_the_stored_one_idempotently(stack: Runtime) -> None:
    number = "1234567891"
    sid = await register(stack, number, "dhl")
    wrong = ev("dhl", number, 5, code="CD", description="Clearance delay", country="DE")
    await deliver(stack, [wrong])
    assert (await shipment(stack, sid)).status == "in_transit"
    updates_topic = stack.settings.topic(TOPIC_SHIPMENT_UPDATES)
    published = len(await read_topic(stack, updates_topic, expect=2))  # registration, first scan
    assert published == 2

    fixed = wrong.model_copy(
        update={
            "status": Status.EXCEPTION,
            "substatus": Substatus.IMPORT_CUSTOMS_HELD,
            "module": Module.INTERNATIONAL,
            "renormalised": True,
        }
    )
    assert fixed.event_id == wrong.event_id
    await deliver(stack, [fixed])
    found = await shipment(stack, sid)
    assert (found.status, found.substatus) == ("exception", "import_customs_held")
    assert found.customs == {"export": None, "import": "held", "duties": None}
    async with stack.sessions() as s:
        row = await s.get(TrackingEventRow, wrong.event_id)
    assert row is not None and row.status == "exception" and row.renormalised_at is not None
    assert len(await read_topic(stack, updates_topic, expect=3)) == 3  # the correction

    await deliver(stack, [fixed, wrong])  # a replay, and the old mapping re-sent by a poll
    assert await count(stack, TrackingEventRow) == 1
    assert (await shipment(stack, sid)).status == "exception"
    assert len(await read_topic(stack, updates_topic, expect=4, timeout=3)) == 3


async def test_renormalise_reparses_stored_payloads(
    stack: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.carriers.adapters import ADAPTERS

    body = (FIXTURES / "dhl" / "express_cn_de.json").read_bytes()
    number = "1234567891"
    sid = await register(stack, number, "dhl")
    raw_id = uuid.uuid4()
    async with transaction(stack.sessions) as s:
        s.add(
            RawPayloadRow(
                id=raw_id, carrier="dhl", tracking_numbers=[number], source="poll",
                http_status=200, content_type="application/json", body=body,
            )
        )  # fmt: skip
    today = ADAPTERS["dhl"].parse(body, requested=number, raw_ref=str(raw_id)).events
    # What an older mapping stored: the same scans, every one "in transit" without details.
    old = [
        e.model_copy(update={"status": Status.IN_TRANSIT, "substatus": None, "module": None})
        for e in today
    ]
    await deliver(stack, old)
    assert (await shipment(stack, sid)).status == "in_transit"

    stats = await renormalise(stack.settings, stack.bus, stack.sessions, carrier="dhl")
    assert (stats.payloads, stats.events, stats.skipped) == (1, len(today), 0)
    await drain(
        stack, timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay), len(today)
    )
    async with stack.sessions() as s:
        rows = {r.event_id: r for r in await s.scalars(select(TrackingEventRow))}
    assert len(rows) == len(today)
    for event in today:
        row = rows[event.event_id]
        assert (row.status, row.substatus, row.module) == (
            event.status.value,
            event.substatus.value if event.substatus else None,
            event.module.value if event.module else None,
        )
    corrected = await shipment(stack, sid)
    assert corrected.status == "delivered"

    # Again, through the command line: nothing changes the second time.
    env = {
        "THROUGHLINE_DATABASE_URL": stack.settings.database_url,
        "THROUGHLINE_BUS": stack.settings.bus,
        "THROUGHLINE_KAFKA_BOOTSTRAP": stack.settings.kafka_bootstrap,
        "THROUGHLINE_TOPIC_PREFIX": stack.settings.topic_prefix,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert await asyncio.to_thread(main, ["renormalise", "--carrier", "dhl", "--since", since]) == 0
    await drain(
        stack, timeline_consumer(stack.settings, stack.bus, stack.sessions, stack.relay), len(today)
    )
    assert await count(stack, TrackingEventRow) == len(today)
    again = await shipment(stack, sid)
    assert (again.status, again.updated_at) == (corrected.status, corrected.updated_at)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await asyncio.to_thread(main, ["renormalise", "--since", future]) == 0
    assert await asyncio.to_thread(main, ["renormalise", "--carrier", "pigeon"]) == 2
    assert await count(stack, Leg) == 1
