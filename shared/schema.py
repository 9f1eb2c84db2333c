"""Wire schemas: the canonical tracking event and every record that travels on a topic.

Every record is decoded through one ``TypeAdapter`` over the message union (``decode``), so a
consumer never picks at raw dicts.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from shared.errors import InvalidInput
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis

EVENT_NAMESPACE = uuid.UUID("6f1c2a57-3a0e-4d51-9b1e-5d8b7f0c2e11")

TOPIC_RAW = "tracking.raw.v1"
TOPIC_EVENTS = "tracking.events.v1"
TOPIC_SHIPMENT_UPDATES = "shipment.updates.v1"
TOPIC_ALERTS = "alerts.v1"
ALL_TOPICS = (TOPIC_RAW, TOPIC_EVENTS, TOPIC_SHIPMENT_UPDATES, TOPIC_ALERTS)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def make_event_id(
    carrier: str,
    tracking_number: str,
    carrier_code: str | None,
    raw_timestamp: str,
    location_text: str | None,
) -> uuid.UUID:
    """Deterministic id: carriers re-send the same scans on every poll, and they must collapse."""
    parts = (carrier, tracking_number, carrier_code or "", raw_timestamp, location_text or "")
    return uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(parts))


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Constraints pydantic checks itself (no Python validator runs per record on the hot topic).
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$", to_upper=True)]


class Location(_Wire):
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: CountryCode | None = Field(default=None, description="ISO 3166-1 alpha-2")
    facility: str | None = None
    text: str | None = None


class Handoff(_Wire):
    """A transfer to another carrier announced by an event."""

    carrier: str | None = None
    tracking_number: str
    evidence: str = Field(description="field or text the hand-off was read from")
    confidence: float = Field(ge=0.0, le=1.0, default=0.9)


class TrackingEvent(_Wire):
    """The canonical tracking event (DESIGN.md, "Canonical tracking event")."""

    kind: Literal["tracking_event"] = "tracking_event"
    event_id: uuid.UUID
    carrier: str
    tracking_number: str
    occurred_at_local: str | None = Field(
        description="wall-clock time as the carrier wrote it, ISO 8601 without offset"
    )
    utc_offset: str | None = Field(default=None, description="offset the carrier stated, +HH:MM")
    occurred_at: AwareDatetime | None = Field(
        default=None, description="the UTC instant, if knowable"
    )
    time_basis: TimeBasis
    status: Status
    substatus: Substatus | None = None
    module: Module | None = None
    carrier_code: str | None = None
    description: str = ""
    location: Location | None = None
    handoff: Handoff | None = None
    source: Source = Source.POLL
    raw_ref: str | None = None
    sequence: int = Field(default=0, description="position in the journey as the payload gave it")
    renormalised: bool = Field(
        default=False,
        description="re-parsed from a stored raw payload: replaces the mapped fields of the stored "
        "event with the same id instead of being ignored as a duplicate",
    )


class RawPayload(_Wire):
    """A carrier response or push body as it was received, kept for re-normalisation."""

    kind: Literal["raw_payload"] = "raw_payload"
    raw_id: uuid.UUID
    carrier: str
    tracking_numbers: list[str]
    received_at: datetime
    source: Source
    http_status: int | None = None
    content_type: str = "application/json"
    body: str


class LegRef(_Wire):
    """One leg of a shipment; the status fields are the leg's own (None before its first event)."""

    carrier: str
    tracking_number: str
    status: Status | None = None
    substatus: Substatus | None = None
    module: Module | None = None
    detected: bool = Field(
        default=False,
        description="the carrier was inferred from the number's format alone: the poller may move "
        "to the next candidate carrier after repeated 'not found'",
    )


class ShipmentUpdate(_Wire):
    """Published by the timeline after a shipment changed (registration included)."""

    kind: Literal["shipment_update"] = "shipment_update"
    shipment_id: uuid.UUID
    tenant_id: uuid.UUID | None
    status: Status
    substatus: Substatus | None = None
    previous_status: Status | None = None
    legs: list[LegRef]
    added_legs: list[LegRef] = Field(
        default_factory=list, description="legs linked by the change this update reports"
    )
    last_event_at: datetime | None = None
    updated_at: datetime


class AlertChange(_Wire):
    """Published by the alerts service on ``alerts.v1`` (key: shipment id, or ``carrier:<id>``)
    whenever an alert opens, is acknowledged, snoozed, re-opened after a snooze, or resolves."""

    kind: Literal["alert_change"] = "alert_change"
    change: Literal["opened", "acknowledged", "snoozed", "reopened", "resolved"]
    alert_id: uuid.UUID
    alert_kind: Literal["shipment", "carrier"]
    tenant_id: uuid.UUID | None
    rule_key: str
    severity: str
    state: str
    shipment_id: uuid.UUID | None = None
    carrier: str | None = None
    lane: str | None = None
    module: str | None = None
    status: str | None = None
    substatus: str | None = None
    threshold_s: float
    threshold_source: str
    last_event_at: datetime | None = None
    silent_since: datetime | None = None
    opened_at: datetime
    changed_at: datetime
    by: str | None = Field(default=None, description="who acknowledged, snoozed or resolved")
    reason: str | None = None


AnyMessage = TrackingEvent | RawPayload | ShipmentUpdate | AlertChange
Message = Annotated[AnyMessage, Field(discriminator="kind")]
MESSAGE_ADAPTER: TypeAdapter[Any] = TypeAdapter(Message)


def encode(message: _Wire) -> bytes:
    return orjson.dumps(message.model_dump(mode="json"))


def decode(value: bytes) -> AnyMessage:
    """Decode one record value; anything that does not validate is ``InvalidInput``."""
    try:
        result: AnyMessage = MESSAGE_ADAPTER.validate_json(value)
    except ValidationError as exc:
        raise InvalidInput(_summarise(exc)) from exc
    return result


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
