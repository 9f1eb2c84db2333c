"""The public tracking read path (``reads.tracking_json``) against the pydantic view it replaced.

Both stacks: on PostgreSQL the one-statement lookup, on SQLite the repository's queries. Either way
the bytes must equal ``TrackingOut.model_dump_json(by_alias=True)`` of ``views.public_timeline`` over
the same rows, for a parcel with two legs, events without a module or an instant, and locations
holding fields the public view must not show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from services.cli.app import create_api_app
from services.cli.runtime import Runtime
from services.timeline import reads, repository
from services.timeline.handlers import RegisterShipment, record_events, register_shipment
from services.timeline.views import public_timeline
from shared.auth import create_tenant
from shared.db import transaction
from shared.schema import Handoff, Location, TrackingEvent, make_event_id
from shared.taxonomy import Module, Status, Substatus, TimeBasis

FOURPX = "4PX3000123456789CN"
IMPB = "9405803699300124287899"
T0 = datetime(2026, 3, 1, 8, 0, 0, 250000, tzinfo=UTC)  # sub-second instants must keep their digits


def ev(
    carrier: str,
    number: str,
    hours: float,
    status: Status = Status.IN_TRANSIT,
    substatus: Substatus | None = None,
    module: Module | None = None,
    *,
    instant: bool = True,
    location: Location | None = None,
    handoff: Handoff | None = None,
    description: str = "",
) -> TrackingEvent:
    local = (T0 + timedelta(hours=hours)).replace(tzinfo=None).isoformat()
    return TrackingEvent(
        event_id=make_event_id(carrier, number, f"C{hours}", local, None),
        carrier=carrier,
        tracking_number=number,
        occurred_at_local=local,
        utc_offset="+08:00" if instant else None,
        occurred_at=T0 + timedelta(hours=hours) if instant else None,
        time_basis=TimeBasis.CARRIER_OFFSET if instant else TimeBasis.UNKNOWN,
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=f"C{int(hours)}",
        description=description or f"{carrier} scan at {hours} h — Zürich",
        location=location,
        handoff=handoff,
        sequence=int(hours),
    )


async def _parcel(stack: Runtime) -> None:
    async with transaction(stack.sessions) as s:
        tenant = await create_tenant(s, "shop")
        cmd = RegisterShipment(
            tenant_id=tenant.id, tracking_number=FOURPX, carrier="4px",
            merchant_reference="SECRET-REF-77", origin_country="CN", destination_country="US",
        )  # fmt: skip
        await register_shipment(s, cmd, topic=stack.settings.topic("shipment.updates.v1"))
    handoff = Handoff(carrier="usps", tracking_number=IMPB, evidence="lastMileNo", confidence=0.95)
    personal = Location(city="Shenzhen", postal_code="518000", country="CN", text="Room 5, Li Wei")
    events = [
        ev("4px", FOURPX, 0, Status.INFO_RECEIVED, module=Module.ORIGIN,
           location=Location(postal_code="518000", text="Li Wei, 12 Road")),
        ev("4px", FOURPX, 2, substatus=Substatus.PICKED_UP, module=Module.ORIGIN, location=personal),
        ev("4px", FOURPX, 5, instant=False),  # no module, no instant: joins the module before it
        ev("4px", FOURPX, 20, substatus=Substatus.EXPORT_CUSTOMS_HELD, module=Module.INTERNATIONAL,
           location=Location(facility="Export office", region="GD")),
        ev("4px", FOURPX, 40, substatus=Substatus.HANDED_OVER, module=Module.DESTINATION,
           handoff=handoff),
        ev("usps", IMPB, 50, module=Module.DESTINATION, location=Location(city="Chicago", country="US")),
        ev("usps", IMPB, 60, Status.OUT_FOR_DELIVERY, module=Module.DESTINATION),
    ]  # fmt: skip
    async with transaction(stack.sessions) as s:
        await record_events(s, events)


async def _expected(stack: Runtime, number: str) -> bytes:
    async with stack.sessions() as s:
        shipment = await repository.find_by_any_number(s, number)
        assert shipment is not None
        keys = {(leg.carrier, leg.tracking_number) for leg in shipment.legs}
        stored = await repository.events_for_numbers(s, keys)
    rows = [r for rs in stored.values() for r in rs]
    return public_timeline(number, shipment, rows).model_dump_json(by_alias=True).encode()


@pytest.fixture
async def api(stack: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api_app(stack))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def test_tracking_json_equals_the_pydantic_view(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    await _parcel(stack)
    for number in (FOURPX, IMPB):
        got = await reads.tracking_json(stack.sessions, number)
        assert got is not None
        assert got == await _expected(stack, number)
        r = await api.get(f"/v1/tracking/{number}")
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert r.content == got

    body = orjson.loads(got)
    assert [leg["carrier"] for leg in body["legs"]] == ["4px", "usps"]
    assert body["status"] == "out_for_delivery" and body["customs"]["export"] is not None
    origin, international, destination = body["modules"]
    assert len(origin["events"]) == 3 and origin["events"][2]["occurred_at"] is None
    assert origin["events"][0]["location"] is None  # nothing public was left in it
    assert origin["events"][1]["location"] == {
        "city": "Shenzhen", "region": None, "country": "CN", "facility": None,
    }  # fmt: skip
    assert origin["events"][1]["occurred_at"] == "2026-03-01T10:00:00.250000Z"
    assert len(international["events"]) == 1 and len(destination["events"]) == 3
    text = got.decode()
    for private in ("SECRET-REF", "518000", "Li Wei", "tenant", "lastMileNo", "confidence"):
        assert private not in text


async def test_unknown_and_malformed_numbers(stack: Runtime, api: httpx.AsyncClient) -> None:
    assert await reads.tracking_json(stack.sessions, "ZZ0000000000") is None
    r = await api.get("/v1/tracking/ZZ0000000000")
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert (await api.get("/v1/tracking/%3Cscript%3E")).status_code == 422


async def test_fast_path_answers_as_the_routed_endpoint(stack: Runtime) -> None:
    """``TrackingFastPath`` (in the API app) against the plain routed ``track`` (no fast path)."""
    from fastapi import FastAPI

    from services.timeline.api import TrackingFastPath, router
    from shared.http import RateLimiter, install_error_handlers

    await _parcel(stack)
    routed = FastAPI()
    routed.state.settings, routed.state.sessions = stack.settings, stack.sessions
    install_error_handlers(routed)
    routed.include_router(router)
    fast = create_api_app(stack)
    assert TrackingFastPath in [m.cls for m in fast.user_middleware]
    for app in (routed, fast):
        app.state.public_limiter = RateLimiter(per_minute=60, burst=4)
    answers = []
    for app in (routed, fast):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            got = [
                await client.get(path)
                for path in (
                    f"/v1/tracking/{IMPB}",
                    "/v1/tracking/ZZ0000000000",
                    "/v1/tracking/%3Cb%3E",
                    f"/v1/tracking/{FOURPX.lower()}",
                    f"/v1/tracking/{IMPB}",  # the fifth in a burst of four: 429
                )
            ]
        answers.append([(r.status_code, r.headers["content-type"], r.content) for r in got])
        assert int(got[-1].headers["Retry-After"]) >= 1
    assert [a[0] for a in answers[0]] == [200, 404, 422, 200, 429]
    assert answers[0] == answers[1]


async def test_concurrent_lookups_each_get_their_own_parcel(stack: Runtime) -> None:
    """Lookups made together (one batch on PostgreSQL) answer exactly as made one by one."""
    await _parcel(stack)
    async with transaction(stack.sessions) as s:
        await record_events(s, [ev("dhl", "1234567891", 3, module=Module.ORIGIN)])
    numbers = [IMPB, "ZZ0000000000", FOURPX, "1234567891", IMPB, "ZZ0000000001"] * 20
    together = await asyncio.gather(*(reads.tracking_json(stack.sessions, n) for n in numbers))
    alone = {n: await reads.tracking_json(stack.sessions, n) for n in set(numbers)}
    assert together == [alone[n] for n in numbers]
    assert alone["ZZ0000000000"] is None and alone["1234567891"] is not None
    assert orjson.loads(alone["1234567891"])["legs"][0]["carrier"] == "dhl"
    assert alone[IMPB] is not None and alone[IMPB] != alone[FOURPX]
