"""The consumer tracking page in headless Chromium, served by the real API app on a real socket."""

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
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.app import create_api_app
from services.cli.runtime import runtime, serve
from services.simulator.journeys import valid_dhl_express_number
from services.timeline import repository
from services.timeline.handlers import record_events
from services.timeline.models import Leg, Shipment
from shared.auth import create_tenant
from shared.db import transaction
from shared.http import RateLimiter
from shared.migrate import upgrade_async
from shared.schema import Location, TrackingEvent, make_event_id
from shared.settings import Settings
from shared.taxonomy import Module, Status, Substatus, TimeBasis
from tests.browser.conftest import unavailable

try:
    from playwright.async_api import Dialog, Page, expect
except ImportError:
    unavailable("the playwright package is missing; pip install -e '.[test]'", module_level=True)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
EXPRESS = valid_dhl_express_number(7)
LAST_MILE = "9400111899223197428490"
SECRET = "ORDER-SECRET-4711"
SCRIPT = '<script>window.__pwned = 1; alert("script")</script>'
IMG = '<img src=x onerror="window.__pwned = 2; alert(2)">'
CN, US = "CN", "US"


@pytest.fixture(scope="module", autouse=True)
def artifacts() -> None:
    ARTIFACTS.mkdir(exist_ok=True)


@dataclass(frozen=True)
class Site:
    base: str
    app: FastAPI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(
    i: int,
    status: Status,
    module: Module,
    local: str,
    description: str,
    place: Location,
    *,
    carrier: str = "dhl",
    number: str = EXPRESS,
    substatus: Substatus | None = None,
    offset: str | None = None,
    instant: str | None = None,
    basis: TimeBasis = TimeBasis.CARRIER_OFFSET,
) -> TrackingEvent:
    return TrackingEvent(
        event_id=make_event_id(carrier, number, f"S{i}", local, place.city),
        carrier=carrier,
        tracking_number=number,
        occurred_at_local=local,
        utc_offset=offset,
        occurred_at=datetime.fromisoformat(instant).replace(tzinfo=UTC) if instant else None,
        time_basis=basis,
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=f"S{i}",
        description=description,
        location=place,
        sequence=i,
    )


def journey() -> list[TrackingEvent]:
    """DHL Express from Shenzhen to the US gateway, then USPS to the door; one scan is hostile."""
    shenzhen = Location(city="SHENZHEN - CHINA MAINLAND", country=CN, postal_code="518000")
    shanghai = Location(city="SHANGHAI - CHINA MAINLAND", country=CN)
    cincinnati = Location(city="CINCINNATI HUB", region="OH", country=US, facility=IMG)
    chicago = Location(city="CHICAGO", region="IL", country=US, postal_code="60666")
    brooklyn = Location(city="BROOKLYN", region="NY", country=US, postal_code="11201")
    o, i, d, t = Module.ORIGIN, Module.INTERNATIONAL, Module.DESTINATION, Status.IN_TRANSIT
    return [
        _event(0, Status.INFO_RECEIVED, o, "2024-03-01T09:00:00", "Shipment information received", shenzhen, offset="+08:00", instant="2024-03-01T01:00:00"),
        _event(1, t, o, "2024-03-01T12:00:00", "Shipment picked up", shenzhen, substatus=Substatus.PICKED_UP, offset="+08:00", instant="2024-03-01T04:00:00"),
        _event(2, t, i, "2024-03-01T22:00:00", "Export clearance processing complete", shanghai, substatus=Substatus.EXPORT_CUSTOMS_RELEASED, offset="+08:00", instant="2024-03-01T14:00:00"),
        _event(3, t, i, "2024-03-02T02:00:00", "Departed Facility in SHANGHAI - CHINA MAINLAND", shanghai, substatus=Substatus.DEPARTED_ORIGIN_COUNTRY, offset="+08:00", instant="2024-03-01T18:00:00"),
        _event(4, t, i, "2024-03-02T09:00:00", "Arrived at DHL Sort Facility CINCINNATI HUB", cincinnati, substatus=Substatus.ARRIVED_DESTINATION_COUNTRY, instant="2024-03-02T14:00:00", basis=TimeBasis.LOCATION_TIMEZONE),
        _event(5, t, i, "2024-03-02T15:30:00", f"Customs status updated {SCRIPT}{IMG}", cincinnati, substatus=Substatus.IMPORT_CUSTOMS_PRESENTED, basis=TimeBasis.UNKNOWN),
        _event(6, t, i, "2024-03-02T20:00:00", "Clearance processing complete", cincinnati, substatus=Substatus.IMPORT_CUSTOMS_RELEASED, instant="2024-03-03T01:00:00", basis=TimeBasis.CARRIER_UTC),
        _event(7, t, d, "2024-03-03T09:00:00", "Accepted at USPS Regional Facility", chicago, carrier="usps", number=LAST_MILE, substatus=Substatus.HANDED_OVER, offset="-06:00", instant="2024-03-03T15:00:00"),
        _event(8, Status.OUT_FOR_DELIVERY, d, "2024-03-04T08:10:00", "Out for Delivery, Expected Delivery by 9:00pm", brooklyn, carrier="usps", number=LAST_MILE, offset="-05:00", instant="2024-03-04T13:10:00"),
    ]  # fmt: skip


async def _seed(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as s:
        tenant = await create_tenant(s, "A shop")
        shipment = Shipment(
            tenant_id=tenant.id,
            carrier="dhl",
            tracking_number=EXPRESS,
            merchant_reference=SECRET,
            status=Status.PENDING.value,
            module_status={},
        )
        legs = [
            Leg(carrier="dhl", tracking_number=EXPRESS, position=0, opened_by="registration"),
            Leg(carrier="usps", tracking_number=LAST_MILE, position=1, opened_by="manifest"),
        ]
        await repository.add_shipment(s, shipment, legs)
        assert await record_events(s, journey()) == len(journey())


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    """The API app of ``throughline run api`` on a free 127.0.0.1 port (SQLite, SQL-log bus)."""
    db = tmp_path_factory.mktemp("tracking-page") / "throughline.db"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{db}",
        bus="sql",
        topic_prefix="page.",
        consumer_wait_ms=100,
        public_rate_per_minute=6000,
    )
    await upgrade_async(settings.database_url)
    async with runtime(settings) as rt:
        await _seed(rt.sessions)
        app = create_api_app(rt)
        port = _free_port()
        stop = asyncio.Event()
        server = asyncio.create_task(serve(app, "127.0.0.1", port, stop))
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(f"{base}/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{base} did not answer")
        try:
            yield Site(base, app)
        finally:
            stop.set()
            await server


def _watch_for_scripts(page: Page) -> tuple[list[str], list[str]]:
    dialogs: list[str] = []
    errors: list[str] = []

    async def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return dialogs, errors


async def test_parcel_page_shows_legs_modules_and_status(site: Site, page: Page) -> None:
    dialogs, errors = _watch_for_scripts(page)
    response = await page.goto(f"{site.base}/t/{EXPRESS}")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    await expect(page).to_have_title(f"Parcel {EXPRESS}: Out for delivery · Throughline")
    assert await page.get_attribute("html", "lang") == "en"
    for landmark in (
        page.get_by_role("banner"),
        page.get_by_role("main"),
        page.get_by_role("contentinfo"),
        page.get_by_role("search"),
    ):
        await expect(landmark).to_have_count(1)
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Parcel {EXPRESS}")
    summary = page.locator("section.summary")
    await expect(summary.locator(".badge-big")).to_have_text(re.compile("Out for delivery"))
    next_step = summary.get_by_role("region", name="What happens next")
    await expect(next_step.get_by_role("paragraph")).to_have_text(re.compile(r"\w"))
    customs = summary.get_by_role("region", name="Customs")
    await expect(customs).to_match_aria_snapshot(
        '- heading "Customs" [level=2]\n- term: Export customs\n- definition: Cleared\n'
        "- term: Import customs\n- definition: Cleared"
    )
    await expect(summary).to_contain_text("Latest: Out for Delivery, Expected Delivery by 9:00pm")

    legs = page.get_by_role("region", name="Carriers and their tracking numbers")
    await expect(legs.get_by_role("listitem")).to_have_count(2)
    await expect(legs.get_by_role("listitem")).to_have_text(
        [
            re.compile(
                rf"^\s*DHL\s+{EXPRESS}\s+the number you entered\s+"
                r"Status: → In transit\s+last seen in International\s*$"
            ),
            re.compile(
                rf"^\s*USPS\s+{LAST_MILE}\s+Status: → Out for delivery\s+last seen in Destination\s*$"
            ),
        ]
    )

    overview = page.get_by_role("navigation", name="Journey overview")
    await expect(overview.get_by_role("link")).to_have_text(
        [
            re.compile(r"Origin\s*✓ Completed"),
            re.compile(r"International\s*✓ Completed"),
            re.compile(r"Destination\s*→ Out for delivery"),
        ]
    )
    expected = {
        "Origin": ("Completed", "DHL", 2),
        "International": ("Completed", "DHL", 5),
        "Destination": ("Out for delivery", "USPS", 2),
    }
    for title, (status, carrier, count) in expected.items():
        section = page.get_by_role("region", name=title, exact=True)
        await expect(section.get_by_role("heading", level=3)).to_have_accessible_name(title)
        # What a screen reader gets: the status as words, the symbol hidden.
        await expect(section.locator(".module-status")).to_match_aria_snapshot(
            f'- paragraph: "Status: {status}"'
        )
        await expect(section.locator(".carried").last).to_contain_text(f"Carried by {carrier}")
        await expect(section.locator("ol.timeline > li")).to_have_count(count)
    origin = page.get_by_role("region", name="Origin", exact=True)
    await expect(origin).to_contain_text("Last scan status: In transit")

    # Local wall time as written, the UTC instant beside it where it is known.
    picked_up = origin.locator("li", has_text="Shipment picked up")
    await expect(picked_up.locator("time")).to_have_count(2)
    await expect(picked_up.locator("time").first).to_have_attribute(
        "datetime", "2024-03-01T12:00:00+08:00"
    )
    await expect(picked_up.locator("time").first).to_have_text("Fri 1 Mar 2024, 12:00")
    await expect(picked_up).to_contain_text("local time (UTC+08:00)")
    await expect(picked_up.locator("time").last).to_have_attribute(
        "datetime", "2024-03-01T04:00:00Z"
    )

    # Hostile carrier text is shown as text and runs nothing.
    hostile = page.locator("ol.timeline > li", has_text="Customs status updated")
    await expect(hostile.locator(".event-what")).to_have_text(
        f"Customs status updated {SCRIPT}{IMG}"
    )
    await expect(hostile.locator(".event-meta")).to_contain_text(IMG)
    await expect(hostile.locator("time")).to_have_count(1)  # time_basis unknown: no UTC instant
    await expect(hostile.locator(".event-when")).to_have_text(
        re.compile(r"^Sat 2 Mar 2024, 15:30\s+local time\s*$")
    )
    await expect(page.locator("script, img")).to_have_count(0)
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == [] and errors == []
    assert SECRET not in await page.content()

    await page.screenshot(path=ARTIFACTS / "tracking-page.png", full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=ARTIFACTS / "tracking-page-mobile.png", full_page=True)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"


async def test_markup_escapes_carrier_text_and_forbids_scripts(site: Site) -> None:
    async with httpx.AsyncClient(base_url=site.base) as client:
        r = await client.get(f"/t/{EXPRESS}")
    assert r.status_code == 200
    assert "<script" not in r.text.lower() and "<img" not in r.text.lower()
    assert "&lt;script&gt;window.__pwned = 1;" in r.text
    assert "script-src" not in r.headers["content-security-policy"]
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert '<time datetime="2024-03-04T08:10:00-05:00">' in r.text


async def test_search_form_opens_the_timeline_by_any_number(site: Site, page: Page) -> None:
    await page.goto(f"{site.base}/t")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Track a parcel")
    await page.get_by_role("textbox", name="Tracking number").fill("9400 1118 9922 3197 4284 90")
    await page.get_by_role("button", name="Track").click()
    await expect(page).to_have_url(f"{site.base}/t/{LAST_MILE}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Parcel {LAST_MILE}")
    legs = page.get_by_role("region", name="Carriers and their tracking numbers")
    await expect(legs.get_by_role("listitem").nth(1)).to_contain_text("the number you entered")
    # The header's form on a parcel page leads on to another parcel.
    search = page.get_by_role("search")
    await search.get_by_role("textbox", name="Tracking number").fill(f"{EXPRESS[:4]}-{EXPRESS[4:]}")
    await search.get_by_role("button", name="Track").click()
    await expect(page).to_have_url(f"{site.base}/t/{EXPRESS}")


async def test_malformed_numbers_get_a_422_page(site: Site, page: Page) -> None:
    dialogs, _ = _watch_for_scripts(page)
    response = await page.goto(f"{site.base}/t?number=%3Cb%3Ehi%3C%2Fb%3E")
    assert response is not None and response.status == 422
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "That doesn't look like a tracking number"
    )
    field = page.get_by_role("textbox", name="Tracking number")
    await expect(field).to_have_value("<b>hi</b>")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#number-error")).to_contain_text("Malformed tracking number")
    await expect(page.locator("main b")).to_have_count(0)
    await page.screenshot(path=ARTIFACTS / "tracking-page-422.png", full_page=True)
    response = await page.goto(f"{site.base}/t/ZZ9")
    assert response is not None and response.status == 422
    assert dialogs == []


async def test_unknown_number_gets_a_friendly_404(site: Site, page: Page) -> None:
    response = await page.goto(f"{site.base}/t/1111111111")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "We couldn't find parcel 1111111111"
    )
    await expect(page.get_by_role("textbox", name="Tracking number")).to_have_value("1111111111")
    await page.screenshot(path=ARTIFACTS / "tracking-page-404.png", full_page=True)
    await page.get_by_role("textbox", name="Tracking number").fill(LAST_MILE)
    await page.get_by_role("button", name="Track").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Parcel {LAST_MILE}")


async def test_page_and_json_share_the_public_rate_limit(site: Site, page: Page) -> None:
    previous = site.app.state.public_limiter
    site.app.state.public_limiter = RateLimiter(1, burst=2)
    try:
        responses = [await page.goto(f"{site.base}/t/{EXPRESS}") for _ in range(3)]
        assert [r.status if r else None for r in responses] == [200, 200, 429]
        assert responses[-1] is not None
        assert int(await responses[-1].header_value("retry-after") or 0) >= 1
        await expect(page.get_by_role("heading", level=1)).to_have_text("Too many look-ups")
        async with httpx.AsyncClient(base_url=site.base) as client:
            assert (await client.get(f"/v1/tracking/{EXPRESS}")).status_code == 429
    finally:
        site.app.state.public_limiter = previous
