"""The DHL sandbox: contract shape, accelerated journeys, faults, check digits."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.carriers.adapters.dhl import DhlAdapter
from services.simulator.app import NOT_FOUND_TITLE, create_app
from services.simulator.journeys import (
    JOURNEYS,
    is_valid_dhl_express_number,
    render_shipment,
    valid_dhl_express_number,
)
from shared.settings import Settings
from shared.taxonomy import Status, Substatus

KEY = "sim-key"
HEADERS = {"DHL-API-Key": KEY}
START = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)
LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")  # no offset, no Z


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(dhl_api_key=KEY, simulator_speed=3600.0), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        yield client


async def start(sim: httpx.AsyncClient, number: str, journey: str, **extra: Any) -> dict[str, Any]:
    response = await sim.post(
        "/_sim/journeys", json={"tracking_number": number, "journey": journey, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def track(sim: httpx.AsyncClient, number: str, **params: str) -> httpx.Response:
    return await sim.get(
        "/track/shipments", params={"trackingNumber": number, **params}, headers=HEADERS
    )


async def test_events_appear_over_accelerated_time(
    sim: httpx.AsyncClient, clock: FakeClock
) -> None:
    number = valid_dhl_express_number(10)
    await start(sim, number, "dhl-express-door-to-door")
    first = (await track(sim, number)).json()["shipments"][0]
    assert [e["statusCode"] for e in first["events"]] == ["pre-transit"]
    clock.advance(seconds=3)  # 3 journey hours at 3600x
    assert len((await track(sim, number)).json()["shipments"][0]["events"]) == 2
    clock.advance(seconds=2.9)
    assert len((await track(sim, number)).json()["shipments"][0]["events"]) == 2
    clock.advance(seconds=1000)
    shipment = (await track(sim, number)).json()["shipments"][0]
    assert len(shipment["events"]) == len(JOURNEYS["dhl-express-door-to-door"].steps)
    assert shipment["status"]["statusCode"] == "delivered"


async def test_per_journey_speed(sim: httpx.AsyncClient, clock: FakeClock) -> None:
    await start(sim, "SLOW1", "dhl-failed-attempt", speed=60.0)
    clock.advance(seconds=121)  # two journey hours and a bit
    assert len((await track(sim, "SLOW1")).json()["shipments"][0]["events"]) == 2


async def test_contract_shape_newest_first_local_times(
    sim: httpx.AsyncClient, clock: FakeClock
) -> None:
    number = valid_dhl_express_number(11)
    await start(sim, number, "dhl-express-door-to-door")
    clock.advance(hours=1)
    response = await track(sim, number)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"shipments", "possibleAdditionalShipmentsUrl"}
    (shipment,) = body["shipments"]
    assert {"id", "service", "origin", "destination", "status", "details", "events"} <= set(
        shipment
    )
    assert shipment["id"] == number and shipment["service"] == "express"
    steps = JOURNEYS["dhl-express-door-to-door"].steps
    assert [e["status"] for e in shipment["events"]] == [s.status for s in reversed(steps)]
    assert all(LOCAL.match(e["timestamp"]) for e in shipment["events"])
    # Timestamps are laid out so the journey ends at its real start (08:00Z): every revealed
    # event lies in the past. The delivery reads Berlin time (CET), the first scan Shenzhen's.
    assert shipment["events"][0]["timestamp"] == "2025-03-10T09:00:00"
    assert shipment["status"]["timestamp"] == "2025-03-10T08:00:00Z"
    assert shipment["events"][-1]["timestamp"] == "2025-03-08T04:00:00"
    assert shipment["details"]["references"]["type"] == "customer-reference"


async def test_ecommerce_journey_has_the_real_quirks(
    sim: httpx.AsyncClient, clock: FakeClock
) -> None:
    await start(sim, "GM605112270084510000", "dhl-ecommerce-unknown-scans")
    clock.advance(hours=1)
    shipment = (await track(sim, "GM605112270084510000")).json()["shipments"][0]
    events = shipment["events"]
    assert any(e["statusCode"] == "unknown" and "description" not in e for e in events)
    assert any("location" not in e for e in events)
    heathrow = [
        e["location"]["address"]
        for e in events
        if e.get("location", {}).get("address", {}).get("postalCode") == "HEATHROW"
    ]
    assert heathrow and heathrow[0]["addressLocality"] == "HEATHROW, GB"
    assert isinstance(shipment["details"]["references"], list)
    codes = [e["statusCode"] for e in reversed(events)]
    assert codes.index("pre-transit", 1) > codes.index("transit")  # late pre-transit scan


@pytest.mark.parametrize("name", sorted(JOURNEYS))
async def test_every_journey_parses_cleanly(
    sim: httpx.AsyncClient, clock: FakeClock, name: str
) -> None:
    number = valid_dhl_express_number(sorted(JOURNEYS).index(name))
    await start(sim, number, name)
    clock.advance(hours=1)
    result = DhlAdapter().parse((await track(sim, number)).content, requested=number)
    assert result.errors == []
    assert len(result.events) == len(JOURNEYS[name].steps)
    assert [e.sequence for e in result.events] == list(range(len(result.events)))
    assert result.events[-1].status is Status.DELIVERED
    assert all("MUSTERMANN" not in e.description for e in result.events)  # signatory redacted


async def test_customs_hold_and_failed_attempt_journeys(
    sim: httpx.AsyncClient, clock: FakeClock
) -> None:
    await start(sim, "HOLD1", "dhl-customs-hold")
    await start(sim, "FAIL1", "dhl-failed-attempt")
    clock.advance(hours=1)
    hold = DhlAdapter().parse((await track(sim, "HOLD1")).content).events
    subs = [e.substatus for e in hold]
    assert subs.index(Substatus.IMPORT_CUSTOMS_HELD) < subs.index(Substatus.IMPORT_CUSTOMS_RELEASED)
    failed = [e.status for e in DhlAdapter().parse((await track(sim, "FAIL1")).content).events]
    assert failed.index(Status.FAILED_ATTEMPT) < failed.index(Status.DELIVERED)


def test_nothing_before_the_first_step() -> None:
    journey = JOURNEYS["dhl-customs-hold"]
    assert render_shipment("X", journey, START, timedelta(seconds=-1)) is None
    assert render_shipment("X", journey, START, timedelta(0)) is not None


async def test_unknown_number_is_a_404_problem(sim: httpx.AsyncClient) -> None:
    response = await track(sim, "0000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == NOT_FOUND_TITLE
    assert response.json()["status"] == 404


async def test_service_filter(sim: httpx.AsyncClient) -> None:
    await start(sim, "SVC1", "dhl-customs-hold")
    assert (await track(sim, "SVC1", service="express")).status_code == 200
    assert (await track(sim, "SVC1", service="parcel-de")).status_code == 404


@pytest.mark.parametrize("headers", [{}, {"DHL-API-Key": "nope"}])
async def test_auth_required(sim: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await sim.get("/track/shipments", params={"trackingNumber": "1"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Unauthorized"


async def test_missing_tracking_number_is_400(sim: httpx.AsyncClient) -> None:
    response = await sim.get("/track/shipments", headers=HEADERS)
    assert response.status_code == 400


async def test_control_api_validation_and_listing(sim: httpx.AsyncClient, clock: FakeClock) -> None:
    bad = await sim.post("/_sim/journeys", json={"tracking_number": "A1", "journey": "nope"})
    assert bad.status_code == 422
    bad = await sim.post(
        "/_sim/journeys", json={"tracking_number": "a b", "journey": "dhl-customs-hold"}
    )
    assert bad.status_code == 422
    await start(sim, "LIST1", "dhl-customs-hold")
    clock.advance(seconds=9)
    listing = (await sim.get("/_sim/journeys")).json()
    assert set(JOURNEYS) < set(listing["available"])  # the multi-carrier ones come too
    (entry,) = listing["journeys"]
    assert entry["tracking_number"] == "LIST1" and entry["events_visible"] == 3
    assert entry["legs"] == [
        {
            "carrier": "dhl",
            "tracking_number": "LIST1",
            "modules": ["origin", "international", "destination"],
        }
    ]
    assert (await sim.get("/healthz")).json() == {"status": "ok"}


async def test_fault_429_and_none(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/faults", json={"carrier": "dhl", "mode": "429", "retry_after_s": 5})
    for _ in range(3):  # no count, no duration: until cleared
        response = await track(sim, "1")
        assert response.status_code == 429 and response.headers["retry-after"] == "5"
    await sim.post("/_sim/faults", json={"carrier": "dhl", "mode": "none"})
    assert (await track(sim, "1")).status_code == 404


async def test_fault_duration(sim: httpx.AsyncClient, clock: FakeClock) -> None:
    await sim.post("/_sim/faults", json={"carrier": "dhl", "mode": "5xx", "duration": 30})
    assert (await track(sim, "1")).status_code == 503
    clock.advance(seconds=31)
    assert (await track(sim, "1")).status_code == 404


async def test_fault_garbage_and_slow(sim: httpx.AsyncClient) -> None:
    await sim.post("/_sim/faults", json={"carrier": "dhl", "mode": "garbage", "count": 1})
    response = await track(sim, "1")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        json.loads(response.content)
    await sim.post(
        "/_sim/faults", json={"carrier": "dhl", "mode": "slow", "count": 1, "delay_s": 0.05}
    )
    began = time.monotonic()
    assert (await track(sim, "1")).status_code == 404
    assert time.monotonic() - began >= 0.05


async def test_fault_for_unknown_carrier_is_rejected(sim: httpx.AsyncClient) -> None:
    response = await sim.post("/_sim/faults", json={"carrier": "nope", "mode": "5xx"})
    assert response.status_code == 422


def test_check_digit_helper() -> None:
    assert valid_dhl_express_number(0) == "1234567891"  # 123456789 mod 7 = 1
    numbers = [valid_dhl_express_number(seed) for seed in range(2000)]
    assert len(set(numbers)) == len(numbers)
    for number in numbers:
        assert len(number) == 10 and number.isdigit()
        assert int(number[:9]) % 7 == int(number[9])
        assert is_valid_dhl_express_number(number)
    tampered = numbers[0][:9] + str((int(numbers[0][9]) + 1) % 10)
    assert not is_valid_dhl_express_number(tampered)
