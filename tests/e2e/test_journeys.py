"""Every scripted journey end to end: simulator → carriers-poller → Kafka → timeline-consumer →
PostgreSQL → GET /v1/tracking, each role a real ``throughline`` process on real sockets.

One set of processes serves the whole module: every journey is started at once on a fast clock,
its first leg's number registered, and each test reads what the tracking API ended up saying about
one journey (statuses, modules, order, duplicates, and the legs of the multi-carrier ones).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.carriers.fetchers import BASE_URL_SETTINGS
from services.cli.accounts import new_tenant
from services.simulator.itineraries import ITINERARIES
from services.simulator.journeys import JOURNEYS
from services.simulator.multileg import seed_of
from shared.settings import Settings
from tests.conftest import create_database, drop_database
from tests.e2e.conftest import CLI, free_port, stop_process, wait_http

SPEED = 21600.0  # six journey hours per real second: the longest journey takes ~30 s
DEADLINE_S = 150.0
SETTLE_S = 4.0  # after the others finish, the lost parcel must still be where it was
NOT_POLLED: set[str] = set()  # every leg of every itinerary is opened and polled (UPU included)
LOST = "epacket-lost-in-linehaul"
ALL_MODULES = ["origin", "international", "destination"]
# (what terminates the wait, the modules that get events)
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "epacket-china-us": ("delivered", ALL_MODULES),
    "fourpx-royal-mail": ("delivered", ALL_MODULES),
    "dhl-express-door-to-door": ("delivered", ALL_MODULES),
    "ups-failed-attempt-pickup": ("delivered", ALL_MODULES),
    "fedex-failed-attempt-pickup": ("delivered", ALL_MODULES),
    "ups-customs-duties": ("delivered", ALL_MODULES),
    LOST: ("in_transit", ["origin", "international"]),
    "colissimo-return-to-sender": ("returned", ["origin", "destination"]),
    "sf-express-duplicates-late-scan": ("delivered", ["origin", "destination"]),
    "cainiao-carrier-outage": ("delivered", ALL_MODULES),
}


@dataclass
class Journey:
    name: str
    legs: list[tuple[str, str]]  # (carrier, number) as the simulator announced them
    expected_events: int
    shipment_id: str = ""
    registered_carrier: str = ""
    body: dict[str, Any] = field(default_factory=dict)
    done_after_s: float | None = None

    @property
    def number(self) -> str:
        return self.legs[0][1]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for m in self.body.get("modules", []) for e in m["events"]]

    def done(self) -> bool:
        status, _ = EXPECTED[self.name]
        return self.body.get("status") == status and len(self.events) >= self.expected_events


@dataclass
class Run:
    api: str
    sim: str
    key: str
    journeys: dict[str, Journey]
    by_other_number: dict[str, dict[str, Any]]  # journey → GET /v1/tracking/{second leg's number}
    shipments: dict[str, dict[str, Any]]  # journey → GET /v1/shipments/{id}
    served_failures: dict[str, int]
    logs: Path


def _env(db: str, kafka: str, prefix: str, api: int, sim: int) -> dict[str, str]:
    carriers = {
        f"THROUGHLINE_{n.upper()}": f"http://127.0.0.1:{sim}" for n in BASE_URL_SETTINGS.values()
    }
    return {
        **carriers,
        "THROUGHLINE_DATABASE_URL": db,
        "THROUGHLINE_BUS": "kafka",
        "THROUGHLINE_KAFKA_BOOTSTRAP": kafka,
        "THROUGHLINE_TOPIC_PREFIX": prefix,
        "THROUGHLINE_API_PORT": str(api),
        "THROUGHLINE_SIMULATOR_PORT": str(sim),
        "THROUGHLINE_SIMULATOR_SPEED": str(SPEED),
        "THROUGHLINE_POLL_INTERVAL_S": "1",
        "THROUGHLINE_POLL_MIN_INTERVAL_S": "0.5",
        "THROUGHLINE_POLL_TICK_S": "0.2",
        "THROUGHLINE_PUBLIC_RATE_PER_MINUTE": "1000000",
        "THROUGHLINE_LOG_JSON": "false",
    }


def _expected_events(name: str, legs: list[tuple[str, str]]) -> int:
    """The distinct scans of every leg the product polls."""
    if name in JOURNEYS:
        return len(JOURNEYS[name].steps)
    plan = ITINERARIES[name].plan(legs[0][1], seed_of(legs[0][1]))
    polled = [leg for leg in plan.legs if leg.carrier not in NOT_POLLED]
    return sum(len({(s.offset, s.code, s.text) for s in leg.scans}) for leg in polled)


@pytest.fixture(scope="module")
async def run(
    pg_admin_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Run]:
    logs = tmp_path_factory.mktemp("journeys")
    procs: list[subprocess.Popen[bytes]] = []
    db = await create_database(pg_admin_url)
    try:
        yield await _play_everything(db, kafka_bootstrap, logs, procs)
    finally:
        for proc in procs:
            stop_process(proc)
        await drop_database(pg_admin_url, db)


async def _play_everything(
    db: str, kafka: str, logs: Path, procs: list[subprocess.Popen[bytes]]
) -> Run:
    api_port, sim_port = free_port(), free_port()
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {**os.environ, **_env(db, kafka, prefix, api_port, sim_port)}

    def spawn(args: list[str], name: str) -> subprocess.Popen[bytes]:
        out = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(CLI + args, cwd=logs, env=env, stdout=out, stderr=out)
        procs.append(proc)
        return proc

    assert spawn(["migrate"], "migrate").wait(60) == 0
    roles = {
        r: spawn(["run", r], r)
        for r in ("simulator", "api", "timeline-consumer", "carriers-poller")
    }
    api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    await asyncio.to_thread(wait_http, f"{api}/readyz", 60.0, roles["api"])
    await asyncio.to_thread(wait_http, f"{sim}/healthz", 60.0, roles["simulator"])
    _, key = await new_tenant(Settings(database_url=db), "E2E journeys", ("merchant",))
    async with httpx.AsyncClient(timeout=15) as client:
        journeys = {name: await _start(client, sim, api, key, name) for name in EXPECTED}
        await _wait(client, api, journeys)
        other = {
            name: (await client.get(f"{api}/v1/tracking/{j.legs[-1][1]}")).json()
            for name, j in journeys.items()
            if len(j.legs) > 1
        }
        auth = {"Authorization": f"Bearer {key}"}
        shipments = {
            name: (await client.get(f"{api}/v1/shipments/{j.shipment_id}", headers=auth)).json()
            for name, j in journeys.items()
        }
        served = (await client.get(f"{sim}/_sim/faults")).json()["served_failures"]
    for name, j in journeys.items():  # kept next to the process logs, for a failing assertion
        (logs / f"{name}.json").write_text(json.dumps(j.body, indent=1, ensure_ascii=False))
    return Run(api, sim, key, journeys, other, shipments, served, logs)


async def _start(client: httpx.AsyncClient, sim: str, api: str, key: str, name: str) -> Journey:
    r = await client.post(f"{sim}/_sim/journeys", json={"journey": name, "speed": SPEED})
    assert r.status_code == 201, r.text
    legs = [(leg["carrier"], leg["tracking_number"]) for leg in r.json()["legs"]]
    journey = Journey(name, legs, _expected_events(name, legs))
    r = await client.post(
        f"{api}/v1/shipments",
        headers={"Authorization": f"Bearer {key}"},
        json={"tracking_number": journey.number, "merchant_reference": name},
    )
    assert r.status_code == 201, r.text
    journey.shipment_id, journey.registered_carrier = r.json()["id"], r.json()["carrier"]
    return journey


async def _wait(client: httpx.AsyncClient, api: str, journeys: dict[str, Journey]) -> None:
    """Poll the tracking API until every journey reached its end (or the deadline)."""
    began = time.monotonic()
    settled_at: float | None = None
    while time.monotonic() - began < DEADLINE_S:
        for j in journeys.values():
            r = await client.get(f"{api}/v1/tracking/{j.number}")
            if r.status_code == 200:
                j.body = r.json()
            if j.done_after_s is None and j.done():
                j.done_after_s = round(time.monotonic() - began, 1)
        if settled_at is None and all(j.done() for j in journeys.values()):
            settled_at = time.monotonic()
        if settled_at is not None and time.monotonic() - settled_at >= SETTLE_S:
            return
        await asyncio.sleep(0.5)


# --- what every journey must satisfy ----------------------------------------------------------


def _check_timeline(j: Journey) -> None:
    _, modules = EXPECTED[j.name]
    assert j.done(), (
        f"{j.name}: expected {EXPECTED[j.name][0]} with {j.expected_events} events, "
        f"got {j.body.get('status')} with {len(j.events)}: {j.body}"
    )
    assert len(j.events) == j.expected_events
    keys = [
        (
            e["carrier"],
            e["tracking_number"],
            e["carrier_code"],
            e["occurred_at_local"],
            e["description"],
        )
        for e in j.events
    ]
    assert len(set(keys)) == len(keys), f"{j.name}: a scan appears twice"
    instants = [datetime.fromisoformat(e["occurred_at"]) for e in j.events if e["occurred_at"]]
    assert instants == sorted(instants), f"{j.name}: events out of order"
    assert [m["module"] for m in j.body["modules"] if m["events"]] == modules
    first = j.body["legs"][0]
    assert (first["position"], first["carrier"], first["tracking_number"]) == (0, *j.legs[0])
    assert j.registered_carrier == j.legs[0][0]  # the number alone named the right carrier


def _statuses(j: Journey) -> list[str]:
    return [e["status"] for e in j.events]


def _in_order(seq: list[str], *wanted: str) -> bool:
    """``wanted`` appear in ``seq`` in this order (not necessarily adjacent)."""
    it = iter(seq)
    return all(any(item == w for item in it) for w in wanted)


def _check_second_leg(run: Run, name: str, opened_by: set[str]) -> None:
    j = run.journeys[name]
    carrier, number = j.legs[-1]
    legs = {(leg["carrier"], leg["tracking_number"]) for leg in j.body["legs"]}
    assert (carrier, number) in legs, f"{name}: no {carrier} leg {number}; legs: {j.body['legs']}"
    merchant_legs = {
        (leg["carrier"], leg["tracking_number"]): leg for leg in run.shipments[name]["legs"]
    }
    assert merchant_legs[(carrier, number)]["opened_by"] in opened_by
    other = run.by_other_number[name]
    assert other.get("status") == j.body["status"]
    assert other.get("modules") == j.body["modules"] and other.get("legs") == j.body["legs"]
    assert {e["carrier"] for e in j.events} == {c for c, _ in j.legs}


# --- one test per journey -----------------------------------------------------------------------


def test_a_epacket_china_post_to_usps_same_s10(run: Run) -> None:
    j = run.journeys["epacket-china-us"]
    _check_timeline(j)
    assert j.body["status"] == "delivered"
    assert {number for _, number in j.legs} == {j.number}  # one S10 number all the way
    _check_second_leg(run, "epacket-china-us", {"destination_post", "same_number", "handoff_field"})
    opened = {leg["carrier"]: leg["opened_by"] for leg in run.shipments["epacket-china-us"]["legs"]}
    assert opened.get("upu") == "postal_network", opened  # the UPU network's feed between the posts
    assert {e["carrier"] for e in j.events} == {"china-post", "upu", "usps"}
    assert j.body["customs"]["export"] == "released" and j.body["customs"]["import"] == "released"


def test_b_fourpx_hands_over_to_royal_mail_with_a_new_number(run: Run) -> None:
    j = run.journeys["fourpx-royal-mail"]
    _check_timeline(j)
    assert j.body["status"] == "delivered"
    assert j.legs[-1][1] != j.number and j.legs[-1][0] == "royal-mail"
    _check_second_leg(run, "fourpx-royal-mail", {"handoff_field", "handoff_text"})
    handover = [e for e in j.events if e["carrier"] == "4px" and e["substatus"] == "handed_over"]
    royal_mail = [e for e in j.events if e["carrier"] == "royal-mail"]
    assert handover and royal_mail and j.events.index(handover[-1]) < j.events.index(royal_mail[0])


def test_c_dhl_express_door_to_door(run: Run) -> None:
    j = run.journeys["dhl-express-door-to-door"]
    _check_timeline(j)
    assert j.body["status"] == "delivered"
    assert [(leg["carrier"], leg["tracking_number"]) for leg in j.body["legs"]] == j.legs


@pytest.mark.parametrize("name", ["ups-failed-attempt-pickup", "fedex-failed-attempt-pickup"])
def test_d_failed_attempt_then_pickup(run: Run, name: str) -> None:
    j = run.journeys[name]
    _check_timeline(j)
    assert _in_order(_statuses(j), "failed_attempt", "available_for_pickup", "delivered")
    assert _statuses(j)[-1] == "delivered" and j.body["status"] == "delivered"


def test_e_customs_hold_duties_then_release(run: Run) -> None:
    j = run.journeys["ups-customs-duties"]
    _check_timeline(j)
    subs = [e["substatus"] for e in j.events]
    assert _in_order(
        subs, "import_customs_held", "duties_payable", "duties_paid", "import_customs_released"
    )
    held = next(e for e in j.events if e["substatus"] == "import_customs_held")
    assert held["status"] == "exception"
    assert j.body["customs"] == {"export": None, "import": "released", "duties": "paid"}
    assert j.body["status"] == "delivered"


def test_f_lost_in_linehaul_stays_in_transit(run: Run) -> None:
    j = run.journeys[LOST]
    _check_timeline(j)
    assert j.body["status"] == "in_transit"
    assert j.events[-1]["carrier_code"] == "EMC"
    assert j.events[-1]["substatus"] == "departed_origin_country"
    # The item left through the outward office of exchange, so the UPU network's feed is a leg too;
    # nothing came after that, and no destination post was reached.
    assert [(leg["carrier"], leg["opened_by"]) for leg in run.shipments[LOST]["legs"]] == [
        ("china-post", "registration"),
        ("upu", "postal_network"),
    ]


def test_g_return_to_sender(run: Run) -> None:
    j = run.journeys["colissimo-return-to-sender"]
    _check_timeline(j)
    assert _in_order(
        _statuses(j), "failed_attempt", "available_for_pickup", "exception", "returned"
    )
    assert j.body["status"] == "returned"


def test_h_duplicate_and_late_scans(run: Run) -> None:
    j = run.journeys["sf-express-duplicates-late-scan"]
    _check_timeline(j)  # the scan sent twice is there once, the late one in its place by time
    late = next(
        e for e in j.events if "北京朝阳营业点" in e["description"] and e["carrier_code"] == "30"
    )
    delivered = next(e for e in j.events if e["status"] == "delivered")
    assert j.events.index(late) < j.events.index(delivered)
    assert j.body["status"] == "delivered"  # the older scan reported last does not undo it


def test_i_carrier_outage_is_ridden_out(run: Run) -> None:
    j = run.journeys["cainiao-carrier-outage"]
    _check_timeline(j)
    assert j.body["status"] == "delivered"
    assert run.served_failures.get("cainiao", 0) >= 1, "the poller never met the outage"
