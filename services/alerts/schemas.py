"""Wire schemas of the operator API (the tables are in ``models.py``)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.alerts.models import Alert
from services.alerts.rules import RuleSpec
from shared.errors import InvalidInput

MAX_SNOOZE_S = 30 * 86400


class AlertOut(BaseModel):
    id: uuid.UUID
    kind: str = Field(description="shipment (a quiet parcel) or carrier (a carrier outage)")
    carrier_wide: bool = Field(
        description="a carrier outage shared by every tenant: no tenant's data in it, read-only "
        "here (it resolves by itself when the carrier recovers)"
    )
    rule: str = Field(description="the stale rule's key, or carrier_errors / carrier_silent")
    severity: str = Field(description="info, warning or critical")
    state: str = Field(description="open, acknowledged, snoozed or resolved")
    shipment_id: uuid.UUID | None
    tracking_number: str | None = Field(
        description="the shipment's registered number (shipment alerts)"
    )
    carrier: str | None
    lane: str | None = Field(description="origin-destination countries, e.g. CN-US; ?? unknown")
    module: str | None
    status: str | None = Field(description="the shipment's status when the alert opened")
    substatus: str | None
    threshold_s: float = Field(description="the silence the rule allows")
    threshold_source: str = Field(description="where the threshold came from")
    last_event_at: datetime | None
    silent_since: datetime | None = Field(description="start of the quiet spell")
    opened_at: datetime
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    resolved_at: datetime | None
    resolved_reason: str | None
    updated_at: datetime

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls(
            id=a.id,
            kind=a.kind,
            carrier_wide=a.kind == "carrier" and a.tenant_id is None,
            rule=a.rule_key,
            severity=a.severity,
            state=a.state,
            shipment_id=a.shipment_id,
            tracking_number=a.tracking_number,
            carrier=a.carrier,
            lane=a.lane,
            module=a.module,
            status=a.status,
            substatus=a.substatus,
            threshold_s=a.threshold_s,
            threshold_source=a.threshold_source,
            last_event_at=a.last_event_at,
            silent_since=a.silent_since,
            opened_at=a.opened_at,
            acknowledged_at=a.acknowledged_at,
            snoozed_until=a.snoozed_until if a.state == "snoozed" else None,
            resolved_at=a.resolved_at,
            resolved_reason=a.resolved_reason,
            updated_at=a.updated_at,
        )


class AlertPage(BaseModel):
    data: list[AlertOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page")
    stream_cursor: str | None = Field(
        description="pass as Last-Event-ID (or ?last_event_id=) to GET /v1/alerts/stream to get "
        "every change after this read"
    )


class AcknowledgeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=500)


class SnoozeIn(BaseModel):
    """Exactly one of ``until`` and ``duration_s``."""

    model_config = ConfigDict(extra="forbid")

    until: datetime | None = Field(default=None, description="with a time zone; at most 30 days")
    duration_s: int | None = Field(default=None, ge=60, le=MAX_SNOOZE_S)

    @model_validator(mode="after")
    def _one(self) -> SnoozeIn:
        if (self.until is None) == (self.duration_s is None):
            raise ValueError("give exactly one of until and duration_s")
        if self.until is not None and self.until.utcoffset() is None:
            raise ValueError("until: give a time zone, e.g. 2024-03-01T08:00:00Z")
        return self


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class CountOut(BaseModel):
    key: str | None
    count: int


class CountsOut(BaseModel):
    total: int
    carrier_wide: int = Field(description="how many of total are carrier-wide alerts")
    by_rule: list[CountOut]
    by_carrier: list[CountOut]
    by_lane: list[CountOut]


class CarrierHealthOut(BaseModel):
    carrier: str
    health: str = Field(description="ok, degraded, down or idle (not polled in the window)")
    polls: int = Field(description="polls in the window")
    errors: int
    error_rate: float
    mean_latency_ms: float | None
    max_latency_ms: int | None
    last_ok_at: datetime | None
    last_error: str | None
    open_alerts: list[str] = Field(description="rule keys of this carrier's unresolved alerts")


class CarrierHealthList(BaseModel):
    window_s: int
    data: list[CarrierHealthOut]


class RuleOut(BaseModel):
    rule: RuleSpec
    source: str = Field(description="default, config, operator or tenant")


class RulesOut(BaseModel):
    effective: list[RuleOut] = Field(description="what the scan applies to this tenant, best first")
    tenant: list[RuleSpec] = Field(description="this tenant's own rules (what PUT replaces)")


class StreamTokenOut(BaseModel):
    token: str
    expires_at: datetime
    stream_url: str = Field(description="open with EventSource; add &last_event_id= to resume")


def encode_cursor(opened_at: datetime, alert_id: uuid.UUID) -> str:
    raw = orjson.dumps({"o": opened_at.isoformat(), "i": str(alert_id)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw: Any = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        opened_at = datetime.fromisoformat(raw["o"])
        alert_id = uuid.UUID(raw["i"])
    except (binascii.Error, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        raise InvalidInput("cursor: not a cursor this API returned") from None
    if opened_at.utcoffset() is None:
        raise InvalidInput("cursor: not a cursor this API returned")
    return opened_at, alert_id
