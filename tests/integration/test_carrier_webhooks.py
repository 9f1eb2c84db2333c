"""The aggregator push receiver on both stacks (Kafka + PostgreSQL, SQL log + SQLite).

A signed push is kept and published; a bad signature leaves no trace; an authentic but unreadable
body goes to the raw DLQ with its reason; an oversize body is refused before it is read whole.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.carriers.models import RawPayloadRow
from services.carriers.webhook_signatures import SCHEMES
from services.carriers.webhooks import router
from services.cli.runtime import Runtime
from shared.bus import OutRecord
from shared.http import install_body_limit, install_error_handlers
from shared.schema import TOPIC_EVENTS, TOPIC_RAW, RawPayload, TrackingEvent, decode, dlq_topic
from shared.settings import Settings
from tests.integration.test_ingest import read_topic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRETS = {"17track": "17track-api-key", "aftership": "as-secret", "easypost": "ep-secret"}
PUSHES = {
    "17track": ("track17/updated_cn_us_two_providers.json", "LX123456785CN", 9),
    "aftership": ("aftership/tracking_update_cn_gb.json", "YT2503100000001", 10),
    "easypost": ("easypost/tracker_updated_delivered.json", "9400111899223817012345", 7),
}
MAX_BODY = 64_000
SENTINEL = b"sentinel"


WebhookSettings = Settings


def build_app(stack: Runtime, settings: Settings, *, body_limit: bool = False) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    app.state.sessions = stack.sessions
    app.state.bus = stack.bus
    install_error_handlers(app)
    if body_limit:
        install_body_limit(app, settings.max_body_bytes)
    app.include_router(router())
    return app


@pytest.fixture
def settings(stack: Runtime) -> WebhookSettings:
    return stack.settings.model_copy(update={
        "max_body_bytes": MAX_BODY,
        "track17_webhook_secret": SECRETS["17track"],
        "aftership_webhook_secret": SECRETS["aftership"],
        "easypost_webhook_secret": SECRETS["easypost"],
    })


@pytest.fixture
async def client(stack: Runtime, settings: WebhookSettings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(stack, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://throughline") as http:
        yield http


def body_of(carrier: str) -> bytes:
    return (FIXTURES / PUSHES[carrier][0]).read_bytes()


def signed(carrier: str, body: bytes, secret: str | None = None) -> dict[str, str]:
    headers = SCHEMES[carrier].signed_headers(body, secret or SECRETS[carrier])
    return {**headers, "content-type": "application/json"}


async def post(
    http: httpx.AsyncClient, carrier: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return await http.post(f"/v1/carrier-webhooks/{carrier}", content=body, headers=headers)


async def raw_rows(stack: Runtime) -> list[RawPayloadRow]:
    async with stack.sessions() as s:
        return list((await s.scalars(select(RawPayloadRow))).all())


async def assert_no_records(stack: Runtime, topic: str, key: str) -> None:
    """Nothing was published under ``key``: a sentinel with that key (same partition) comes first."""
    name = stack.settings.topic(topic)
    await stack.bus.publish(name, [OutRecord(key, SENTINEL)])
    assert [r.value for r in await read_topic(stack, name, expect=1)] == [SENTINEL]


async def assert_nothing_kept(stack: Runtime, key: str) -> None:
    async with stack.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(RawPayloadRow)) == 0
    for topic in (TOPIC_RAW, TOPIC_EVENTS, dlq_topic(TOPIC_RAW)):
        await assert_no_records(stack, topic, key)


async def chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("carrier", sorted(PUSHES))
async def test_signed_push_is_stored_then_published(
    stack: Runtime, client: httpx.AsyncClient, carrier: str
) -> None:
    _, number, expected = PUSHES[carrier]
    body = body_of(carrier)
    response = await post(client, carrier, body, signed(carrier, body))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["events"] == expected and answer["dead_lettered"] is False

    (row,) = await raw_rows(stack)
    assert str(row.id) == answer["raw_id"]
    assert (row.carrier, row.source, row.tracking_numbers) == (carrier, "aggregator", [number])
    assert row.body == body  # exactly the bytes that were signed

    records = await read_topic(stack, stack.settings.topic(TOPIC_EVENTS), expect=expected)
    events = [decode(r.value) for r in records]
    assert len(events) == expected
    assert {r.key for r in records} == {f"{carrier}:{number}"}
    assert all(isinstance(e, TrackingEvent) for e in events)
    assert {(e.carrier, e.raw_ref, e.source) for e in events if isinstance(e, TrackingEvent)} == {
        (carrier, answer["raw_id"], "aggregator")
    }
    (raw_record,) = await read_topic(stack, stack.settings.topic(TOPIC_RAW), expect=1)
    raw = decode(raw_record.value)
    assert isinstance(raw, RawPayload) and raw_record.key == f"{carrier}:{number}"
    assert (raw.carrier, raw.tracking_numbers, raw.source) == (carrier, [number], "aggregator")
    assert raw.body.encode() == body
    await assert_no_records(stack, dlq_topic(TOPIC_RAW), f"{carrier}:{number}")


@pytest.mark.parametrize("carrier", sorted(PUSHES))
async def test_bad_signature_is_refused_and_nothing_is_kept(
    stack: Runtime, client: httpx.AsyncClient, carrier: str
) -> None:
    body = body_of(carrier)
    header = SCHEMES[carrier].headers[0]
    attempts = [
        {},  # no signature at all
        signed(carrier, body, secret="not-the-secret"),
        signed(carrier, body + b" "),  # signed for another body
        {header: "garbage"},
    ]
    for headers in attempts:
        response = await post(client, carrier, body, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    tampered = body.replace(b"2025-03-", b"2025-04-")
    response = await post(client, carrier, tampered, signed(carrier, body))
    assert response.status_code == 401
    await assert_nothing_kept(stack, f"{carrier}:{PUSHES[carrier][1]}")


@pytest.mark.parametrize(
    ("carrier", "body"),
    [
        ("17track", b"this is not JSON"),
        ("aftership", b'{"ts": 1741614420, "event": "tracking_update", "msg": "garbage"}'),
        ("easypost", b'{"object": "Event", "description": "tracker.updated", "result": []}'),
    ],
)
async def test_signed_garbage_goes_to_the_raw_dlq_with_its_reason(
    stack: Runtime, client: httpx.AsyncClient, carrier: str, body: bytes
) -> None:
    response = await post(client, carrier, body, signed(carrier, body))
    assert response.status_code == 200, response.text  # kept: the aggregator must not retry it
    assert response.json()["dead_lettered"] is True and response.json()["events"] == 0
    (row,) = await raw_rows(stack)
    assert row.body == body and row.tracking_numbers == []
    (dead,) = await read_topic(stack, stack.settings.topic(dlq_topic(TOPIC_RAW)), expect=1)
    headers = dict(dead.headers)
    assert headers["dlq-reason"] == b"malformed_payload"
    assert headers["dlq-error"] and headers["dlq-carrier"] == carrier.encode()
    assert headers["dlq-raw-id"] == str(row.id).encode()
    assert isinstance(decode(dead.value), RawPayload)
    assert len(await read_topic(stack, stack.settings.topic(TOPIC_RAW), expect=1)) == 1
    await assert_no_records(stack, TOPIC_EVENTS, f"{carrier}:")


async def test_oversize_body_is_refused_before_anything_is_kept(
    stack: Runtime, client: httpx.AsyncClient
) -> None:
    body = b'{"event": "TRACKING_UPDATED", "data": {"pad": "' + b"x" * MAX_BODY + b'"}}'
    declared = await post(client, "17track", body, signed("17track", body))
    assert declared.status_code == 413
    streamed = await client.post(
        "/v1/carrier-webhooks/17track", content=chunks(body), headers=signed("17track", body)
    )
    assert streamed.status_code == 413  # no Content-Length: cut off while reading
    await assert_nothing_kept(stack, "17track:")


async def test_chunked_push_passes_the_api_body_limit_middleware(
    stack: Runtime, settings: WebhookSettings
) -> None:
    app = build_app(stack, settings, body_limit=True)
    body = body_of("aftership")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://throughline"
    ) as http:
        response = await http.post(
            "/v1/carrier-webhooks/aftership",
            content=chunks(body, 512),
            headers=signed("aftership", body),
        )
    assert response.status_code == 200, response.text
    assert response.json()["events"] == PUSHES["aftership"][2]
    (row,) = await raw_rows(stack)
    assert row.body == body


async def test_unknown_carrier_is_404(stack: Runtime, client: httpx.AsyncClient) -> None:
    body = body_of("17track")
    response = await post(client, "dhl", body, signed("17track", body))
    assert response.status_code == 404
    await assert_nothing_kept(stack, f"17track:{PUSHES['17track'][1]}")


async def test_missing_secret_is_503_and_nothing_is_kept(stack: Runtime) -> None:
    app = build_app(stack, stack.settings)  # plain Settings: no webhook secrets at all
    body = body_of("easypost")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://throughline"
    ) as http:
        response = await post(http, "easypost", body, signed("easypost", body))
    assert response.status_code == 503
    assert response.json()["detail"] == "webhook secret not configured"
    await assert_nothing_kept(stack, f"easypost:{PUSHES['easypost'][1]}")


async def test_redelivery_republishes_the_same_event_ids(
    stack: Runtime, client: httpx.AsyncClient
) -> None:
    body = body_of("easypost")
    for _ in range(2):
        assert (await post(client, "easypost", body, signed("easypost", body))).status_code == 200
    assert len(await raw_rows(stack)) == 2
    records = await read_topic(stack, stack.settings.topic(TOPIC_EVENTS), expect=14)
    ids = [
        e.event_id for e in map(decode, (r.value for r in records)) if isinstance(e, TrackingEvent)
    ]
    assert len(ids) == 14 and len(set(ids)) == 7  # the timeline stores each once


async def test_authentic_event_without_a_tracker_is_kept_not_dead_lettered(
    stack: Runtime, client: httpx.AsyncClient
) -> None:
    body = (FIXTURES / "easypost" / "batch_updated.json").read_bytes()
    response = await post(client, "easypost", body, signed("easypost", body))
    assert response.status_code == 200
    assert response.json()["events"] == 0 and response.json()["dead_lettered"] is False
    assert len(await raw_rows(stack)) == 1
    await assert_no_records(stack, dlq_topic(TOPIC_RAW), "easypost:")
