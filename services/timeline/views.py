"""Turning tables into API views; the public view drops everything personal."""

from __future__ import annotations

from collections.abc import Sequence

from services.timeline.customs import CustomsState
from services.timeline.models import Leg, Shipment, TrackingEventRow
from services.timeline.schemas import (
    CustomsOut,
    LegOut,
    ModuleTimeline,
    PublicEvent,
    PublicLeg,
    PublicLocation,
    ShipmentOut,
    TrackingOut,
)
from services.timeline.status import E, chronological
from shared.taxonomy import Module, Status, Substatus

S, U = Status, Substatus
# Plain words for what happens next, by status; customs and substatus refine them below.
_NEXT_BY_STATUS: dict[str, str] = {
    S.PENDING: "Waiting for the carrier's first scan",
    S.INFO_RECEIVED: "Waiting for the carrier to receive the parcel",
    S.OUT_FOR_DELIVERY: "Out for delivery: it should arrive today",
    S.FAILED_ATTEMPT: "Delivery failed: the carrier will try again or leave a notice",
    S.AVAILABLE_FOR_PICKUP: "Ready to collect at the pickup point",
    S.DELIVERED: "Nothing more: the parcel was delivered",
    S.RETURNED: "Nothing more: the parcel went back to the sender",
    S.EXCEPTION: "The carrier reported a problem and is looking into it",
}
_NEXT_BY_SUBSTATUS: dict[str, str] = {
    U.PICKED_UP: "On its way to the export hub",
    U.EXPORT_CUSTOMS_RELEASED: "Waiting to leave the origin country",
    U.DEPARTED_ORIGIN_COUNTRY: "Travelling to the destination country",
    U.ARRIVED_DESTINATION_COUNTRY: "Waiting for import customs",
    U.IMPORT_CUSTOMS_RELEASED: "Waiting for the destination carrier to take over",
    U.HANDED_OVER: "With the next carrier, on its way to delivery",
    U.ADDRESS_ISSUE: "Address problem: contact the carrier or the shop",
    U.RECIPIENT_UNAVAILABLE: "Nobody was in: the carrier will try again or leave a notice",
    U.REFUSED: "Delivery was refused: the parcel will go back to the sender",
    U.DAMAGED: "The parcel was damaged: the carrier is looking into it",
    U.LOST: "The carrier cannot find the parcel: contact the shop",
    U.DELAYED: "Delayed: the carrier expects to move it soon",
    U.RETURNING: "On its way back to the sender",
}
_NEXT_BY_MODULE: dict[str, str] = {
    Module.ORIGIN: "On its way to the export hub",
    Module.INTERNATIONAL: "Travelling to the destination country",
    Module.DESTINATION: "On its way to the delivery address",
}


def next_step(status: str, substatus: str | None, module: str | None, customs: CustomsState) -> str:
    """What happens next, in plain words from the canonical state alone (no carrier text)."""
    if status in (S.PENDING, S.INFO_RECEIVED, S.DELIVERED, S.RETURNED):
        return _NEXT_BY_STATUS[status]
    if customs.duties == "payable":
        return "Duties or taxes to pay before delivery"
    if customs.import_ == "held":
        return "Held by import customs: waiting for clearance"
    if customs.import_ == "presented":
        return "Waiting for import customs"
    if customs.export == "held":
        return "Held by export customs: waiting for clearance"
    if customs.export == "presented":
        return "Waiting for export customs"
    if status != S.IN_TRANSIT:
        return _NEXT_BY_SUBSTATUS.get(substatus or "", _NEXT_BY_STATUS.get(status, ""))
    return (
        _NEXT_BY_SUBSTATUS.get(substatus or "") or _NEXT_BY_MODULE.get(module or "") or "On its way"
    )


def _customs(shipment: Shipment) -> CustomsState:
    return CustomsState.from_dict(shipment.customs)


def current_module(module_status: dict[str, str] | None) -> str | None:
    """The furthest module any event reached (modules only move forward)."""
    modules = [m.value for m in Module if m.value in (module_status or {})]
    return modules[-1] if modules else None


def _current_module(shipment: Shipment) -> str | None:
    return current_module(shipment.module_status)


def shipment_next_step(shipment: Shipment) -> str:
    return next_step(
        shipment.status, shipment.substatus, _current_module(shipment), _customs(shipment)
    )


def _customs_out(shipment: Shipment) -> CustomsOut:
    state = _customs(shipment)
    return CustomsOut(export=state.export, import_=state.import_, duties=state.duties)


def leg_out(leg: Leg) -> LegOut:
    return LegOut(
        position=leg.position,
        carrier=leg.carrier,
        tracking_number=leg.tracking_number,
        opened_by=leg.opened_by,
        evidence=leg.evidence,
        confidence=leg.confidence,
        detected=leg.detected,
        status=leg.status,
        substatus=leg.substatus,
        module=leg.module,
    )


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
        customs=_customs_out(shipment),
        next_step=shipment_next_step(shipment),
        legs=[leg_out(leg) for leg in shipment.legs],
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


def group_by_module(rows: Sequence[E]) -> dict[str, list[E]]:
    """Events in journey order per module; an event without a module joins the one before it."""
    groups: dict[str, list[E]] = {m.value: [] for m in Module}
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
        next_step=shipment_next_step(shipment),
        customs=_customs_out(shipment),
        legs=[
            PublicLeg(
                position=leg.position,
                carrier=leg.carrier,
                tracking_number=leg.tracking_number,
                status=leg.status,
                module=leg.module,
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
