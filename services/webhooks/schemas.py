"""Wire schemas of the webhooks HTTP API (separate from the tables)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from services.webhooks.events import EVENT_TYPES, STATUS_CHANGED
from services.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shared.errors import InvalidInput


def _known_types(values: list[str]) -> list[str]:
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
    return values


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointIn(_In):
    url: str = Field(min_length=1, max_length=2000, examples=["https://shop.example/hooks/tl"])
    description: str = Field(default="", max_length=500)
    event_types: list[str] = Field(
        default_factory=list, description="types to receive; empty: every type"
    )
    enabled: bool = True
    secret: str | None = Field(
        default=None, description="whsec_<base64 of 24-64 bytes>; generated when omitted"
    )

    _types = field_validator("event_types")(_known_types)


class EndpointPatch(_In):
    url: str | None = Field(default=None, min_length=1, max_length=2000)
    description: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = None
    enabled: bool | None = Field(default=None, description="true re-enables a disabled endpoint")

    @field_validator("event_types")
    @classmethod
    def _types(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _known_types(values)


class EndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="why it was disabled, null while enabled")
    disabled_at: datetime | None
    failing_since: datetime | None = Field(description="first failure since the last success")
    previous_secret_expires_at: datetime | None = Field(
        description="until then the secret before the last rotation signs too"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, e: WebhookEndpoint) -> EndpointOut:
        return cls(
            id=e.id,
            url=e.url,
            description=e.description,
            event_types=list(e.event_types or []),
            enabled=e.enabled,
            disabled_reason=e.disabled_reason,
            disabled_at=e.disabled_at,
            failing_since=e.failing_since,
            previous_secret_expires_at=e.previous_secret_expires_at,
            created_at=e.created_at,
            updated_at=e.updated_at,
        )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="verify our signatures with it (GET .../secret shows it again)")


class EndpointList(BaseModel):
    data: list[EndpointOut]


class SecretOut(BaseModel):
    secret: str
    previous_secret_expires_at: datetime | None


class RotateIn(_In):
    secret: str | None = Field(default=None, description="your own secret; generated if omitted")


class TestIn(_In):
    event_type: str = Field(default=STATUS_CHANGED, description="which event type to imitate")

    @field_validator("event_type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _known_types([value])[0]


class ReplayRangeIn(_In):
    since: AwareDatetime
    until: AwareDatetime | None = None
    status: Literal["failed", "all"] = Field(
        default="failed", description="replay failed deliveries only, or succeeded ones too"
    )


class ReplayOut(BaseModel):
    replayed: int


class EventTypeOut(BaseModel):
    type: str
    description: str


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_body: str | None = Field(description="the first 2 KB of the answer")
    error: str | None

    @classmethod
    def of(cls, a: WebhookAttempt) -> AttemptOut:
        return cls(
            attempted_at=a.attempted_at,
            status_code=a.status_code,
            latency_ms=a.latency_ms,
            response_body=a.response_body,
            error=a.error,
        )


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: uuid.UUID
    event_id: uuid.UUID = Field(description="also the webhook-id header")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=d.id,
            endpoint_id=d.endpoint_id,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempt_count=d.attempt_count,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            created_at=d.created_at,
            updated_at=d.updated_at,
            delivered_at=d.delivered_at,
        )


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any]
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"before": last_id})).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        before = orjson.loads(raw)["before"]
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned") from None
    if not isinstance(before, int):
        raise InvalidInput("cursor: not a cursor this API returned")
    return before
