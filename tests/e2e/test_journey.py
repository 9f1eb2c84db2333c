"""simulator → poller → Kafka → timeline → GET /v1/tracking, each a real process on real sockets."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

import httpx

from services.cli.accounts import new_tenant
from services.simulator.journeys import JOURNEYS, valid_dhl_express_number
from shared.settings import Settings
from tests.conftest import create_database, drop_database
from tests.e2e.conftest import Spawn, free_port, wait_http

JOURNEY = "dhl-express-door-to-door"


def _env(db_url: str, kafka: str, prefix: str, api: int, sim: int) -> dict[str, str]:
    return {
        "THROUGHLINE_DATABASE_URL": db_url,
        "THROUGHLINE_BUS": "kafka",
        "THROUGHLINE_KAFKA_BOOTSTRAP": kafka,
        "THROUGHLINE_TOPIC_PREFIX": prefix,
        "THROUGHLINE_API_PORT": str(api),
        "THROUGHLINE_SIMULATOR_PORT": str(sim),
        "THROUGHLINE_DHL_BASE_URL": f"http://127.0.0.1:{sim}",
        "THROUGHLINE_SIMULATOR_SPEED": "21600",
        "THROUGHLINE_POLL_INTERVAL_S": "1",
        "THROUGHLINE_POLL_MIN_INTERVAL_S": "0.5",
        "THROUGHLINE_POLL_TICK_S": "0.2",
    }


async def test_dhl_journey_end_to_end_over_kafka_and_postgres(
    pg_admin_url: str,
    kafka_bootstrap: str,
    topic_prefix: str,
    spawn: Spawn,
) -> None:
    db_url = await create_database(pg_admin_url)
    try:
        await _run_journey(db_url, kafka_bootstrap, topic_prefix, spawn)
    finally:
        await drop_database(pg_admin_url, db_url)


async def _run_journey(db: str, kafka: str, prefix: str, spawn: Spawn) -> None:
    api_port, sim_port = free_port(), free_port()
    env = _env(db, kafka, prefix, api_port, sim_port)
    assert spawn(["migrate"], env, "migrate").wait(60) == 0
    roles = {
        r: spawn(["run", r], env, r)
        for r in ("simulator", "api", "timeline-consumer", "carriers-poller")
    }
    api, sim = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{sim_port}"
    await asyncio.to_thread(wait_http, f"{api}/readyz", 60.0, roles["api"])
    await asyncio.to_thread(wait_http, f"{sim}/healthz", 60.0, roles["simulator"])
    _, key = await new_tenant(Settings(database_url=db), "E2E merchant", ("merchant",))

    number = valid_dhl_express_number(4242)
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{sim}/_sim/journeys", json={"tracking_number": number, "journey": JOURNEY}
        )
        assert r.status_code == 201, r.text
        r = await client.post(
            f"{api}/v1/shipments",
            headers={"Authorization": f"Bearer {key}"},
            json={"tracking_number": number, "destination_country": "DE"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["carrier"] == "dhl"  # detected from the check digit
        body = await _wait_delivered(client, f"{api}/v1/tracking/{number}")

    steps = JOURNEYS[JOURNEY].steps
    events = [e for m in body["modules"] for e in m["events"]]
    assert len(events) == len(steps)
    for event, step in zip(events, steps, strict=True):  # in journey order, none twice
        expected = (step.description or step.status).split("Signed for by:")[0]
        assert expected in event["description"]
    assert "MUSTERMANN" not in str(body)  # the signatory's name never reaches the public view
    instants = [datetime.fromisoformat(e["occurred_at"]) for e in events if e["occurred_at"]]
    assert instants == sorted(instants) and len(instants) == len(events)
    assert body["status"] == "delivered"
    assert [m["module"] for m in body["modules"]] == ["origin", "international", "destination"]
    assert all(m["events"] for m in body["modules"])
    assert [(leg["position"], leg["carrier"], leg["tracking_number"]) for leg in body["legs"]] == [
        (0, "dhl", number)
    ]
    assert body["legs"][0]["status"] == "delivered"


async def _wait_delivered(
    client: httpx.AsyncClient, url: str, timeout: float = 90.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = await client.get(url)
        if r.status_code == 200:
            body = r.json()
            if body["status"] == "delivered":
                return body
        await asyncio.sleep(0.5)
    raise AssertionError(f"not delivered within {timeout} s; last answer: {body}")
