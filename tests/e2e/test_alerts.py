"""Stale alerts end to end: simulated journeys → carriers-poller → Kafka → timeline-consumer →
PostgreSQL → alerts-scanner → alerts.v1 → webhooks-consumer, every role a real process.

Four situations play at once, each frozen where it goes wrong (speed 1: nothing moves during the
test unless the test moves it):

- an ePacket lost in the linehaul: nothing after leaving China (32 h ago; the rules file gives the
  linehaul 24 h) → ``linehaul``;
- a DHL parcel held in import customs for 79 h → ``import_customs_held`` (default, 48 h);
- an ePacket arrived in the US 159 h ago, the destination post (USPS, linked on the same S10
  number) has scanned nothing → ``handoff_black_hole`` (default, 2 days), its carrier USPS;
- FedEx's API answers 5xx for three registered parcels that never got an event → one
  ``carrier_errors`` carrier alert, and no parcel alert even after the rules file's 20 s
  ``no_carrier_data`` limit passed: the carrier alert holds them back (and, once FedEx answers
  again, the recovery grace while the poller's backed-off numbers catch up).

Exactly those four alerts open, the three shipment alerts reach the merchant as ``shipment.stale``
webhook events (through alerts.v1); then the journeys resume (each is replayed to its end, and
FedEx answers again) and every alert resolves, with no other alert ever opened.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.alerts.models import Alert
from services.cli.accounts import new_tenant
from services.webhooks.models import WebhookEvent
from shared.db import create_engine, session_factory
from shared.settings import Settings
from tests.conftest import create_database, drop_database
from tests.e2e.conftest import CLI, free_port, stop_process, wait_http
from tests.e2e.test_journeys import _env

pytestmark = pytest.mark.postgres

RULES = {
    "rules": [
        {"key": "linehaul", "name": "linehaul, tight for the test",
         "substatus": "departed_origin_country", "max_silence_s": 86400},
        {"key": "no_carrier_data", "name": "nothing from any carrier",
         "status": "pending", "max_silence_s": 20},
    ]
}  # fmt: skip
ROLES = (
    "simulator",
    "api",
    "timeline-consumer",
    "carriers-poller",
    "alerts-scanner",
    "webhooks-consumer",
)
FAST = 1e6  # a replayed journey reveals every scan at once, its last one just now


@dataclass
class Stack:
    api: str
    sim: str
    key: str
    db: str
    logs: Path
    client: httpx.AsyncClient

    async def start(self, journey: str, number: str | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {"journey": journey, **extra}
        if number:
            body["tracking_number"] = number
        r = await self.client.post(f"{self.sim}/_sim/journeys", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["legs"][0]["tracking_number"])

    async def frozen(self, journey: str, hours_in: float) -> str:
        """A journey at real speed, ``hours_in`` hours into it: it stays where it is."""
        started = datetime.now(UTC) - timedelta(hours=hours_in)
        return await self.start(journey, speed=1, started_at=started.isoformat())

    async def register(self, number: str) -> str:
        r = await self.client.post(
            f"{self.api}/v1/shipments",
            headers={"Authorization": f"Bearer {self.key}"},
            json={"tracking_number": number},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def fault(self, carrier: str, mode: str) -> None:
        r = await self.client.post(
            f"{self.sim}/_sim/faults", json={"carrier": carrier, "mode": mode}
        )
        assert r.status_code < 300, r.text


@pytest.fixture
async def stack(pg_admin_url: str, kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Stack]:
    api_port, sim_port = free_port(), free_port()
    db = await create_database(pg_admin_url)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    env = {
        **os.environ,
        **_env(db, kafka_bootstrap, f"t{uuid.uuid4().hex[:10]}.", api_port, sim_port),
        "THROUGHLINE_ALERT_RULES_FILE": str(rules),
        "THROUGHLINE_ALERT_SCAN_INTERVAL_S": "1",
        "THROUGHLINE_ALERT_CARRIER_WINDOW_S": "30",
        "THROUGHLINE_ALERT_CARRIER_MIN_POLLS": "3",
        "THROUGHLINE_ALERT_CARRIER_RECOVERY_S": "90",
    }
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(args: list[str], name: str) -> subprocess.Popen[bytes]:
        out = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(CLI + args, cwd=tmp_path, env=env, stdout=out, stderr=out)
        procs.append(proc)
        return proc

    try:
        assert spawn(["migrate"], "migrate").wait(60) == 0
        roles = {r: spawn(["run", r], r) for r in ROLES}
        api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
        await asyncio.to_thread(wait_http, f"{api}/readyz", 60.0, roles["api"])
        await asyncio.to_thread(wait_http, f"{sim}/healthz", 60.0, roles["simulator"])
        _, key = await new_tenant(Settings(database_url=db), "E2E alerts", ("merchant",))
        async with httpx.AsyncClient(timeout=15) as client:
            yield Stack(api, sim, key, db, tmp_path, client)
    finally:
        for proc in procs:
            stop_process(proc)
        await drop_database(pg_admin_url, db)


async def _rows(db: str, model: Any) -> list[Any]:
    engine = create_engine(db)
    try:
        async with session_factory(engine)() as s:
            return list((await s.scalars(select(model))).all())
    finally:
        await engine.dispose()


async def _until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.5)


def _key(a: Alert) -> tuple[str, str]:
    return (str(a.shipment_id) if a.kind == "shipment" else f"carrier:{a.carrier}", a.rule_key)


async def test_stale_journeys_raise_exactly_their_alerts_and_resolve_when_events_resume(
    stack: Stack,
) -> None:
    await stack.fault("fedex", "5xx")
    lost = await stack.frozen("epacket-lost-in-linehaul", 32)
    held = await stack.frozen("dhl-customs-hold", 27)
    hole = await stack.frozen("epacket-china-us", 105)
    fedex = [await stack.start("fedex-failed-attempt-pickup", speed=FAST) for _ in range(3)]
    registered_at = time.monotonic()
    ids = {name: await stack.register(n) for name, n in (("lost", lost), ("held", held),
                                                         ("hole", hole))}  # fmt: skip
    fedex_ids = {await stack.register(n) for n in fedex}
    expected = {
        (ids["lost"], "linehaul"),
        (ids["held"], "import_customs_held"),
        (ids["hole"], "handoff_black_hole"),
        ("carrier:fedex", "carrier_errors"),
    }
    alerts: dict[tuple[str, str], Alert] = {}

    async def all_open() -> bool:
        alerts.clear()
        # The newest alert per (shipment or carrier, rule): a leg's late scans may resolve an
        # early alert, which opens again once the parcel stays silent past the rule's threshold.
        rows = sorted(await _rows(stack.db, Alert), key=lambda a: a.opened_at)
        alerts.update({_key(a): a for a in rows})
        quiet_enough = time.monotonic() - registered_at > 25  # past no_carrier_data's 20 s
        settled = all(a.resolved_at is None for a in alerts.values())
        return quiet_enough and expected <= set(alerts) and settled

    await _until(all_open, 90, "the four alerts")
    assert set(alerts) == expected, f"unexpected alerts: {set(alerts) - expected}"
    closed = {
        k: (a.state, a.resolved_reason) for k, a in alerts.items() if a.resolved_at is not None
    }
    assert not closed and all(a.state == "open" for a in alerts.values()), closed
    assert not any(str(a.shipment_id) in fedex_ids for a in alerts.values())
    lost_alert = alerts[(ids["lost"], "linehaul")]
    assert (lost_alert.threshold_s, lost_alert.threshold_source) == (86400.0, "config")
    # Gone silent after leaving China Post's outward office of exchange: in the UPU network's leg.
    assert lost_alert.carrier == "upu" and lost_alert.substatus == "departed_origin_country"
    hole_alert = alerts[(ids["hole"], "handoff_black_hole")]
    assert (hole_alert.carrier, hole_alert.module, hole_alert.threshold_source) == (
        "usps",
        "international",
        "default",
    )
    held_alert = alerts[(ids["held"], "import_customs_held")]
    assert held_alert.severity == "critical" and held_alert.carrier == "dhl"
    carrier_alert = alerts[("carrier:fedex", "carrier_errors")]
    assert carrier_alert.tenant_id is None and carrier_alert.detail is not None
    assert carrier_alert.detail["errors"] >= 3

    async def stale_webhooks() -> bool:
        events = [e for e in await _rows(stack.db, WebhookEvent) if e.type == "shipment.stale"]
        return {str(e.shipment_id) for e in events} == set(ids.values())

    await _until(stale_webhooks, 30, "shipment.stale for the three shipments")

    # Events resume: FedEx answers again, and each frozen parcel's journey plays to its end.
    await stack.fault("fedex", "none")
    await stack.start("epacket-china-us", lost, speed=FAST)
    await stack.start("dhl-customs-hold", held, speed=FAST)
    await stack.start("epacket-china-us", hole, speed=FAST)

    async def all_resolved() -> bool:
        alerts.clear()
        rows = sorted(await _rows(stack.db, Alert), key=lambda a: a.opened_at)
        alerts.update({_key(a): a for a in rows})
        return all(a.resolved_at is not None for a in alerts.values())

    await _until(all_resolved, 120, "every alert resolved")
    assert set(alerts) == expected, f"alerts opened after the resume: {set(alerts) - expected}"
    reasons = {k: a.resolved_reason for k, a in alerts.items()}
    assert reasons == {
        k: ("carrier answers again" if k[0].startswith("carrier:") else "events resumed")
        for k in expected
    }
    await asyncio.sleep(3)  # a few more scans: nothing opens again
    assert {_key(a) for a in await _rows(stack.db, Alert)} == expected
