"""The merchant API on the real stack: keys, tenancy on every endpoint, rate limits, bulk
registration, the CSV import, and the webhooks API (SSRF, delivery log, replay, test events)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

import services.cli as cli
from services.cli.accounts import list_keys, revoke_key
from services.cli.app import create_api_app
from services.cli.runtime import Runtime, serve
from services.merchants.importer import ImportFailed, import_csv
from services.simulator.journeys import valid_dhl_express_number
from tests.integration import hooks
from tests.integration.receiver import Receiver, always, ok


def _client(rt: Runtime) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_api_app(rt))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


@pytest.fixture
async def api(stack: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(stack) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_keys_are_shown_once_rotated_and_revoked(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    _, key = await hooks.new_tenant(stack, "A")
    listed = (await api.get("/v1/keys", headers=bearer(key))).json()["data"]
    assert len(listed) == 1 and listed[0]["current"] and listed[0]["active"]
    assert "key" not in listed[0] and key.startswith(listed[0]["prefix"])

    made = await api.post("/v1/keys", json={"scopes": ["merchant"]}, headers=bearer(key))
    assert made.status_code == 201 and made.json()["key"].startswith("tl_")
    second = made.json()
    assert (await api.get("/v1/keys", headers=bearer(second["key"]))).status_code == 200
    escalate = await api.post("/v1/keys", json={"scopes": ["operator"]}, headers=bearer(key))
    assert escalate.status_code == 403 and "operator" in escalate.json()["detail"]

    rotated = await api.post(
        f"/v1/keys/{second['id']}/rotate", json={"expires_in_s": 3600}, headers=bearer(key)
    )
    assert rotated.status_code == 201
    third = rotated.json()
    assert third["scopes"] == ["merchant"] and third["key"] != second["key"]
    # In its grace period the old key still works; the listing says when it stops.
    assert (await api.get("/v1/keys", headers=bearer(second["key"]))).status_code == 200
    by_id = {k["id"]: k for k in (await api.get("/v1/keys", headers=bearer(key))).json()["data"]}
    assert by_id[second["id"]]["revoked_at"] and by_id[second["id"]]["active"]

    assert (await api.delete(f"/v1/keys/{second['id']}", headers=bearer(key))).status_code == 204
    gone = await api.get("/v1/keys", headers=bearer(second["key"]))
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    now_rotated = await api.post(f"/v1/keys/{third['id']}/rotate", headers=bearer(key))
    assert now_rotated.status_code == 201  # no grace: the old one stops at once
    assert (await api.get("/v1/keys", headers=bearer(third["key"]))).status_code == 401
    fourth = now_rotated.json()
    assert (await api.delete(f"/v1/keys/{fourth['id']}", headers=bearer(key))).status_code == 204
    last = await api.delete(f"/v1/keys/{listed[0]['id']}", headers=bearer(key))
    assert last.status_code == 409 and "last active key" in last.json()["detail"]


async def test_tenant_b_sees_nothing_of_tenant_a(stack: Runtime, receiver: Receiver) -> None:
    rt = hooks.tuned(stack)
    async with _client(rt) as api:
        _, a = await hooks.new_tenant(rt, "A")
        _, b = await hooks.new_tenant(rt, "B")
        A, B = bearer(a), bearer(b)
        number = valid_dhl_express_number(11)
        shipment = await api.post("/v1/shipments", json={"tracking_number": number}, headers=A)
        shipment_id = shipment.json()["id"]
        key_id = (await api.post("/v1/keys", headers=A)).json()["id"]
        ep = await api.post("/v1/webhook-endpoints", json={"url": receiver.on("/a", ok)}, headers=A)
        assert ep.status_code == 201, ep.text
        ep_id = ep.json()["id"]
        delivery_id = (await api.post(f"/v1/webhook-endpoints/{ep_id}/test", headers=A)).json()[
            "id"
        ]

        since = {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
        usps = "9405803699300124287899"
        attempts: list[tuple[str, str, Any]] = [
            ("GET", f"/v1/shipments/{shipment_id}", None),
            (
                "POST",
                f"/v1/shipments/{shipment_id}/legs",
                {"carrier": "usps", "tracking_number": usps},
            ),
            ("DELETE", f"/v1/keys/{key_id}", None),
            ("POST", f"/v1/keys/{key_id}/rotate", None),
            ("GET", f"/v1/webhook-endpoints/{ep_id}", None),
            ("PATCH", f"/v1/webhook-endpoints/{ep_id}", {"enabled": False}),
            ("GET", f"/v1/webhook-endpoints/{ep_id}/secret", None),
            ("POST", f"/v1/webhook-endpoints/{ep_id}/secret/rotate", None),
            ("POST", f"/v1/webhook-endpoints/{ep_id}/test", None),
            ("POST", f"/v1/webhook-endpoints/{ep_id}/replay", since),
            ("DELETE", f"/v1/webhook-endpoints/{ep_id}", None),
            ("GET", f"/v1/webhook-deliveries/{delivery_id}", None),
            ("POST", f"/v1/webhook-deliveries/{delivery_id}/replay", None),
        ]
        for method, path, body in attempts:
            r = await api.request(method, path, json=body, headers=B)
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert str(ep_id) not in r.text or "no webhook endpoint" in r.text
        keys = (await api.get("/v1/keys", headers=B)).json()["data"]
        assert key_id not in {k["id"] for k in keys} and len(keys) == 1
        assert (await api.get("/v1/webhook-endpoints", headers=B)).json()["data"] == []
        for query in ("", f"?endpoint_id={ep_id}", "?status=pending"):
            page = (await api.get(f"/v1/webhook-deliveries{query}", headers=B)).json()
            assert page == {"data": [], "next_cursor": None}
        bulk = await api.post(
            "/v1/shipments/bulk", json={"shipments": [{"tracking_number": number}]}, headers=B
        )
        assert bulk.json()["results"][0]["status"] == "created"  # B's own, not A's
        assert bulk.json()["results"][0]["shipment_id"] != shipment_id
        # A's objects are untouched.
        assert (await api.get(f"/v1/webhook-endpoints/{ep_id}", headers=A)).json()["enabled"]
        assert (await api.get("/v1/keys", headers=A)).status_code == 200
        assert (
            await api.get(f"/v1/webhook-deliveries/{delivery_id}", headers=A)
        ).status_code == 200


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


async def test_rate_limit_headers_and_429(stack: Runtime) -> None:
    rt = hooks.tuned(stack, merchant_rate_burst=5, merchant_rate_per_minute=60)
    async with _client(rt) as api:
        _, a = await hooks.new_tenant(rt, "A")
        _, b = await hooks.new_tenant(rt, "B")
        answers = [await api.get("/v1/keys", headers=bearer(a)) for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 5 + [429]
        assert [int(r.headers["RateLimit-Remaining"]) for r in answers[:5]] == [4, 3, 2, 1, 0]
        assert all(r.headers["RateLimit-Limit"] == "5" for r in answers)
        assert 1 <= int(answers[0].headers["RateLimit-Reset"]) <= 5
        limited = answers[-1]
        assert limited.headers["Retry-After"] == "1" and "limited" in limited.json()["detail"]
        assert limited.headers["content-type"] == "application/problem+json"
        # Errors carry the headers too, and another key has its own bucket.
        missing = await api.get(f"/v1/webhook-endpoints/{uuid.uuid4()}", headers=bearer(b))
        assert missing.status_code == 404 and missing.headers["RateLimit-Remaining"] == "4"
        await asyncio.sleep(1.05)
        assert (await api.get("/v1/keys", headers=bearer(a))).status_code == 200


async def test_bulk_registration_answers_per_row(stack: Runtime, api: httpx.AsyncClient) -> None:
    _, key = await hooks.new_tenant(stack, "A")
    known = valid_dhl_express_number(21)
    await api.post("/v1/shipments", json={"tracking_number": known}, headers=bearer(key))
    fresh = valid_dhl_express_number(22)
    rows: list[Any] = [
        {"tracking_number": fresh, "merchant_reference": "o-1", "destination_country": "de"},
        {"tracking_number": known},
        {"tracking_number": fresh},  # the same again in one request
        {"tracking_number": "12<script>"},
        {"tracking_number": "1234567891", "carrier": "pigeon"},
        {"tracking_number": fresh, "surprise": 1},
        "not an object",
        {"tracking_number": valid_dhl_express_number(23), "carrier": "dhl"},
    ]
    r = await api.post("/v1/shipments/bulk", json={"shipments": rows}, headers=bearer(key))
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [x["status"] for x in body["results"]]
    assert statuses == [
        "created",
        "existing",
        "existing",
        "error",
        "error",
        "error",
        "error",
        "created",
    ]
    assert (body["created"], body["existing"], body["errors"]) == (2, 2, 4)
    assert [x["index"] for x in body["results"]] == list(range(8))
    errors = [x["error"] for x in body["results"] if x["status"] == "error"]
    assert "malformed tracking number" in errors[0] and "unknown carrier" in errors[1]
    assert "surprise" in errors[2] and "valid dictionary" in errors[3]
    first = body["results"][0]
    assert first["carrier"] == "dhl" and first["tracking_number"] == fresh
    got = await api.get(f"/v1/shipments/{first['shipment_id']}", headers=bearer(key))
    assert got.json()["destination_country"] == "DE"
    assert body["results"][2]["shipment_id"] == first["shipment_id"]
    too_many = {"shipments": [{"tracking_number": fresh}] * 1001}
    r = await api.post("/v1/shipments/bulk", json=too_many, headers=bearer(key))
    assert r.status_code == 422 and "shipments" in r.json()["detail"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_csv_import_through_the_api(stack: Runtime, tmp_path: Path) -> None:
    _, key = await hooks.new_tenant(stack, "A")
    port = _free_port()
    stop = asyncio.Event()
    server = asyncio.create_task(serve(create_api_app(stack), "127.0.0.1", port, stop))
    try:
        await hooks.eventually(lambda: _up(port), 10, "api up")
        numbers = [valid_dhl_express_number(30 + i) for i in range(5)]
        lines = ["tracking_number,carrier,merchant_reference,destination_country"]
        lines += [f"{n},dhl,order-{i},GB" for i, n in enumerate(numbers)]
        lines += ["", "bad<number>,,,", f"{numbers[0]},,again,"]
        csv_file = tmp_path / "shipments.csv"
        csv_file.write_text("\n".join(lines) + "\n")
        out, progress = io.StringIO(), io.StringIO()
        summary = await import_csv(
            csv_file, f"http://127.0.0.1:{port}", key, out=out, progress=progress, batch=3
        )
        assert (summary.rows, summary.created, summary.existing, summary.errors) == (7, 5, 1, 1)
        results = out.getvalue().splitlines()
        assert results[0] == "line,status,shipment_id,carrier,tracking_number,error"
        assert results[1].startswith("2,created,") and results[1].endswith(f",dhl,{numbers[0]},")
        assert results[6].startswith("8,error,") and "malformed tracking number" in results[6]
        assert results[7].startswith("9,existing,")
        bars = progress.getvalue().splitlines()
        assert len(bars) == 3 and bars[-1].startswith("[" + "#" * 30 + "] 7/7 100%")
        again = io.StringIO()
        second = await import_csv(
            csv_file, f"http://127.0.0.1:{port}", key, out=again, progress=io.StringIO()
        )
        assert (second.created, second.existing, second.errors) == (0, 6, 1)  # idempotent
        # The command itself: results on stdout, a non-zero exit when a row failed.
        args = argparse.Namespace(
            file=csv_file, api_url=f"http://127.0.0.1:{port}", api_key=key, batch=500
        )
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
            code = await asyncio.to_thread(cli._import, stack.settings, args)
        assert code == 1 and stdout.getvalue().count(",existing,") == 6
        bad = tmp_path / "bad.csv"
        bad.write_text("number,carrier\n1,dhl\n")
        with pytest.raises(ImportFailed, match="tracking_number"):
            await import_csv(bad, f"http://127.0.0.1:{port}", key, out=out, progress=progress)
        with pytest.raises(ImportFailed, match="401"):
            await import_csv(
                csv_file, f"http://127.0.0.1:{port}", "tl_x_y", out=out, progress=progress
            )
    finally:
        stop.set()
        await server


async def _up(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as c:
            return (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_private_urls_are_refused_with_a_clear_message(
    stack: Runtime, api: httpx.AsyncClient
) -> None:
    _, key = await hooks.new_tenant(stack, "A")
    for url, why in [
        ("http://10.0.0.5/hook", "10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address (cloud metadata"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://[fd00::1]/hook", "unique-local"),
        ("http://100.64.1.1/", "carrier-grade NAT"),
        ("ftp://shop.example/hook", "http or https"),
    ]:
        r = await api.post("/v1/webhook-endpoints", json={"url": url}, headers=bearer(key))
        assert r.status_code == 422, (url, r.text)
        assert why in r.json()["detail"], (url, r.json())
    r = await api.post(
        "/v1/webhook-endpoints",
        json={"url": "https://shop.example/x", "event_types": ["shipment.teleported"]},
        headers=bearer(key),
    )
    assert r.status_code == 422 and "shipment.teleported" in r.json()["detail"]
    assert (await api.get("/v1/webhook-endpoints", headers=bearer(key))).json()["data"] == []


async def test_endpoint_lifecycle_log_and_replay(stack: Runtime, receiver: Receiver) -> None:
    rt = hooks.tuned(stack)
    async with _client(rt) as api:
        tenant, key = await hooks.new_tenant(rt, "A")
        h = bearer(key)
        made = await api.post(
            "/v1/webhook-endpoints",
            json={"url": receiver.on("/hook", always(500)), "description": "shop",
                  "event_types": ["shipment.delivered"]},
            headers=h,
        )  # fmt: skip
        assert made.status_code == 201
        ep = made.json()
        assert ep["secret"].startswith("whsec_") and ep["enabled"] and ep["disabled_reason"] is None
        types = (await api.get("/v1/webhook-event-types", headers=h)).json()
        assert "shipment.leg_added" in {t["type"] for t in types}
        secret = (await api.get(f"/v1/webhook-endpoints/{ep['id']}/secret", headers=h)).json()
        assert secret["secret"] == ep["secret"]
        rotated = await api.post(f"/v1/webhook-endpoints/{ep['id']}/secret/rotate", headers=h)
        assert (
            rotated.json()["secret"] != ep["secret"]
            and rotated.json()["previous_secret_expires_at"]
        )

        for _ in range(3):
            await hooks.schedule(rt, hooks.journey(tenant, uuid.uuid4()))  # one delivered each
        test = await api.post(
            f"/v1/webhook-endpoints/{ep['id']}/test",
            json={"event_type": "shipment.exception"},
            headers=h,
        )
        assert test.status_code == 202 and test.json()["event_type"] == "shipment.exception"
        async with hooks.running_sender(rt):
            await hooks.eventually(lambda: _all_attempted(rt, uuid.UUID(ep["id"])), what="tried")
        page = (await api.get("/v1/webhook-deliveries?limit=3", headers=h)).json()
        assert len(page["data"]) == 3 and page["next_cursor"]
        rest = (
            await api.get(f"/v1/webhook-deliveries?limit=3&cursor={page['next_cursor']}", headers=h)
        ).json()
        assert len(rest["data"]) == 1 and rest["next_cursor"] is None
        ids = [d["id"] for d in page["data"] + rest["data"]]
        assert ids == sorted(ids, reverse=True)
        only = (
            await api.get("/v1/webhook-deliveries?event_type=shipment.exception", headers=h)
        ).json()
        assert [d["id"] for d in only["data"]] == [test.json()["id"]]
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        later = await api.get("/v1/webhook-deliveries", params={"since": future}, headers=h)
        assert later.json()["data"] == []
        assert (await api.get("/v1/webhook-deliveries?cursor=nope", headers=h)).status_code == 422
        detail = (await api.get(f"/v1/webhook-deliveries/{ids[0]}", headers=h)).json()
        assert detail["attempts"][0]["status_code"] == 500
        assert detail["attempts"][0]["response_body"] == "answering 500"
        assert detail["payload"]["type"] == detail["event_type"]

        # Disabled through the API: pending deliveries fail; replays wait for re-enabling.
        off = await api.patch(
            f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": False}, headers=h
        )
        assert off.json()["enabled"] is False and off.json()["disabled_reason"]
        listed = (await api.get("/v1/webhook-deliveries?status=failed", headers=h)).json()["data"]
        assert len(listed) == 4
        conflict = await api.post(f"/v1/webhook-deliveries/{ids[0]}/replay", headers=h)
        assert conflict.status_code == 409
        receiver.on("/hook", ok)  # the merchant fixed the receiver
        on = await api.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": True}, headers=h)
        assert on.json()["enabled"] and on.json()["disabled_reason"] is None
        one = await api.post(f"/v1/webhook-deliveries/{ids[0]}/replay", headers=h)
        assert one.status_code == 202 and one.json()["status"] == "pending"
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        many = await api.post(
            f"/v1/webhook-endpoints/{ep['id']}/replay", json={"since": since}, headers=h
        )
        assert many.json() == {"replayed": 3}
        async with hooks.running_sender(rt):
            await hooks.eventually(
                lambda: hooks.all_settled(rt, uuid.UUID(ep["id"])), what="replayed"
            )
        bad = await api.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"url": None}, headers=h)
        assert bad.status_code == 422
        assert (await api.delete(f"/v1/webhook-endpoints/{ep['id']}", headers=h)).status_code == 204
        assert (await api.get(f"/v1/webhook-deliveries/{ids[0]}", headers=h)).status_code == 404


async def _all_attempted(rt: Runtime, endpoint_id: uuid.UUID) -> bool:
    rows = await hooks.deliveries(rt, endpoint_id)
    return len(rows) == 4 and all(d.attempt_count >= 1 for d in rows)


async def test_a_tenant_has_at_most_twenty_endpoints(stack: Runtime) -> None:
    rt = hooks.tuned(stack)
    async with _client(rt) as api:
        _, key = await hooks.new_tenant(rt, "A")
        for i in range(20):
            body = {"url": f"http://127.0.0.1:9/{i}"}
            r = await api.post("/v1/webhook-endpoints", json=body, headers=bearer(key))
            assert r.status_code == 201, r.text
        r = await api.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/x"}, headers=bearer(key)
        )
        assert r.status_code == 409 and "at most 20" in r.json()["detail"]


async def test_cli_lists_and_revokes_keys(stack: Runtime, api: httpx.AsyncClient) -> None:
    tenant, key = await hooks.new_tenant(stack, "A")
    (row,) = await list_keys(stack.settings, tenant)
    assert key.startswith(f"tl_{row.prefix}_") and row.revoked_at is None
    assert (await api.get("/v1/keys", headers=bearer(key))).status_code == 200
    assert await revoke_key(stack.settings, row.id)
    assert (await api.get("/v1/keys", headers=bearer(key))).status_code == 401
    assert not await revoke_key(stack.settings, uuid.uuid4())
