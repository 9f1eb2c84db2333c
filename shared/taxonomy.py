"""The canonical status / substatus / module taxonomy shared by every service."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    INFO_RECEIVED = "info_received"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    FAILED_ATTEMPT = "failed_attempt"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    RETURNED = "returned"


class Substatus(StrEnum):
    PICKED_UP = "picked_up"
    ARRIVED_HUB = "arrived_hub"
    DEPARTED_HUB = "departed_hub"
    EXPORT_CUSTOMS_PRESENTED = "export_customs_presented"
    EXPORT_CUSTOMS_HELD = "export_customs_held"
    EXPORT_CUSTOMS_RELEASED = "export_customs_released"
    DEPARTED_ORIGIN_COUNTRY = "departed_origin_country"
    ARRIVED_DESTINATION_COUNTRY = "arrived_destination_country"
    IMPORT_CUSTOMS_PRESENTED = "import_customs_presented"
    IMPORT_CUSTOMS_HELD = "import_customs_held"
    IMPORT_CUSTOMS_RELEASED = "import_customs_released"
    DUTIES_PAYABLE = "duties_payable"
    DUTIES_PAID = "duties_paid"
    HANDED_OVER = "handed_over"
    ADDRESS_ISSUE = "address_issue"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    REFUSED = "refused"
    DAMAGED = "damaged"
    LOST = "lost"
    DELAYED = "delayed"
    RETURNING = "returning"


class Module(StrEnum):
    ORIGIN = "origin"
    INTERNATIONAL = "international"
    DESTINATION = "destination"


class TimeBasis(StrEnum):
    CARRIER_UTC = "carrier_utc"
    CARRIER_OFFSET = "carrier_offset"
    LOCATION_TIMEZONE = "location_timezone"
    UNKNOWN = "unknown"


class Source(StrEnum):
    POLL = "poll"
    CARRIER_WEBHOOK = "carrier_webhook"
    AGGREGATOR = "aggregator"
    MANIFEST = "manifest"
    MANUAL = "manual"


TERMINAL_STATUSES = frozenset({Status.DELIVERED, Status.RETURNED})

# Substatuses that can only happen in one module; used when a carrier gives no module.
SUBSTATUS_MODULE: dict[Substatus, Module] = {
    Substatus.PICKED_UP: Module.ORIGIN,
    Substatus.EXPORT_CUSTOMS_PRESENTED: Module.INTERNATIONAL,
    Substatus.EXPORT_CUSTOMS_HELD: Module.INTERNATIONAL,
    Substatus.EXPORT_CUSTOMS_RELEASED: Module.INTERNATIONAL,
    Substatus.DEPARTED_ORIGIN_COUNTRY: Module.INTERNATIONAL,
    Substatus.ARRIVED_DESTINATION_COUNTRY: Module.INTERNATIONAL,
    Substatus.IMPORT_CUSTOMS_PRESENTED: Module.INTERNATIONAL,
    Substatus.IMPORT_CUSTOMS_HELD: Module.INTERNATIONAL,
    Substatus.IMPORT_CUSTOMS_RELEASED: Module.INTERNATIONAL,
    Substatus.DUTIES_PAYABLE: Module.INTERNATIONAL,
    Substatus.DUTIES_PAID: Module.INTERNATIONAL,
}

# Statuses that only happen at the destination.
STATUS_MODULE: dict[Status, Module] = {
    Status.OUT_FOR_DELIVERY: Module.DESTINATION,
    Status.FAILED_ATTEMPT: Module.DESTINATION,
    Status.AVAILABLE_FOR_PICKUP: Module.DESTINATION,
    Status.DELIVERED: Module.DESTINATION,
}


def infer_module(status: Status, substatus: Substatus | None) -> Module | None:
    """The module an event belongs to when the carrier does not say, or None when unknowable."""
    if substatus is not None and substatus in SUBSTATUS_MODULE:
        return SUBSTATUS_MODULE[substatus]
    return STATUS_MODULE.get(status)
