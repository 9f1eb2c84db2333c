"""EasyPost tracker webhooks (``tracker.created`` / ``tracker.updated``): pure parse to events.

Quirks handled (reference/carrier-contracts.md §7.3, conventions in ``aggregator``): the body is an
Event ``{object: "Event", description, result: <Tracker>, previous_attributes, ...}`` and only
``tracker.*`` descriptions carry a tracker (the others are reported as ``unsupported_event``, not
as unreadable); ``tracking_details[]`` come oldest first with ``datetime`` in UTC (``Z``); the
coarse ``status`` is authoritative and ``status_detail`` refines it; ``return_to_sender`` covers
both the way back and the arrival there, which only the text tells apart; ``carrier_code`` (the
courier's own code) and ``tracking_location`` parts may be null or empty; ``signed_by`` is a
person's name and is redacted from the texts; ``carrier_detail.alternate_identifier`` is the number
the parcel carries on a partner network (e.g. the USPS number of a consolidator's parcel).
"""

from __future__ import annotations

from typing import Any

from services.carriers.adapters.aggregator import (
    CodeTable,
    Draft,
    classify,
    country,
    courier_code,
    customs_side,
    finish,
    guarded,
    handoff,
    items,
    load_object,
    location,
    lookup,
    malformed,
    obj,
    personal_names,
    redact,
    scalar,
    text,
)
from services.carriers.adapters.assembly import Route, Shipment, read_scans
from services.carriers.adapters.base import ParseError, ParseResult
from shared.errors import InvalidInput
from shared.taxonomy import Source, Status, Substatus
from shared.timeparse import resolve_iso

CARRIER = "easypost"
S, U = Status, Substatus

# ``unknown`` gives no status: the text decides. ``return_to_sender`` is decided in _status.
STATUSES: dict[str, Status] = {
    "pre_transit": S.INFO_RECEIVED,
    "in_transit": S.IN_TRANSIT,
    "out_for_delivery": S.OUT_FOR_DELIVERY,
    "delivered": S.DELIVERED,
    "available_for_pickup": S.AVAILABLE_FOR_PICKUP,
    "return_to_sender": S.EXCEPTION,
    "failure": S.EXCEPTION,
    "cancelled": S.EXCEPTION,
    "error": S.EXCEPTION,
}
# status_detail → (status it implies, substatus); the substatus is taken when the implied status
# is None or agrees with ``status``, and the status only when ``status`` is unknown.
STATUS_DETAILS: CodeTable = {
    "label_created": (S.INFO_RECEIVED, None),
    "received_at_origin_facility": (S.IN_TRANSIT, U.PICKED_UP),
    "transferred_by_shipper": (S.IN_TRANSIT, U.PICKED_UP),
    "departed_origin_facility": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "arrived_at_facility": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "departed_facility": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "arrived_at_destination": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "received_at_destination_facility": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "out_for_delivery": (S.OUT_FOR_DELIVERY, None),
    "arrived_at_pickup_location": (S.AVAILABLE_FOR_PICKUP, None),
    "delayed": (None, U.DELAYED),
    "weather_delay": (None, U.DELAYED),
    "missorted": (None, U.DELAYED),
    "damaged": (S.EXCEPTION, U.DAMAGED),
    "lost": (S.EXCEPTION, U.LOST),
    "refused": (S.EXCEPTION, U.REFUSED),
    "return": (S.EXCEPTION, U.RETURNING),
}
_TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})


class EasypostAdapter:
    carrier = CARRIER
    name = "EasyPost (tracker webhooks)"

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.AGGREGATOR,
        http_status: int = 200,
    ) -> ParseResult:
        return guarded(_parse, payload, requested, raw_ref, source)


def _parse(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    doc = load_object(payload)
    description, tracker = doc.get("description"), doc.get("result")
    if doc.get("object") != "Event" or not isinstance(description, str):
        return malformed(requested, "expected an EasyPost Event object with a 'description'")
    if description not in _TRACKER_EVENTS:
        return ParseResult(errors=[ParseError(None, "unsupported_event", description[:100])])
    if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
        return malformed(requested, f"{description} without a Tracker 'result'")
    number = scalar(tracker.get("tracking_code"))
    if number is None:
        return malformed(requested, "Tracker has no usable 'tracking_code'")
    details = tracker.get("tracking_details")
    if details is not None and not isinstance(details, list):
        return malformed(number, "'tracking_details' is not an array")
    carrier_detail = obj(tracker.get("carrier_detail"))
    route = Route(
        country(obj(carrier_detail.get("origin_tracking_location")).get("country")),
        country(obj(carrier_detail.get("destination_tracking_location")).get("country")),
    )
    courier = scalar(tracker.get("carrier"))
    names = personal_names(tracker.get("signed_by"))
    drafts, errors = read_scans(
        items(details),
        lambda raw: _read_detail(raw, courier, route, names),
        number,
        "tracking_details",
    )
    found = handoff(
        carrier_detail.get("alternate_identifier"),
        number,
        None,  # EasyPost does not say which network the other number belongs to
        "carrier_detail.alternate_identifier",
        confidence=0.6,
    )
    return finish(Shipment(CARRIER, number, raw_ref, source), drafts, route, found, None, errors)


def _read_detail(raw: Any, courier: str | None, route: Route, names: list[str]) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("tracking detail is not an object")
    stamp = text(raw.get("datetime"))
    if not stamp:
        raise InvalidInput("tracking detail has no 'datetime'")
    place = obj(raw.get("tracking_location"))
    where = location(
        city=place.get("city"),
        region=place.get("state"),
        postal_code=place.get("zip"),
        country_code=place.get("country"),
        names=names,
    )
    iso2 = where.country if where else None
    description = redact(text(raw.get("message")) or text(raw.get("description")), names)
    detail = text(raw.get("status_detail"))
    status, substatus = _status(text(raw.get("status")), detail, description)
    code = scalar(raw.get("carrier_code")) or detail or text(raw.get("status")) or None
    return Draft(
        raw_timestamp=stamp,
        carrier_code=courier_code(courier or scalar(raw.get("source")), code),
        status=status,
        substatus=customs_side(substatus, description, iso2, route),
        description=description,
        location=where,
        time=resolve_iso(stamp, iso2),
        courier=courier,
    )


def _status(status_code: str, detail: str, description: str) -> tuple[Status, Substatus | None]:
    if status_code == "return_to_sender":
        status, substatus = classify(None, None, description)
        return (status, None) if status is Status.RETURNED else (S.EXCEPTION, U.RETURNING)
    stated = STATUSES.get(status_code)
    implied, substatus = lookup(STATUS_DETAILS, detail)
    if stated is None:
        return classify(implied or (S.IN_TRANSIT if substatus else None), substatus, description)
    if implied is not None and implied is not stated:
        substatus = None
    return classify(stated, substatus, description)
