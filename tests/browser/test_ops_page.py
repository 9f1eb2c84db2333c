"""The operators' console in headless Chromium, served by the real API app on a real socket: sign in
with an operator key, watch an alert arrive live, acknowledge and snooze, drill into a timeline."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.alerts.models import CarrierHealth
from services.alerts.stream import StreamConfig
from services.cli.app import create_api_app
from services.cli.runtime import Runtime, runtime, serve
from services.simulator.journeys import valid_dhl_express_number
from services.timeline.handlers import record_events
from shared.db import transaction, utcnow
from shared.migrate import upgrade_async
from shared.schema import Location, TrackingEvent, make_event_id
from shared.settings import Settings
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.browser.conftest import unavailable
from tests.integration.alerting import Tenant, new_alert, new_shipment, new_tenant

try:
    from playwright.async_api import Page, Request, expect
except ImportError:
    unavailable("the playwright package is missing; pip install -e '.[test]'", module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
NUMBER = valid_dhl_express_number(21)
QUIET = valid_dhl_express_number(22)
HOSTILE = '<img src=x onerror="window.__pwned=1">'


@dataclass(frozen=True)
class Site:
    base: str
    rt: Runtime
    tenant: Tenant
    app: FastAPI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _events() -> list[TrackingEvent]:
    def ev(i: int, local: str, text: str, city: str, country: str, **kw: object) -> TrackingEvent:
        return TrackingEvent(
            event_id=make_event_id("dhl", NUMBER, f"C{i}", local, city),
            carrier="dhl",
            tracking_number=NUMBER,
            occurred_at_local=local,
            utc_offset="+08:00" if country == "CN" else None,
            occurred_at=datetime.fromisoformat(local).replace(tzinfo=UTC)
            if country == "CN"
            else None,
            time_basis=TimeBasis.CARRIER_OFFSET if country == "CN" else TimeBasis.UNKNOWN,
            module=Module.ORIGIN if country == "CN" else Module.INTERNATIONAL,
            carrier_code=f"C{i}",
            description=text,
            location=Location(city=city, country=country),
            sequence=i,
            **kw,  # type: ignore[arg-type]
        )

    return [
        ev(0, "2024-03-01T12:00:00", "Shipment picked up", "SHENZHEN", "CN", status=Status.IN_TRANSIT, substatus=Substatus.PICKED_UP),
        ev(1, "2024-03-02T09:00:00", "Arrived at DHL Sort Facility CINCINNATI HUB", "CINCINNATI HUB", "US", status=Status.IN_TRANSIT, substatus=Substatus.ARRIVED_DESTINATION_COUNTRY),
    ]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def artifacts() -> None:
    ARTIFACTS.mkdir(exist_ok=True)


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    db = tmp_path_factory.mktemp("ops-page") / "throughline.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        bus="sql",
        topic_prefix="ops.",
        public_rate_per_minute=6000,
    )
    await upgrade_async(settings.database_url)
    async with runtime(settings) as rt:
        tenant = await new_tenant(rt, "Operators")
        app = create_api_app(rt)
        app.state.alert_stream_config = StreamConfig(poll_s=0.1, heartbeat_s=2.0)
        port, stop = _free_port(), asyncio.Event()
        server = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        try:
            yield Site(base, rt, tenant, app)
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)


async def _sign_in(page: Page, base: str, key: str) -> None:
    await page.goto(f"{base}/ops")
    await page.get_by_label("Operator API key").fill(key)
    await page.get_by_role("button", name="Open the console").click()


async def test_live_feed_acknowledge_snooze_and_timeline(site: Site, page: Page) -> None:
    rt, t = site.rt, site.tenant
    shipment = await new_shipment(rt, t.id, NUMBER)
    async with transaction(rt.sessions) as s:
        assert await record_events(s, _events()) == 2
        s.add(CarrierHealth(carrier="dhl", polls=120, errors=3, error_rate=0.025, latency_ms_avg=180.0,
                            latency_ms_max=900, last_ok_at=utcnow(), active_shipments=4,
                            window_s=900.0, checked_at=utcnow()))  # fmt: skip
    quiet = await new_alert(
        rt,
        t.id,
        rule_key="in_transit",
        shipment_id=await new_shipment(rt, t.id, QUIET),
        tracking_number=QUIET,
    )

    errors: list[str] = []
    urls: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def on_request(request: Request) -> None:
        urls.append(request.url)

    page.on("request", on_request)

    response = await page.goto(f"{site.base}/ops")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    await expect(page).to_have_title("Operations · Throughline")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Operations")
    await expect(page.locator("#console")).to_be_hidden()

    await page.get_by_label("Operator API key").fill(t.operator)
    await page.get_by_role("button", name="Open the console").click()
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=10_000)
    feed = page.get_by_role("table", name="Alert feed")
    await expect(feed.locator("tbody tr")).to_have_count(1)
    await expect(feed.locator(f'tr[data-alert-id="{quiet.id}"]')).to_contain_text(QUIET)
    await expect(page.get_by_role("table", name="By rule")).to_contain_text("in_transit")
    health = page.get_by_role("table", name="Carrier health")
    await expect(health.locator('tr[data-carrier="dhl"]')).to_contain_text("ok")
    assert await page.evaluate("sessionStorage.getItem('throughline.operatorKey')") == t.operator

    # A new alert opens: it arrives over the stream, without a reload. Carrier text stays text.
    fresh = await new_alert(rt, t.id, rule_key="handoff_black_hole", severity="critical",
                            shipment_id=shipment, tracking_number=NUMBER, lane=HOSTILE[:8],
                            carrier="dhl")  # fmt: skip
    row = feed.locator(f'tr[data-alert-id="{fresh.id}"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row).to_contain_text("handoff_black_hole")
    await expect(row).to_contain_text(NUMBER)
    await expect(row).to_contain_text(HOSTILE[:8])
    await expect(page.locator("#announce")).to_have_text(
        re.compile(r"New alert: handoff_black_hole")
    )
    await expect(feed.locator("tbody tr").first).to_have_attribute("data-alert-id", str(fresh.id))
    await expect(page.get_by_role("table", name="By rule")).to_contain_text("handoff_black_hole")
    await page.screenshot(path=ARTIFACTS / "ops-console.png", full_page=True)

    # Acknowledge it: the row changes, and so does the server's record.
    await row.get_by_role("button", name=f"Acknowledge the alert on {NUMBER}").click()
    await expect(row.locator(".badge.state-acknowledged")).to_have_text("acknowledged")
    await expect(row.get_by_role("button", name=re.compile("^Acknowledge"))).to_have_count(0)
    async with httpx.AsyncClient(base_url=site.base, headers=t.headers) as api:
        assert (await api.get(f"/v1/alerts/{fresh.id}")).json()["state"] == "acknowledged"

    # Snooze the other one for four hours.
    other = feed.locator(f'tr[data-alert-id="{quiet.id}"]')
    await other.get_by_role("combobox", name=f"Snooze the alert on {QUIET} for").select_option(
        "14400"
    )
    await other.get_by_role("button", name=f"Snooze the alert on {QUIET}").click()
    await expect(other.locator(".badge.state-snoozed")).to_have_text("snoozed")
    async with httpx.AsyncClient(base_url=site.base, headers=t.headers) as api:
        snoozed = (await api.get(f"/v1/alerts/{quiet.id}")).json()
    assert snoozed["state"] == "snoozed"
    until = datetime.fromisoformat(snoozed["snoozed_until"]) - utcnow()
    assert 3.9 * 3600 < until.total_seconds() <= 4 * 3600

    # A carrier goes down: its carrier-wide alert reaches this tenant's console live, marked as
    # such, with nothing to click (the platform manages it; it resolves when the carrier recovers).
    outage = await new_alert(rt, None, kind="carrier", rule_key="carrier_errors",
                             severity="critical", shipment_id=None, carrier="ups", lane=None,
                             module=None, status=None)  # fmt: skip
    wide = feed.locator(f'tr[data-alert-id="{outage.id}"]')
    await expect(wide).to_be_visible(timeout=10_000)
    await expect(wide).to_have_attribute("data-carrier-wide", "true")
    await expect(wide).to_contain_text("carrier ups")
    await expect(wide.locator(".badge.carrier-wide")).to_have_text("carrier-wide")
    await expect(wide).to_contain_text("resolves by itself when the carrier recovers")
    await expect(wide.get_by_role("button")).to_have_count(0)
    await expect(page.get_by_role("table", name="By carrier")).to_contain_text("ups")

    # Drill into the acknowledged parcel's timeline.
    await row.get_by_role("button", name=f"Show the timeline of {NUMBER}").click()
    drill = page.get_by_role("region", name=f"Timeline of {NUMBER}")
    await expect(drill).to_be_visible()
    await expect(drill.get_by_role("listitem")).to_have_count(2)
    await expect(drill).to_contain_text("Arrived at DHL Sort Facility CINCINNATI HUB")
    await expect(drill).to_contain_text("Status: in_transit")
    await expect(drill.get_by_role("link", name="Open the tracking page")).to_have_attribute(
        "href", f"/t/{NUMBER}"
    )
    await page.screenshot(path=ARTIFACTS / "ops-console-timeline.png", full_page=True)

    await expect(page.locator("main img")).to_have_count(0)
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert errors == []
    # The key went out in headers only: no URL the page asked for carries it.
    assert any("/v1/alerts/stream?token=" in u for u in urls)
    assert not [u for u in urls if t.operator in u]
    assert f"ORDER-{NUMBER}" not in await page.content()  # the merchant reference is not shown


async def test_a_merchant_key_is_refused_with_a_clear_message(site: Site, page: Page) -> None:
    await _sign_in(page, site.base, site.tenant.merchant)
    await expect(page.locator("#key-error")).to_have_text("this API key lacks the 'operator' scope")
    await expect(page.locator("#console")).to_be_hidden()
    await expect(page.get_by_label("Operator API key")).to_have_attribute("aria-invalid", "true")
    assert await page.evaluate("sessionStorage.getItem('throughline.operatorKey')") is None
    await page.screenshot(path=ARTIFACTS / "ops-console-403.png", full_page=True)


async def test_the_key_survives_a_reload_and_sign_out_forgets_it(site: Site, page: Page) -> None:
    await _sign_in(page, site.base, site.tenant.operator)
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=10_000)
    await page.reload()
    await expect(page.get_by_role("status")).to_have_text("Live", timeout=10_000)
    await expect(page.locator("#console")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("Not connected")
    assert await page.evaluate("sessionStorage.getItem('throughline.operatorKey')") is None


async def test_the_feed_outlives_its_stream_tokens(site: Site, page: Page) -> None:
    """Each stream ends with its token; the page takes a new one and resumes from its last event."""
    config = site.app.state.alert_stream_config
    site.app.state.alert_stream_config = StreamConfig(poll_s=0.1, heartbeat_s=2.0, token_ttl_s=1)
    tokens: list[str] = []
    page.on("request", lambda r: tokens.append(r.url) if r.url.endswith("/stream-token") else None)
    try:
        await _sign_in(page, site.base, site.tenant.operator)
        await expect(page.get_by_role("status")).to_have_text("Live", timeout=10_000)
        for _ in range(300):  # until the page has renewed its token at least twice
            if len(tokens) >= 3:
                break
            await asyncio.sleep(0.1)
        assert len(tokens) >= 3, tokens
        late = await new_alert(site.rt, site.tenant.id, rule_key="failed_attempt", carrier="fedex")
        feed = page.get_by_role("table", name="Alert feed")
        await expect(feed.locator(f'tr[data-alert-id="{late.id}"]')).to_be_visible(timeout=15_000)
        await expect(feed.locator(f'tr[data-alert-id="{late.id}"]')).to_have_count(1)
    finally:
        site.app.state.alert_stream_config = config
