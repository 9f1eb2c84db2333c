"""Turning tables into API views; the public view drops everything personal."""

from __future__ import annotations

from collections.abc import Sequence

from services.timeline.models import Shipment, TrackingEventRow
from services.timeline.schemas import (
    LegOut,
    ModuleTimeline,
    PublicEvent,
    PublicLeg,
    PublicLocation,
    ShipmentOut,
    TrackingOut,
)
from services.timeline.status import chronological
from shared.taxonomy import Module


def shipment_out(shipment: Shipment, base_url: str) -> ShipmentOut:
    return ShipmentOut(
        id=shipment.id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        merchant_reference=shipment.merchant_reference,
        origin_country=shipment.origin_country,
        destination_country=shipment.destination_country,
        status=shipment.status,
        substatus=shipment.substatus,
        module_status=dict(shipment.module_status or {}),
        legs=[
            LegOut(
                position=leg.position,
                carrier=leg.carrier,
                tracking_number=leg.tracking_number,
                opened_by=leg.opened_by,
                evidence=leg.evidence,
                confidence=leg.confidence,
            )
            for leg in shipment.legs
        ],
        last_event_at=shipment.last_event_at,
        created_at=shipment.created_at,
        updated_at=shipment.updated_at,
        tracking_url=f"{base_url}/v1/tracking/{shipment.tracking_number}",
    )


def _public_event(row: TrackingEventRow) -> PublicEvent:
    loc = row.location or {}
    location = PublicLocation(
        city=loc.get("city"),
        region=loc.get("region"),
        country=loc.get("country"),
        facility=loc.get("facility"),
    )
    return PublicEvent(
        occurred_at=row.occurred_at,
        occurred_at_local=row.occurred_at_local,
        utc_offset=row.utc_offset,
        time_basis=row.time_basis,
        status=row.status,
        substatus=row.substatus,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        carrier_code=row.carrier_code,
        description=row.description,
        location=location if location.model_dump(exclude_none=True) else None,
    )


def group_by_module(rows: Sequence[TrackingEventRow]) -> dict[str, list[TrackingEventRow]]:
    """Events in journey order per module; an event without a module joins the one before it."""
    groups: dict[str, list[TrackingEventRow]] = {m.value: [] for m in Module}
    current = Module.ORIGIN.value
    for row in chronological(rows):
        current = row.module or current
        groups[current].append(row)
    return groups


def public_timeline(
    number: str, shipment: Shipment, rows: Sequence[TrackingEventRow]
) -> TrackingOut:
    groups = group_by_module(rows)
    status = shipment.module_status or {}
    return TrackingOut(
        tracking_number=number,
        status=shipment.status,
        substatus=shipment.substatus,
        last_event_at=shipment.last_event_at,
        legs=[
            PublicLeg(
                position=leg.position, carrier=leg.carrier, tracking_number=leg.tracking_number
            )
            for leg in shipment.legs
        ],
        modules=[
            ModuleTimeline(
                module=module, status=status.get(module), events=[_public_event(r) for r in events]
            )
            for module, events in groups.items()
        ],
    )
