"""Multi-carrier journeys in the simulator: accelerated reveal, timestamps, every leg through its
real poll client (httpx.ASGITransport) and adapter, hand-offs, outages and the control API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.carriers.adapters import ADAPTERS
from services.carriers.client import CarrierUnavailable
from services.carriers.fetchers import POLL_CLIENTS, open_fetchers
from services.simulator.app import SANDBOXES, create_app
from services.simulator.itineraries import ITINERARIES
from services.simulator.journeys import JOURNEYS
from services.simulator.multileg import MultiLegJourneys
from shared.numbers import check_digit_ok, detect, is_valid_s10
from shared.schema import TrackingEvent
from shared.settings import Settings
from shared.taxonomy import Status, Substatus

START = datetime(2025, 6, 2, 9, 30, tzinfo=UTC)
SPEED = 3600.0  # a journey hour per real second
BASE = "http://sim"
IN_BODY_RATE_LIMIT = {"yunexpress", "sf-express"}  # they answer a rate limit inside HTTP 200


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sim:
    http: httpx.AsyncClient
    clock: Clock
    itineraries: MultiLegJourneys

    async def start(self, journey: str, **extra: Any) -> dict[str, Any]:
        body = {"journey": journey, "speed": SPEED, **extra}
        response = await self.http.post("/_sim/journeys", json=body)
        assert response.status_code == 201, response.text
        started: dict[str, Any] = response.json()
        return started


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    clock = Clock()
    app = create_app(Settings(), clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield Sim(http, clock, app.state.itineraries)


async def poll(sim: Sim, carrier: str, number: str) -> list[TrackingEvent]:
    """One poll as the poller does it: the carrier's real client (default settings), its adapter."""
    async with POLL_CLIENTS[carrier].from_settings(Settings(), http=sim.http) as client:
        result = await client.fetch(number)
    parsed = ADAPTERS[carrier].parse(result.body, requested=number, http_status=result.status_code)
    if parsed.errors:
        assert [e.code for e in parsed.errors] == ["not_found"], parsed.errors
    return parsed.events


def legs(started: dict[str, Any]) -> list[tuple[str, str]]:
    return [(leg["carrier"], leg["tracking_number"]) for leg in started["legs"]]


@pytest.mark.parametrize("name", sorted(ITINERARIES))
async def test_every_leg_answers_through_its_client_and_parses(sim: Sim, name: str) -> None:
    started = await sim.start(name)
    running = next(iter(sim.itineraries.running.values()))
    sim.clock.advance(10_000)  # far past the end, late scans included
    async with open_fetchers(Settings(), http=sim.http) as fetchers:
        for leg in running.plan.legs:
            result = await fetchers[leg.carrier].fetch(leg.tracking_number)
            parsed = ADAPTERS[leg.carrier].parse(
                result.body, requested=leg.tracking_number, http_status=result.status_code
            )
            assert result.status_code == 200, (leg.carrier, result.body[:300])
            assert parsed.errors == [], (leg.carrier, parsed.errors)
            distinct_scans = {(s.offset, s.code, s.text) for s in leg.scans}
            assert len(parsed.events) == len(distinct_scans), leg.carrier
            assert len({e.event_id for e in parsed.events}) == len(parsed.events)
            assert {e.tracking_number for e in parsed.events} == {leg.tracking_number}
    assert legs(started) == [(leg.carrier, leg.tracking_number) for leg in running.plan.legs]


@pytest.mark.parametrize("name", sorted(ITINERARIES))
async def test_numbers_pass_their_carriers_check_digits(sim: Sim, name: str) -> None:
    started = await sim.start(name)
    (first_carrier, first), *_ = legs(started)
    assert detect(first)[0].carrier == first_carrier  # registering it finds the right carrier
    for carrier, number in legs(started):
        assert check_digit_ok(carrier, number) is not False, (carrier, number)


async def test_scans_are_revealed_by_accelerated_time(sim: Sim) -> None:
    started = await sim.start("epacket-china-us")
    number = started["legs"][0]["tracking_number"]
    assert [e.carrier_code for e in await poll(sim, "china-post", number)] == ["EMA"]
    sim.clock.advance(7.4)  # 7.4 journey hours: the sorting centre scan (7.5 h) is not out yet
    assert len(await poll(sim, "china-post", number)) == 1
    sim.clock.advance(0.2)
    assert len(await poll(sim, "china-post", number)) == 2
    sim.clock.advance(105.9 - 7.6)  # USPS's first scan is at 106 h
    assert await poll(sim, "usps", number) == []
    sim.clock.advance(0.2)
    assert len(await poll(sim, "usps", number)) == 1
    listing = (await sim.http.get("/_sim/journeys")).json()
    (entry,) = listing["journeys"]
    assert [leg["events_visible"] for leg in entry["legs"]] == [7, 7, 1]


async def test_timestamps_are_in_the_past_and_reproducible(sim: Sim) -> None:
    first = await sim.start("fourpx-royal-mail")
    number, last_mile = (n for _, n in legs(first))
    sim.clock.advance(90)
    fourpx = await poll(sim, "4px", number)
    assert fourpx and all(e.occurred_at is not None for e in fourpx)
    assert all(e.occurred_at <= sim.clock.now for e in fourpx if e.occurred_at)
    sim.clock.advance(1000)
    royal_mail = await poll(sim, "royal-mail", last_mile)
    # The journey ends at its real start: the delivery is stamped exactly then.
    assert max(e.occurred_at for e in royal_mail if e.occurred_at) == START

    clock = Clock()
    clock.now = sim.clock.now + timedelta(days=3)  # a restarted simulator, days later
    app = create_app(Settings(), clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        again = Sim(http, clock, app.state.itineraries)
        restarted = await again.start(
            "fourpx-royal-mail", tracking_number=number, started_at=START.isoformat()
        )
        assert legs(restarted) == legs(first)  # the same hand-off number
        assert [e.event_id for e in await poll(again, "4px", number)] == [
            e.event_id for e in await poll(sim, "4px", number)
        ]
        assert [e.event_id for e in await poll(again, "royal-mail", last_mile)] == [
            e.event_id for e in royal_mail
        ]


async def test_cross_border_leg_announces_the_hand_off(sim: Sim) -> None:
    started = await sim.start("fourpx-royal-mail")
    (_, number), (carrier, last_mile) = legs(started)
    assert carrier == "royal-mail" and is_valid_s10(last_mile) and last_mile.endswith("GB")
    sim.clock.advance(81)  # just before the hand-off scan (82 h)
    assert all(e.handoff is None for e in await poll(sim, "4px", number))
    assert await poll(sim, "royal-mail", last_mile) == []  # Royal Mail does not know it yet
    sim.clock.advance(3)
    handoffs = [e.handoff for e in await poll(sim, "4px", number) if e.handoff]
    assert [(h.carrier, h.tracking_number) for h in handoffs] == [("royal-mail", last_mile)]
    assert check_digit_ok("royal-mail", last_mile) is True
    assert len(await poll(sim, "royal-mail", last_mile)) == 1  # it serves the new number


async def test_epacket_destination_post_tracks_the_same_number(sim: Sim) -> None:
    started = await sim.start("epacket-china-us")
    assert [c for c, _ in legs(started)] == ["china-post", "upu", "usps"]
    assert len({n for _, n in legs(started)}) == 1 and is_valid_s10(legs(started)[0][1])
    sim.clock.advance(10_000)
    number = legs(started)[0][1]
    china_post = await poll(sim, "china-post", number)
    assert china_post[-1].carrier_code == "EMD"
    assert china_post[-1].handoff is not None and china_post[-1].handoff.carrier == "usps"
    usps = await poll(sim, "usps", number)
    assert usps[-1].status is Status.DELIVERED
    assert {e.carrier_code for e in await poll(sim, "upu", number)} >= {"EMC", "EMD", "EMI"}


async def test_a_late_scan_comes_after_the_delivery(sim: Sim) -> None:
    started = await sim.start("sf-express-duplicates-late-scan")
    number = legs(started)[0][1]
    sim.clock.advance(22)  # delivered at 21 h; the hub scan of 15.9 h is reported at 27.9 h
    before = await poll(sim, "sf-express", number)
    assert before[-1].status is Status.DELIVERED and len(before) == 5
    sim.clock.advance(6)
    after = await poll(sim, "sf-express", number)
    assert len(after) == 6
    late = after[-1]  # listed last, as the carrier sent it, but it happened before the delivery
    assert late.occurred_at is not None and before[-1].occurred_at is not None
    assert late.occurred_at < before[-1].occurred_at
    assert {e.event_id for e in before} < {e.event_id for e in after}


async def test_itinerary_outage_then_recovery(sim: Sim) -> None:
    started = await sim.start("cainiao-carrier-outage")
    number = legs(started)[0][1]
    sim.clock.advance(29)
    assert len(await poll(sim, "cainiao", number)) == 4
    sim.clock.advance(2)  # 31 journey hours: inside the 30-50 h outage
    with pytest.raises(CarrierUnavailable) as raised:
        await poll(sim, "cainiao", number)
    assert raised.value.status_code == 503
    sim.clock.advance(20)
    assert len(await poll(sim, "cainiao", number)) == 6
    served = (await sim.http.get("/_sim/faults")).json()["served_failures"]
    assert served == {"cainiao": 1}


@pytest.mark.parametrize("carrier", sorted({"dhl", *SANDBOXES}))
async def test_faults_reach_every_carrier(sim: Sim, carrier: str) -> None:
    response = await sim.http.post(
        "/_sim/faults", json={"carrier": carrier, "mode": "429", "count": 1, "retry_after_s": 7}
    )
    assert response.status_code == 200, response.text
    async with open_fetchers(Settings(), http=sim.http) as fetchers:
        with pytest.raises(CarrierUnavailable) as raised:
            await fetchers[carrier].fetch("LX123456785CN")
        if carrier in IN_BODY_RATE_LIMIT:
            assert raised.value.status_code == 200
        else:
            assert (raised.value.status_code, raised.value.retry_after) == (429, 7.0)
        await sim.http.post("/_sim/faults", json={"carrier": carrier, "mode": "5xx"})
        for _ in range(2):  # neither count nor duration: until cleared
            with pytest.raises(CarrierUnavailable):
                await fetchers[carrier].fetch("LX123456785CN")
        await sim.http.post("/_sim/faults", json={"carrier": carrier, "mode": "none"})
        result = await fetchers[carrier].fetch("LX123456785CN")  # an answer again (not found)
        assert result.status_code < 500


async def test_sandbox_fault_with_duration_and_unsupported_modes(sim: Sim) -> None:
    await sim.http.post("/_sim/faults", json={"carrier": "usps", "mode": "5xx", "duration": 30})
    async with open_fetchers(Settings(), http=sim.http) as fetchers:
        with pytest.raises(CarrierUnavailable):
            await fetchers["usps"].fetch("LX123456785CN")
        sim.clock.advance(31)
        assert (await fetchers["usps"].fetch("LX123456785CN")).status_code == 404
    for mode in ("slow", "garbage"):
        response = await sim.http.post("/_sim/faults", json={"carrier": "ups", "mode": mode})
        assert response.status_code == 422


async def test_control_api_lists_and_validates(sim: Sim) -> None:
    listing = (await sim.http.get("/_sim/journeys")).json()
    assert set(listing["available"]) == set(ITINERARIES) | set(JOURNEYS)
    assert set(listing["summaries"]) == set(listing["available"])
    unknown = await sim.http.post("/_sim/journeys", json={"journey": "teleport"})
    assert unknown.status_code == 422
    dhl = await sim.start("dhl-express-door-to-door")  # a DHL journey gets a number too
    ((carrier, number),) = legs(dhl)
    assert carrier == "dhl" and check_digit_ok("dhl", number) is True
    again = await sim.start("ups-customs-duties", tracking_number=legs(dhl)[0][1])
    assert legs(again)[0][1] == number  # a given number is used as the first leg's
    listing = (await sim.http.get("/_sim/journeys")).json()
    assert {j["journey"] for j in listing["journeys"]} == {
        "dhl-express-door-to-door",
        "ups-customs-duties",
    }


def test_sandbox_paths_do_not_collide() -> None:
    app = create_app(Settings())
    seen: dict[tuple[str, str], int] = {}
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            key = (method, getattr(route, "path", ""))
            seen[key] = seen.get(key, 0) + 1
    assert [key for key, count in seen.items() if count > 1] == []
    assert len(SANDBOXES) == 14 and set(SANDBOXES) | {"dhl"} == set(POLL_CLIENTS)


async def test_sandboxes_accept_the_pollers_configured_credentials() -> None:
    settings = Settings(ups_client_id="acme-ups", fourpx_app_secret="acme-secret")
    app = create_app(settings, clock=Clock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        started = (await http.post("/_sim/journeys", json={"journey": "ups-customs-duties"})).json()
        number = started["legs"][0]["tracking_number"]
        async with open_fetchers(settings, http=http) as fetchers:
            result = await fetchers["ups"].fetch(number)
            assert result.status_code == 200
            assert ADAPTERS["ups"].parse(result.body, requested=number).events
        async with open_fetchers(Settings(), http=http) as fetchers:
            refused = await fetchers["ups"].fetch(number)  # the demo id is no longer accepted
            assert refused.status_code == 401
            assert ADAPTERS["ups"].parse(refused.body, requested=number).errors


async def test_lost_parcel_stops_after_leaving_the_origin_country(sim: Sim) -> None:
    started = await sim.start("epacket-lost-in-linehaul")
    number = legs(started)[0][1]
    sim.clock.advance(10_000)
    events = await poll(sim, "china-post", number)
    assert events[-1].carrier_code == "EMC"
    assert events[-1].substatus is Substatus.DEPARTED_ORIGIN_COUNTRY
    assert all(e.status is Status.IN_TRANSIT for e in events)
