"""The timeline HTTP API on a real database: auth, tenancy, idempotency and every kind of bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.cli.app import create_api_app
from services.cli.runtime import Runtime
from services.simulator.journeys import valid_dhl_express_number
from services.timeline.handlers import record_events
from shared.auth import create_api_key, create_tenant
from shared.db import transaction
from tests.integration.test_ingest import event


@pytest.fixture
async def api(stack: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api_app(stack)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def _key(
    stack: Runtime, name: str, scopes: tuple[str, ...] = ("merchant",)
) -> dict[str, str]:
    async with transaction(stack.sessions) as s:
        tenant = await create_tenant(s, name)
        _, key = await create_api_key(s, tenant.id, scopes)
    return {"Authorization": f"Bearer {key}"}


async def test_registration_is_idempotent_and_tenant_scoped(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    a, b = await _key(stack, "A"), await _key(stack, "B")
    body = {
        "tracking_number": valid_dhl_express_number(1),
        "merchant_reference": "order-9",
        "origin_country": "cn",
        "destination_country": "DE",
    }
    first = await api.post("/v1/shipments", json=body, headers=a)
    assert first.status_code == 201, first.text
    shipment = first.json()
    assert shipment["status"] == "pending" and shipment["origin_country"] == "CN"
    again = await api.post("/v1/shipments", json=body, headers=a)
    assert again.status_code == 200 and again.json()["id"] == shipment["id"]
    assert (await api.get(f"/v1/shipments/{shipment['id']}", headers=a)).status_code == 200
    other = await api.get(f"/v1/shipments/{shipment['id']}", headers=b)
    assert other.status_code == 404  # another tenant's shipment does not exist for B
    theirs = await api.post("/v1/shipments", json=body, headers=b)
    assert theirs.status_code == 201 and theirs.json()["id"] != shipment["id"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Bearer tl_abc_def"},
        {"X-API-Key": ""},
    ],
)
async def test_missing_or_bad_key_is_401(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await api.post("/v1/shipments", json={"tracking_number": "1234567891"}, headers=headers)
    assert r.status_code == 401 and r.json()["detail"]


async def test_bad_requests_say_what_to_fix(stack: Runtime, api: httpx.AsyncClient) -> None:
    h = await _key(stack, "A")
    cases = [
        ({"tracking_number": "1234567891", "carrier": "pigeon"}, "unknown carrier"),
        ({"tracking_number": "12<script>"}, "malformed tracking number"),
        ({"tracking_number": "ZZ99"}, "malformed tracking number"),
        ({"tracking_number": "ABCDEFGHIJK"}, "pass 'carrier'"),
        ({"tracking_number": "1234567891", "origin_country": "China"}, "origin_country"),
        ({"tracking_number": "1234567891", "surprise": 1}, "surprise"),
        ({}, "tracking_number"),
    ]
    for body, expected in cases:
        r = await api.post("/v1/shipments", json=body, headers=h)
        assert r.status_code == 422, (body, r.text)
        assert expected in r.json()["detail"], (body, r.json())


async def test_invalid_json_and_oversize_bodies(stack: Runtime, api: httpx.AsyncClient) -> None:
    h = {**await _key(stack, "A"), "content-type": "application/json"}
    r = await api.post("/v1/shipments", content=b"{not json", headers=h)
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    big = b'{"tracking_number": "' + b"1" * (stack.settings.max_body_bytes + 10) + b'"}'
    r = await api.post("/v1/shipments", content=big, headers=h)
    assert r.status_code == 413 and "limited" in r.json()["detail"]


async def test_public_tracking_is_grouped_and_has_no_merchant_data(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    h = await _key(stack, "A")
    number = valid_dhl_express_number(2)
    await api.post(
        "/v1/shipments",
        json={"tracking_number": number, "merchant_reference": "SECRET-REF"},
        headers=h,
    )
    async with transaction(stack.sessions) as s:
        await record_events(s, [event(number, 1), event(number, 2)])
    r = await api.get(f"/v1/tracking/{number}")
    assert r.status_code == 200
    body = r.json()
    assert [m["module"] for m in body["modules"]] == ["origin", "international", "destination"]
    assert sum(len(m["events"]) for m in body["modules"]) == 2
    assert "SECRET-REF" not in r.text and "tenant" not in r.text and "postal_code" not in r.text
    assert (await api.get("/v1/tracking/1111111111")).status_code == 404
    assert (await api.get("/v1/tracking/%3Cb%3E")).status_code == 422


async def test_public_tracking_is_rate_limited(stack: Runtime, api: httpx.AsyncClient) -> None:
    statuses = [(await api.get("/v1/tracking/1111111111")).status_code for _ in range(60)]
    assert 429 in statuses and statuses[0] == 404
    r = await api.get("/v1/tracking/1111111111")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


async def test_health_readiness_and_openapi(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).json() == {"status": "ready"}
    spec = (await api.get("/openapi.json")).json()
    assert {
        "/v1/shipments",
        "/v1/shipments/{shipment_id}",
        "/v1/tracking/{tracking_number}",
    } <= set(spec["paths"])
