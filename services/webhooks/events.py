"""Webhook event types and how a shipment update turns into events (pure: no I/O, no clock).

Event ids are deterministic (uuid5 over the shipment, the update's ``updated_at`` and the type), so
a replayed update yields the same ids and the ``ON CONFLICT DO NOTHING`` insert makes it a no-op.
The id is also the ``webhook-id`` header: stable across retries and replays, the receiver's
idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.schema import AlertChange, LegRef, ShipmentUpdate
from shared.taxonomy import Status

STATUS_CHANGED = "shipment.status_changed"
LEG_ADDED = "shipment.leg_added"
DELIVERED = "shipment.delivered"
EXCEPTION = "shipment.exception"
STALE = "shipment.stale"
ENDPOINT_DISABLED = "endpoint.disabled"

EVENT_TYPES: dict[str, str] = {
    STATUS_CHANGED: "the shipment's status changed (previous_status says from what)",
    LEG_ADDED: "a new leg (another carrier's tracking number) joined the shipment",
    DELIVERED: "the shipment was delivered",
    EXCEPTION: "the shipment entered the exception status (held, lost, damaged, refused...)",
    STALE: "the shipment went quiet for longer than its stale rule allows (one per alert)",
    ENDPOINT_DISABLED: "one of your webhook endpoints was disabled, with the reason",
}

_NAMESPACE = uuid.UUID("0b5c4f7e-6a43-4c1f-9d52-2f6f0f3e8a61")
Leg = tuple[str, str]  # (carrier, tracking_number)


@dataclass(frozen=True)
class NewEvent:
    id: uuid.UUID
    tenant_id: uuid.UUID
    type: str
    shipment_id: uuid.UUID | None
    occurred_at: datetime
    body: bytes  # the exact bytes every attempt sends


def event_id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, "\x1f".join(parts))


def encode_body(event_type: str, timestamp: datetime, data: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"type": event_type, "timestamp": timestamp, "data": data}, option=orjson.OPT_UTC_Z
    )


def leg_data(leg: LegRef) -> dict[str, Any]:
    data: dict[str, Any] = leg.model_dump(mode="json")
    return data


def shipment_data(update: ShipmentUpdate) -> dict[str, Any]:
    first = update.legs[0] if update.legs else None
    return {
        "shipment_id": str(update.shipment_id),
        "carrier": first.carrier if first else None,
        "tracking_number": first.tracking_number if first else None,
        "status": update.status.value,
        "substatus": update.substatus.value if update.substatus else None,
        "previous_status": update.previous_status.value if update.previous_status else None,
        "legs": [leg_data(leg) for leg in update.legs],
        "last_event_at": update.last_event_at,
        "updated_at": update.updated_at,
    }


def events_for_update(update: ShipmentUpdate, known_legs: Iterable[Leg] | None) -> list[NewEvent]:
    """The events one update means. ``known_legs``: the legs seen before, None for a new shipment
    (whose first leg is its registration, not an addition)."""
    if update.tenant_id is None:  # nobody registered it: nobody to tell
        return []
    tenant = update.tenant_id
    data = shipment_data(update)
    out: list[NewEvent] = []

    def add(event_type: str, extra: dict[str, Any] | None = None, *key: str) -> None:
        parts = (str(update.shipment_id), update.updated_at.isoformat(), event_type, *key)
        body = encode_body(event_type, update.updated_at, {**data, **(extra or {})})
        out.append(
            NewEvent(
                event_id(*parts), tenant, event_type, update.shipment_id, update.updated_at, body
            )
        )

    if update.previous_status is not None and update.previous_status != update.status:
        add(STATUS_CHANGED)
        if update.status == Status.DELIVERED:
            add(DELIVERED)
        if update.status == Status.EXCEPTION:
            add(EXCEPTION)
    baseline = set(known_legs) if known_legs is not None else _first(update.legs)
    for leg in update.legs:
        key = (leg.carrier, leg.tracking_number)
        if key not in baseline:
            add(LEG_ADDED, {"leg": leg_data(leg)}, *key)
    return out


def _first(legs: list[LegRef]) -> set[Leg]:
    return {(legs[0].carrier, legs[0].tracking_number)} if legs else set()


def stale_event(alert: AlertChange, legs: list[dict[str, Any]]) -> NewEvent:
    """``shipment.stale`` for an opened shipment alert; the alert's id makes it one per alert."""
    assert alert.tenant_id is not None and alert.shipment_id is not None
    first = legs[0] if legs else {}
    data: dict[str, Any] = {
        "shipment_id": str(alert.shipment_id),
        "carrier": first.get("carrier"),
        "tracking_number": first.get("tracking_number"),
        "status": alert.status,
        "substatus": alert.substatus,
        "legs": legs,
        "last_event_at": alert.last_event_at,
        "quiet_since": alert.silent_since,
        "alert": {
            "id": str(alert.alert_id),
            "rule": alert.rule_key,
            "severity": alert.severity,
            "current_carrier": alert.carrier,
            "lane": alert.lane,
            "module": alert.module,
            "threshold_s": alert.threshold_s,
            "threshold_source": alert.threshold_source,
            "opened_at": alert.opened_at,
        },
    }
    return NewEvent(
        event_id(str(alert.alert_id), STALE),
        alert.tenant_id,
        STALE,
        alert.shipment_id,
        alert.changed_at,
        encode_body(STALE, alert.changed_at, data),
    )


def endpoint_disabled_event(
    tenant_id: uuid.UUID, endpoint_id: uuid.UUID, url: str, reason: str, at: datetime
) -> NewEvent:
    data = {"endpoint_id": str(endpoint_id), "url": url, "reason": reason, "disabled_at": at}
    return NewEvent(
        event_id(str(endpoint_id), at.isoformat(), ENDPOINT_DISABLED),
        tenant_id,
        ENDPOINT_DISABLED,
        None,
        at,
        encode_body(ENDPOINT_DISABLED, at, data),
    )


def sample_event(tenant_id: uuid.UUID, event_type: str, at: datetime) -> NewEvent:
    """A sample of ``event_type`` marked ``"test": true``, with a fresh id."""
    shipment = uuid.UUID(int=0)
    data: dict[str, Any] = {
        "test": True,
        "shipment_id": str(shipment),
        "carrier": "dhl",
        "tracking_number": "1234567891",
        "status": "in_transit",
        "substatus": None,
        "previous_status": "info_received",
        "legs": [{"carrier": "dhl", "tracking_number": "1234567891"}],
        "last_event_at": at,
        "updated_at": at,
    }
    return NewEvent(
        uuid.uuid4(), tenant_id, event_type, None, at, encode_body(event_type, at, data)
    )
