"""Aggregator push receiver: ``POST /v1/carrier-webhooks/{carrier}`` for 17TRACK, AfterShip, EasyPost.

Per request, in this order: a carrier with a receiver (else 404) → its secret configured (else 503)
→ the size cap (413, before the body is read whole) → the carrier's own signature over the exact
body (401, before anything is kept or published) → parse → the raw body committed to
``raw_payload`` → publish the raw record, the events and, for an authentic body that cannot be
read, a dead letter on ``tracking.raw.v1.dlq`` with the reason → 200.

Aggregators retry on anything but 2xx, so 200 means "kept", and a broker outage after the commit
answers 503: the retry stores the raw body once more and republishes, which is harmless because
event ids are deterministic. The app provides ``app.state.settings``, ``.sessions`` and ``.bus``.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.carriers import repository
from services.carriers.adapters.aftership import AftershipAdapter
from services.carriers.adapters.base import Adapter, ParseResult
from services.carriers.adapters.easypost import EasypostAdapter
from services.carriers.adapters.track17 import Track17Adapter
from services.carriers.models import RawPayloadRow
from services.carriers.webhook_samples import sample_payload
from services.carriers.webhook_signatures import SCHEMES
from shared.bus import Bus, OutRecord
from shared.db import transaction, utcnow
from shared.errors import NotFound, PayloadTooLarge, RetryableError, Unauthorized
from shared.http import problem
from shared.schema import TOPIC_EVENTS, TOPIC_RAW, RawPayload, dlq_topic, encode
from shared.settings import Settings
from shared.taxonomy import Source

log = logging.getLogger("throughline.carrier_webhooks")

ADAPTERS: dict[str, Adapter] = {
    a.carrier: a for a in (Track17Adapter(), AftershipAdapter(), EasypostAdapter())
}
# Settings attribute holding each carrier's signing secret (for 17TRACK: the API key it signs with).
SECRET_SETTINGS: dict[str, str] = {
    "17track": "track17_webhook_secret",
    "aftership": "aftership_webhook_secret",
    "easypost": "easypost_webhook_secret",
}


class WebhookAccepted(BaseModel):
    raw_id: uuid.UUID
    events: int
    dead_lettered: bool


def router() -> APIRouter:
    api = APIRouter(tags=["carrier webhooks"])

    @api.post(
        "/v1/carrier-webhooks/{carrier}",
        response_model=WebhookAccepted,
        summary="Receive a signed aggregator push (17track, aftership, easypost)",
        responses={
            401: {"description": "signature missing or wrong; nothing was kept"},
            404: {"description": "not a carrier with a webhook receiver"},
            413: {"description": "body over the configured size limit"},
            503: {"description": "no webhook secret configured, or the event bus is down"},
        },
        openapi_extra=_examples(),
    )
    async def receive_carrier_webhook(carrier: str, request: Request) -> Any:
        """Verify, keep and publish one push; the body is read as raw bytes, never re-encoded."""
        adapter = ADAPTERS.get(carrier)
        if adapter is None:
            raise NotFound(f"no webhook receiver for carrier {carrier!r}")
        settings = request.app.state.settings
        secret = _secret(settings, SECRET_SETTINGS[carrier])
        if secret is None:
            return problem(503, "Service unavailable", "webhook secret not configured")
        body = await _read_body(request, settings.max_body_bytes)
        if not SCHEMES[carrier].verify(body, secret, request.headers):
            log.warning("carrier webhook refused: bad signature", extra={"carrier": carrier})
            raise Unauthorized("missing or invalid webhook signature")
        try:
            return await _accept(request, carrier, adapter, body)
        except RetryableError as exc:
            log.warning(
                "carrier webhook not published", extra={"carrier": carrier, "error": str(exc)}
            )
            unavailable = problem(503, "Service unavailable", "event bus unavailable; retry later")
            unavailable.headers["Retry-After"] = "30"
            return unavailable

    return api


async def _accept(request: Request, carrier: str, adapter: Adapter, body: bytes) -> WebhookAccepted:
    state = request.app.state
    raw_id = uuid.uuid4()
    parsed = adapter.parse(body, raw_ref=str(raw_id), source=Source.AGGREGATOR)
    numbers = _numbers(parsed)
    raw = RawPayload(
        raw_id=raw_id,
        carrier=carrier,
        tracking_numbers=numbers,
        received_at=utcnow(),
        source=Source.AGGREGATOR,
        http_status=None,
        content_type=(request.headers.get("content-type") or "application/json")[:100],
        body=body.decode("utf-8", "replace"),
    )
    await _store(state.sessions, raw, body)
    dead = await _publish(state.bus, state.settings, raw, parsed)
    return WebhookAccepted(raw_id=raw_id, events=len(parsed.events), dead_lettered=dead)


async def _store(sessions: async_sessionmaker[AsyncSession], raw: RawPayload, body: bytes) -> None:
    async with transaction(sessions) as session:
        repository.add_raw(
            session,
            RawPayloadRow(
                id=raw.raw_id,
                carrier=raw.carrier,
                tracking_numbers=raw.tracking_numbers,
                source=raw.source.value,
                http_status=None,
                content_type=raw.content_type,
                body=body,
                received_at=raw.received_at,
            ),
        )


async def _publish(bus: Bus, settings: Settings, raw: RawPayload, parsed: ParseResult) -> bool:
    """Publish after the commit: raw record, events, then a dead letter if the body was unreadable."""
    key = f"{raw.carrier}:{raw.tracking_numbers[0] if raw.tracking_numbers else ''}"
    value = encode(raw)
    await bus.publish(settings.topic(TOPIC_RAW), [OutRecord(key, value)])
    events = [OutRecord(f"{e.carrier}:{e.tracking_number}", encode(e)) for e in parsed.events]
    await bus.publish(settings.topic(TOPIC_EVENTS), events)
    malformed = [e.message for e in parsed.errors if e.code == "malformed"]
    if not malformed:
        return False
    headers = (
        ("dlq-reason", b"malformed_payload"),
        ("dlq-error", "; ".join(malformed)[:2000].encode("utf-8", "replace")),
        ("dlq-carrier", raw.carrier.encode()),
        ("dlq-raw-id", str(raw.raw_id).encode()),
    )
    await bus.publish(dlq_topic(settings.topic(TOPIC_RAW)), [OutRecord(key, value, headers)])
    log.warning(
        "carrier webhook dead-lettered", extra={"carrier": raw.carrier, "raw_id": str(raw.raw_id)}
    )
    return True


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    return bytes(body)


def _secret(settings: Any, name: str) -> str | None:
    value: Any = getattr(settings, name, None)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) and value else None


def _numbers(parsed: ParseResult) -> list[str]:
    found = [e.tracking_number for e in parsed.events]
    found += [e.tracking_number for e in parsed.errors if e.tracking_number]
    return list(dict.fromkeys(found))


def _examples() -> dict[str, Any]:
    examples = {
        carrier: {"summary": f"{carrier} push", "value": json.loads(sample_payload(carrier))}
        for carrier in ADAPTERS
    }
    return {"requestBody": {"content": {"application/json": {"examples": examples}}}}
