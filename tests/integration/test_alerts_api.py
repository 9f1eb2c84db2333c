"""The operator API on the real stack: scope, tenancy, filters, cursor pages, the alert lifecycle,
counts, carrier health and tenant rules."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

import services.cli as cli
from services.alerts.models import CARRIER, CarrierHealth
from services.cli.runtime import Runtime
from shared.db import transaction, utcnow
from shared.schema import TOPIC_ALERTS, AlertChange, decode
from tests.integration.alerting import Tenant, bearer, client, new_alert, new_shipment, new_tenant


@pytest.fixture
async def api(stack: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client(stack) as c:
        yield c


async def _ids(api: httpx.AsyncClient, t: Tenant, **params: Any) -> list[str]:
    r = await api.get("/v1/alerts", params=params, headers=t.headers)
    assert r.status_code == 200, r.text
    return [a["id"] for a in r.json()["data"]]


async def test_alerts_need_the_operator_scope(stack: Runtime, api: httpx.AsyncClient) -> None:
    t = await new_tenant(stack, "A")
    alert = await new_alert(stack, t.id)
    calls = [
        ("GET", "/v1/alerts"),
        ("GET", "/v1/alerts/counts"),
        ("GET", "/v1/alerts/rules"),
        ("GET", "/v1/carriers/health"),
        ("GET", f"/v1/alerts/{alert.id}"),
        ("POST", f"/v1/alerts/{alert.id}/acknowledge"),
        ("POST", "/v1/alerts/stream-token"),
        ("GET", "/v1/alerts/stream"),
    ]
    for method, path in calls:
        r = await api.request(method, path, headers=bearer(t.merchant))
        assert r.status_code == 403, (path, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == "this API key lacks the 'operator' scope"
        anonymous = await api.request(method, path)
        assert anonymous.status_code == 401, path
    # The refused acknowledgement changed nothing.
    r = await api.get(f"/v1/alerts/{alert.id}", headers=t.headers)
    assert r.status_code == 200 and r.json()["state"] == "open"


async def test_a_tenant_sees_nothing_of_another(stack: Runtime, api: httpx.AsyncClient) -> None:
    a, b = await new_tenant(stack, "A"), await new_tenant(stack, "B")
    theirs = await new_alert(stack, a.id, rule_key="no_pickup", carrier="ups")
    mine = await new_alert(stack, b.id)
    assert await _ids(api, b) == [str(mine.id)]
    assert await _ids(api, a) == [str(theirs.id)]
    assert (await api.get(f"/v1/alerts/{theirs.id}", headers=b.headers)).status_code == 404
    for action in ("acknowledge", "resolve"):
        r = await api.post(f"/v1/alerts/{theirs.id}/{action}", headers=b.headers)
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = await api.post(
        f"/v1/alerts/{theirs.id}/snooze", json={"duration_s": 3600}, headers=b.headers
    )
    assert r.status_code == 404
    counts = (await api.get("/v1/alerts/counts", headers=b.headers)).json()
    assert counts["total"] == 1 and counts["by_carrier"] == [{"key": "dhl", "count": 1}]
    assert counts["carrier_wide"] == 0
    assert (await api.get(f"/v1/alerts/{theirs.id}", headers=a.headers)).json()["state"] == "open"


async def test_carrier_wide_alerts_reach_every_tenant_read_only(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    a, b = await new_tenant(stack, "A"), await new_tenant(stack, "B")
    theirs = await new_alert(stack, a.id, rule_key="no_pickup", carrier="ups")
    mine = await new_alert(stack, b.id, tracking_number="LX123456789CN")
    wide = await new_alert(
        stack,
        None,
        kind=CARRIER,
        rule_key="carrier_errors",
        severity="critical",
        shipment_id=None,
        carrier="ups",
        lane=None,
        module=None,
        status=None,
        opened_at=utcnow() + timedelta(seconds=1),
    )
    # Both tenants see it, newest first, marked carrier-wide; no tenant's data comes with it.
    assert await _ids(api, b) == [str(wide.id), str(mine.id)]
    assert await _ids(api, a) == [str(wide.id), str(theirs.id)]
    page = (await api.get("/v1/alerts", headers=b.headers)).json()["data"]
    shown = {x["id"]: x for x in page}
    assert shown[str(wide.id)]["carrier_wide"] is True
    assert shown[str(wide.id)]["kind"] == "carrier"
    assert shown[str(wide.id)]["shipment_id"] is None
    assert shown[str(wide.id)]["tracking_number"] is None
    assert shown[str(mine.id)]["carrier_wide"] is False
    assert shown[str(mine.id)]["tracking_number"] == "LX123456789CN"
    assert await _ids(api, b, kind="carrier") == [str(wide.id)]
    assert await _ids(api, b, kind="shipment") == [str(mine.id)]
    bad = await api.get("/v1/alerts", params={"kind": "parcel"}, headers=b.headers)
    assert bad.status_code == 422
    one = await api.get(f"/v1/alerts/{wide.id}", headers=a.headers)
    assert one.status_code == 200 and one.json()["carrier_wide"] is True

    counts = (await api.get("/v1/alerts/counts", headers=b.headers)).json()
    assert counts["total"] == 2 and counts["carrier_wide"] == 1
    assert {(c["key"], c["count"]) for c in counts["by_carrier"]} == {("ups", 1), ("dhl", 1)}
    assert {(c["key"], c["count"]) for c in counts["by_rule"]} == {
        ("carrier_errors", 1), ("in_transit", 1),
    }  # fmt: skip

    # A tenant's key cannot change it: it is every tenant's, and the scan resolves it.
    calls = [("acknowledge", None), ("snooze", {"duration_s": 3600}), ("resolve", None)]
    for action, body in calls:
        r = await api.post(f"/v1/alerts/{wide.id}/{action}", json=body, headers=b.headers)
        assert r.status_code == 403, (action, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"] == (
            "carrier-wide alerts are managed by the platform; "
            "they resolve by themselves when the carrier recovers"
        )
    after = (await api.get(f"/v1/alerts/{wide.id}", headers=b.headers)).json()
    assert after["state"] == "open" and after["updated_at"] == one.json()["updated_at"]


async def test_filters(stack: Runtime, api: httpx.AsyncClient) -> None:
    t = await new_tenant(stack, "A")
    now = utcnow()
    number = "JD014600006281230578"
    shipment = await new_shipment(stack, t.id, number, carrier="yunexpress")
    rows = {
        "old_cn_us": await new_alert(stack, t.id, opened_at=now - timedelta(days=3), silent_since=now - timedelta(days=10)),
        "gb": await new_alert(stack, t.id, lane="CN-GB", carrier="royal-mail", module="destination", rule_key="handoff_black_hole", severity="critical"),
        "customs": await new_alert(stack, t.id, rule_key="import_customs_held", module="international", shipment_id=shipment, tracking_number=number, carrier="yunexpress", silent_since=now - timedelta(hours=50)),
        "acked": await new_alert(stack, t.id, state="acknowledged", acknowledged_at=now),
        "done": await new_alert(stack, t.id, state="resolved", resolved_at=now),
    }  # fmt: skip
    ids = {k: str(v.id) for k, v in rows.items()}

    unresolved = await _ids(api, t)
    assert set(unresolved) == {ids["old_cn_us"], ids["gb"], ids["customs"], ids["acked"]}
    assert unresolved[-1] == ids["old_cn_us"]  # newest opened first
    assert await _ids(api, t, state="resolved") == [ids["done"]]
    both = await _ids(api, t, state=["acknowledged", "resolved"])
    assert set(both) == {ids["acked"], ids["done"]}
    assert await _ids(api, t, lane="cn-gb") == [ids["gb"]]
    assert await _ids(api, t, carrier="Royal-Mail") == [ids["gb"]]
    assert await _ids(api, t, rule="import_customs_held") == [ids["customs"]]
    assert set(await _ids(api, t, module="international")) == {
        ids["old_cn_us"], ids["customs"], ids["acked"],
    }  # fmt: skip
    assert await _ids(api, t, severity="critical") == [ids["gb"]]
    assert await _ids(api, t, shipment_id=str(shipment)) == [ids["customs"]]
    assert set(await _ids(api, t, min_age_s=9 * 86400)) == {ids["old_cn_us"]}
    assert set(await _ids(api, t, min_age_s=2 * 86400)) == {
        ids["old_cn_us"], ids["customs"], ids["gb"], ids["acked"],
    }  # fmt: skip

    (item,) = (
        await api.get("/v1/alerts", params={"rule": "import_customs_held"}, headers=t.headers)
    ).json()["data"]
    assert item["tracking_number"] == number and item["shipment_id"] == str(shipment)
    assert "merchant_reference" not in item and f"ORDER-{number}" not in str(item)

    for params, field in (
        ({"state": "closed"}, "state"),
        ({"min_age_s": -1}, "min_age_s"),
        ({"limit": 0}, "limit"),
    ):
        r = await api.get("/v1/alerts", params=params, headers=t.headers)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        assert field in r.json()["detail"]  # fmt: skip


async def test_cursor_pages_stay_stable_while_alerts_open(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    t = await new_tenant(stack, "A")
    now = utcnow()
    same = now - timedelta(hours=1)  # several alerts opened in the same instant: the id breaks ties
    made = [await new_alert(stack, t.id, opened_at=same) for _ in range(4)]
    made += [await new_alert(stack, t.id, opened_at=now - timedelta(hours=h)) for h in (2, 3, 4)]
    expected = [str(a.id) for a in sorted(made, key=lambda a: (a.opened_at, a.id), reverse=True)]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/v1/alerts", params=params, headers=t.headers)).json()
        seen += [a["id"] for a in body["data"]]
        pages += 1
        if pages == 1:  # alerts opening meanwhile land before the cursor, not in later pages
            await new_alert(stack, t.id, opened_at=utcnow())
            await new_alert(stack, t.id, opened_at=same)  # same instant, but a new id
        cursor = body["next_cursor"]
        if cursor is None:
            break
    newcomers = set(await _ids(api, t, limit=50)) - set(expected)
    assert len(newcomers) == 2
    assert [s for s in seen if s not in newcomers] == expected
    assert len(seen) == len(set(seen)) and pages == 3

    r = await api.get("/v1/alerts", params={"cursor": "not-a-cursor"}, headers=t.headers)
    assert r.status_code == 422 and "cursor" in r.json()["detail"]


async def _published(stack: Runtime, count: int) -> list[AlertChange]:
    topic = stack.settings.topic(TOPIC_ALERTS)
    out: list[AlertChange] = []
    async with stack.bus.consumer("alerts-api-test", [topic]) as consumer:
        for _ in range(100):
            for record in await consumer.poll(100, 200):
                message = decode(record.value)
                assert isinstance(message, AlertChange)
                out.append(message)
            if len(out) >= count:
                break
    return out


async def test_acknowledge_snooze_resolve(stack: Runtime, api: httpx.AsyncClient) -> None:
    t = await new_tenant(stack, "A")
    alert = await new_alert(stack, t.id)
    path = f"/v1/alerts/{alert.id}"

    r = await api.post(f"{path}/acknowledge", headers=t.headers)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["acknowledged_at"] and r.json()["updated_at"] > alert.updated_at.isoformat()
    again = await api.post(f"{path}/acknowledge", headers=t.headers)
    assert again.status_code == 200 and again.json()["updated_at"] == r.json()["updated_at"]

    before = utcnow()
    r = await api.post(f"{path}/snooze", json={"duration_s": 7200}, headers=t.headers)
    assert r.status_code == 200 and r.json()["state"] == "snoozed"
    until = datetime.fromisoformat(r.json()["snoozed_until"])
    assert timedelta(seconds=7190) < until - before < timedelta(seconds=7210)
    later = (utcnow() + timedelta(days=2)).isoformat()
    r = await api.post(f"{path}/snooze", json={"until": later}, headers=t.headers)
    assert r.status_code == 200 and r.json()["snoozed_until"][:16] == later[:16]

    bad_snoozes: list[tuple[dict[str, Any], str]] = [
        ({}, "exactly one"),
        ({"until": later, "duration_s": 60}, "exactly one"),
        ({"until": (utcnow() - timedelta(hours=1)).isoformat()}, "future"),
        ({"until": "2030-01-01T00:00:00"}, "time zone"),
        ({"until": (utcnow() + timedelta(days=31)).isoformat()}, "30 days"),
        ({"duration_s": 10}, "duration_s"),
    ]
    for body, words in bad_snoozes:
        r = await api.post(f"{path}/snooze", json=body, headers=t.headers)
        assert r.status_code == 422 and words in r.json()["detail"], (body, r.text)

    r = await api.post(f"{path}/acknowledge", headers=t.headers)
    assert r.json()["state"] == "acknowledged" and r.json()["snoozed_until"] is None
    r = await api.post(
        f"{path}/resolve", json={"reason": "parcel found at the hub"}, headers=t.headers
    )
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    assert r.json()["resolved_reason"] == "parcel found at the hub"
    for action, body in (("acknowledge", None), ("snooze", {"duration_s": 600}), ("resolve", None)):
        r = await api.post(f"{path}/{action}", json=body, headers=t.headers)
        assert r.status_code == 409 and "already resolved" in r.json()["detail"]
    assert (
        await api.post(f"/v1/alerts/{uuid.uuid4()}/resolve", headers=t.headers)
    ).status_code == 404

    changes = await _published(stack, 5)
    assert [c.change for c in changes] == [
        "acknowledged", "snoozed", "snoozed", "acknowledged", "resolved",
    ]  # fmt: skip
    assert {c.alert_id for c in changes} == {alert.id} and changes[-1].by
    assert changes[-1].reason == "parcel found at the hub"


async def test_counts_by_rule_carrier_and_lane(stack: Runtime, api: httpx.AsyncClient) -> None:
    t = await new_tenant(stack, "A")
    for rule, carrier, lane in [
        ("in_transit", "dhl", "CN-US"),
        ("in_transit", "dhl", "CN-US"),
        ("in_transit", "ups", "DE-US"),
        ("no_pickup", "4px", "CN-GB"),
    ]:
        await new_alert(stack, t.id, rule_key=rule, carrier=carrier, lane=lane)
    await new_alert(stack, t.id, rule_key="no_pickup", state="resolved", resolved_at=utcnow())
    c = (await api.get("/v1/alerts/counts", headers=t.headers)).json()
    assert c["total"] == 4
    assert c["by_rule"] == [{"key": "in_transit", "count": 3}, {"key": "no_pickup", "count": 1}]
    assert c["by_carrier"] == [
        {"key": "dhl", "count": 2}, {"key": "4px", "count": 1}, {"key": "ups", "count": 1},
    ]  # fmt: skip
    assert c["by_lane"][0] == {"key": "CN-US", "count": 2} and len(c["by_lane"]) == 3
    resolved = (
        await api.get("/v1/alerts/counts", params={"state": "resolved"}, headers=t.headers)
    ).json()
    assert resolved["total"] == 1 and resolved["by_rule"] == [{"key": "no_pickup", "count": 1}]


async def test_carrier_health(stack: Runtime, api: httpx.AsyncClient) -> None:
    t = await new_tenant(stack, "A")
    now = utcnow()
    async with transaction(stack.sessions) as s:
        for carrier, polls, errors in (
            ("dhl", 100, 1),
            ("ups", 40, 30),
            ("usps", 0, 0),
            ("upu", 4, 4),
            ("fedex", 50, 0),
        ):
            s.add(CarrierHealth(
                carrier=carrier, polls=polls, errors=errors,
                error_rate=errors / polls if polls else None,
                latency_ms_avg=120.0 if polls else None, latency_ms_max=900 if polls else None,
                last_ok_at=now if polls > errors else None, last_error="HTTP 503" if errors else None,
                active_shipments=12, window_s=900.0, checked_at=now,
            ))  # fmt: skip
    await new_alert(stack, None, kind=CARRIER, rule_key="carrier_silent", severity="warning", shipment_id=None, carrier="fedex", lane=None)  # fmt: skip
    r = await api.get("/v1/carriers/health", headers=t.headers)
    assert r.status_code == 200
    body = r.json()
    by = {c["carrier"]: c for c in body["data"]}
    assert body["window_s"] == 900
    assert {k: v["health"] for k, v in by.items()} == {
        "dhl": "ok", "ups": "down", "usps": "idle", "fedex": "degraded",
        "upu": "degraded",  # every poll failed, but too few polls to call it down
    }  # fmt: skip
    assert by["fedex"]["open_alerts"] == ["carrier_silent"] and by["dhl"]["open_alerts"] == []
    assert by["ups"]["error_rate"] == pytest.approx(0.75) and by["ups"]["last_error"] == "HTTP 503"
    assert "active_shipments" not in by["dhl"]  # other tenants' volume is not one tenant's business


async def test_tenant_rules(stack: Runtime, api: httpx.AsyncClient) -> None:
    a, b = await new_tenant(stack, "A"), await new_tenant(stack, "B")
    r = await api.get("/v1/alerts/rules", headers=a.headers)
    assert r.status_code == 200 and r.json()["tenant"] == []
    defaults = {x["rule"]["key"]: x for x in r.json()["effective"]}
    assert defaults["in_transit"]["source"] == "default"

    body = {
        "rules": [
            {"key": "in_transit", "status": "in_transit", "max_silence_s": 86400, "severity": "critical"},
            {"key": "cn_us_linehaul", "substatus": "departed_origin_country", "lane_origin": "cn",
             "lane_destination": "US", "max_silence_s": 10 * 86400},
        ]
    }  # fmt: skip
    r = await api.put("/v1/alerts/rules", json=body, headers=a.headers)
    assert r.status_code == 200, r.text
    effective = {x["rule"]["key"]: x for x in r.json()["effective"]}
    assert effective["in_transit"]["source"] == "tenant"
    assert effective["in_transit"]["rule"]["max_silence_s"] == 86400
    assert effective["cn_us_linehaul"]["rule"]["lane_origin"] == "CN"
    assert r.json()["effective"][0]["rule"]["key"] == "cn_us_linehaul"  # most specific first
    assert {x["key"] for x in r.json()["tenant"]} == {"in_transit", "cn_us_linehaul"}
    # The other tenant still has the defaults.
    other = (await api.get("/v1/alerts/rules", headers=b.headers)).json()
    assert other["tenant"] == []
    assert {x["rule"]["key"]: x["source"] for x in other["effective"]}["in_transit"] == "default"

    bad = [
        (
            {"rules": [{"key": "x", "max_silence_s": 60}]},
            "at least one of module, status, substatus",
        ),
        ({"rules": [{"key": "x", "status": "delivered", "max_silence_s": 60}]}, "cannot go stale"),
        ({"rules": [{"key": "Bad Key", "status": "in_transit", "max_silence_s": 60}]}, "key"),
        ({"rules": [{"key": "x", "status": "in_transit", "max_silence_s": -5}]}, "max_silence_s"),
        (
            {"rules": [{"key": "x", "status": "in_transit", "max_silence_s": 5}] * 2},
            "duplicate rule keys",
        ),
    ]
    for payload, words in bad:
        r = await api.put("/v1/alerts/rules", json=payload, headers=a.headers)
        assert r.status_code == 422 and words in r.json()["detail"], (payload, r.text)
    assert len((await api.get("/v1/alerts/rules", headers=a.headers)).json()["tenant"]) == 2

    r = await api.put("/v1/alerts/rules", json={"rules": []}, headers=a.headers)
    assert r.status_code == 200 and r.json()["tenant"] == []


async def test_cli_creates_an_operator_key(
    stack: Runtime, api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    t = await new_tenant(stack, "A")
    args = argparse.Namespace(tenant_id=t.id, scopes="operator")
    assert await asyncio.to_thread(cli._keys_create, stack.settings, args) == 0
    key = capsys.readouterr().out.split()[2]
    assert key.startswith("tl_")
    assert (await api.get("/v1/alerts", headers=bearer(key))).status_code == 200
    assert (await api.get("/v1/keys", headers=bearer(key))).status_code == 403


async def test_openapi_describes_the_operator_api(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    paths = spec["paths"]
    operations = {
        ("get", "/v1/alerts"),
        ("get", "/v1/alerts/counts"),
        ("get", "/v1/alerts/rules"),
        ("put", "/v1/alerts/rules"),
        ("get", "/v1/alerts/{alert_id}"),
        ("post", "/v1/alerts/{alert_id}/acknowledge"),
        ("post", "/v1/alerts/{alert_id}/snooze"),
        ("post", "/v1/alerts/{alert_id}/resolve"),
        ("post", "/v1/alerts/stream-token"),
        ("get", "/v1/alerts/stream"),
        ("get", "/v1/carriers/health"),
    }
    for method, path in operations:
        op = paths[path][method]
        assert {"401", "403"} <= set(op["responses"]), (method, path)
    stream = paths["/v1/alerts/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    params = {p["name"] for p in stream["parameters"]}
    assert {"token", "last_event_id", "Last-Event-ID"} <= params
    snooze = paths["/v1/alerts/{alert_id}/snooze"]["post"]
    assert snooze["responses"]["409"]["description"] == "the alert is already resolved"
    filters = {p["name"] for p in paths["/v1/alerts"]["get"]["parameters"]}
    assert {"state", "rule", "carrier", "lane", "module", "min_age_s", "cursor", "limit"} <= filters
    assert "/ops" not in paths  # the console is a page, not part of the API
