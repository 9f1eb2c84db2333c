"""FedEx Track API (``POST /track/v1/trackingnumbers``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §3): ``scanEvents[].date`` is ISO 8601 with an
offset, except that "OC" (shipment information sent) events carry FedEx's system offset, not the
place's (the offset is kept as written, and the instant is left unknown: the wall time may be the
system's too), and
date-only pickups come without an offset (their instant then comes from the scan's state when it
keeps one zone, ``stateOrProvinceCode`` "CA"; else it stays unknown); scans are newest first; one number can return several
``trackResults`` (a reused number), told apart by ``trackingNumberUniqueId``, which is folded into
each event id so the shipments never collide, each shipment keeping its own journey order; a
per-number ``error`` inside HTTP 200 becomes that number's ``ParseError``; whole-request failures are
``errors`` lists with 4xx. ``exceptionCode`` keeps its leading zero ("08") and is kept with the
event type in ``carrier_code`` as ``"<eventType>/<exceptionCode>"``. Names of the recipient, the
shipper and whoever signed are never copied, nor street lines.
"""

from __future__ import annotations

from typing import Any

from services.carriers.adapters.assembly import (
    Draft,
    Route,
    Shipment,
    as_list,
    assemble,
    code,
    customs_side,
    error_list,
    failure,
    iso2,
    journey_order,
    json_answer,
    merge,
    place,
    read_scans,
    refine,
    text,
)
from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.localtime import resolve_time, wall_time
from services.carriers.adapters.phrases import personal_names, redact
from shared.errors import InvalidInput
from shared.schema import Location
from shared.taxonomy import Module, Source, Status, Substatus

CARRIER = "fedex"
S, U = Status, Substatus
Mapping = tuple[Status, Substatus | None]

# scanEvents[].eventType (and latestStatusDetail.code): movement and regulatory codes.
# fmt: off
EVENT_TYPES: dict[str, Mapping] = {
    "AA": (S.IN_TRANSIT, None), "AC": (S.IN_TRANSIT, U.HANDED_OVER), "AD": (S.IN_TRANSIT, None),
    "AF": (S.IN_TRANSIT, U.ARRIVED_HUB), "AO": (S.IN_TRANSIT, None), "AE": (S.IN_TRANSIT, None),
    "AP": (S.IN_TRANSIT, None), "AR": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "AX": (S.IN_TRANSIT, U.HANDED_OVER), "CA": (S.EXCEPTION, None), "CH": (S.IN_TRANSIT, None),
    "DD": (S.IN_TRANSIT, U.DELAYED), "DE": (S.FAILED_ATTEMPT, None), "DL": (S.DELIVERED, None),
    "DP": (S.IN_TRANSIT, U.DEPARTED_HUB), "DR": (S.IN_TRANSIT, None), "DS": (S.IN_TRANSIT, None),
    "DY": (S.IN_TRANSIT, U.DELAYED), "EA": (S.IN_TRANSIT, None), "ED": (S.IN_TRANSIT, None),
    "EO": (S.IN_TRANSIT, None), "EP": (S.IN_TRANSIT, None), "FD": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "HL": (S.AVAILABLE_FOR_PICKUP, None), "HP": (S.AVAILABLE_FOR_PICKUP, None),
    "IT": (S.IN_TRANSIT, None), "IX": (S.IN_TRANSIT, None), "LO": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "OC": (S.INFO_RECEIVED, None), "OD": (S.OUT_FOR_DELIVERY, None), "OF": (S.IN_TRANSIT, None),
    "OX": (S.IN_TRANSIT, U.HANDED_OVER), "PD": (S.IN_TRANSIT, U.DELAYED),
    "PF": (S.IN_TRANSIT, None), "PL": (S.IN_TRANSIT, None), "PM": (S.IN_TRANSIT, None),
    "PU": (S.IN_TRANSIT, U.PICKED_UP), "PX": (S.IN_TRANSIT, U.PICKED_UP),
    "RR": (S.IN_TRANSIT, None), "RM": (S.IN_TRANSIT, None), "RC": (S.IN_TRANSIT, None),
    "RS": (S.EXCEPTION, U.RETURNING), "RP": (S.IN_TRANSIT, None), "LP": (S.IN_TRANSIT, None),
    "RG": (S.IN_TRANSIT, None), "RD": (S.IN_TRANSIT, None), "SE": (S.EXCEPTION, None),
    "SF": (S.IN_TRANSIT, U.ARRIVED_HUB), "SP": (S.IN_TRANSIT, None), "TR": (S.IN_TRANSIT, None),
    # regulatory
    "CC": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
    "CD": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
    "CP": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
}
# fmt: on
# scanEvents[].exceptionCode: finer than the event type when present.
EXCEPTION_CODES: dict[str, Mapping] = {
    "08": (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    "A25": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    "A52": (S.IN_TRANSIT, U.DELAYED),
    "A47": (S.IN_TRANSIT, None),
    "A3": (S.IN_TRANSIT, None),
}
# derivedStatusCode: the coarse class, used for unknown event types.
DERIVED_CODES: dict[str, Mapping] = {
    "IN": (S.INFO_RECEIVED, None),
    "PU": (S.IN_TRANSIT, U.PICKED_UP),
    "IT": (S.IN_TRANSIT, None),
    "DL": (S.DELIVERED, None),
    "DE": (S.EXCEPTION, None),
    "DY": (S.IN_TRANSIT, U.DELAYED),
}
# Event types whose module is known from the type alone.
EVENT_MODULES: dict[str, Module] = {"OC": Module.ORIGIN, "OF": Module.ORIGIN, "PU": Module.ORIGIN}
# Event types stamped with FedEx's system offset rather than the scan's.
SYSTEM_OFFSET_TYPES = frozenset({"OC"})


class FedexAdapter:
    carrier = CARRIER
    name = "FedEx (Track API)"

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.POLL,
        http_status: int = 200,
    ) -> ParseResult:
        return guarded(json_answer(_parse), payload, requested, raw_ref, source, http_status)


def _parse(
    doc: Any, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    if not isinstance(doc, dict):
        return failure(requested, "malformed", "expected a JSON object")
    if "errors" in doc or http_status >= 400:
        return _request_errors(doc, requested, http_status)
    output = doc.get("output")
    complete = output.get("completeTrackResults") if isinstance(output, dict) else None
    if not isinstance(complete, list):
        return failure(requested, "malformed", "expected 'output.completeTrackResults' array")
    if not complete:
        return failure(requested, "not_found", "empty 'completeTrackResults'")
    return merge(_complete(c, i, requested, raw_ref, source) for i, c in enumerate(complete))


def _request_errors(doc: dict[str, Any], requested: str | None, http_status: int) -> ParseResult:
    return error_list(as_list(doc.get("errors")), requested, http_status, _says_not_found)


def _says_not_found(error_code: str) -> bool:
    return error_code.endswith("NOTFOUND")


def _complete(
    complete: Any, index: int, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(complete, dict):
        return failure(requested, "malformed", f"completeTrackResults[{index}] is not an object")
    asked = text(complete.get("trackingNumber")) or requested
    results = [r for r in as_list(complete.get("trackResults")) if isinstance(r, dict)]
    if not results:
        return failure(asked, "not_found", "no 'trackResults'")
    return merge(_track_result(r, asked, raw_ref, source) for r in results)


def _track_result(
    result: dict[str, Any], asked: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    info = result.get("trackingNumberInfo")
    info = info if isinstance(info, dict) else {}
    number = text(info.get("trackingNumber")) or asked
    if not number:
        return failure(asked, "malformed", "trackResult without a tracking number")
    error = result.get("error")
    if isinstance(error, dict):
        error_code = code(error.get("code")) or ""
        kind = "not_found" if _says_not_found(error_code) else "carrier_error"
        return failure(number, kind, f"{error_code}: {text(error.get('message'))}")
    scans = as_list(result.get("scanEvents"))
    if not scans:
        return failure(number, "not_found", "trackResult without scanEvents")
    names = _names(result)
    route = Route(_party_country(result, "shipper"), _party_country(result, "recipient"))
    drafts, errors = read_scans(scans, lambda e: _read(e, names, route), number, "scanEvents")
    unique_id = text(info.get("trackingNumberUniqueId")) or None
    shipment = Shipment(CARRIER, number, raw_ref, source, id_scope=unique_id)
    return assemble(shipment, journey_order(drafts, "newest_first"), route, errors)


def _names(result: dict[str, Any]) -> list[str]:
    values: list[Any] = []
    for key in ("recipientInformation", "shipperInformation"):
        party = result.get(key)
        contact = party.get("contact") if isinstance(party, dict) else None
        if isinstance(contact, dict):
            values += [contact.get("personName"), contact.get("companyName")]
    details = result.get("deliveryDetails")
    if isinstance(details, dict):
        values += [details.get("receivedByName"), details.get("signedByName")]
    return personal_names(*values)


def _party_country(result: dict[str, Any], party: str) -> str | None:
    """Country of the shipper or recipient, else of the origin or destination location."""
    fallback = {"shipper": "originLocation", "recipient": "destinationLocation"}[party]
    info = result.get(f"{party}Information")
    address = info.get("address") if isinstance(info, dict) else None
    if not isinstance(address, dict):
        location = result.get(fallback)
        inner = location.get("locationContactAndAddress") if isinstance(location, dict) else None
        address = inner.get("address") if isinstance(inner, dict) else None
    return iso2(address.get("countryCode")) if isinstance(address, dict) else None


def _read(scan: Any, names: list[str], route: Route) -> Draft:
    if not isinstance(scan, dict):
        raise InvalidInput("scan event is not an object")
    raw_date = scan.get("date")
    if not isinstance(raw_date, str) or not raw_date.strip():
        raise InvalidInput("scan event has no 'date' string")
    location = _location(scan.get("scanLocation"))
    country = location.country if location else None
    event_type, exception_code = code(scan.get("eventType")), code(scan.get("exceptionCode"))
    description = _describe(scan)
    status, substatus = _classify(
        event_type, exception_code, code(scan.get("derivedStatusCode")), description
    )
    local, offset = wall_time(raw_date)
    if event_type in SYSTEM_OFFSET_TYPES:
        # The offset is FedEx's system's, and so may the wall time be: neither the offset nor the
        # place gives a trustworthy instant.
        time = resolve_time(local, offset, None, trust_offset=False)
    else:
        time = resolve_time(local, offset, country, region=location.region if location else None)
    return Draft(
        raw_timestamp=raw_date.strip(),
        time=time,
        carrier_code="/".join(c for c in (event_type, exception_code) if c) or None,
        status=status,
        substatus=customs_side(substatus, description, country, route),
        module=EVENT_MODULES.get(event_type or ""),
        description=redact(description, names),
        location=location,
    )


def _describe(scan: dict[str, Any]) -> str:
    main, detail = text(scan.get("eventDescription")), text(scan.get("exceptionDescription"))
    if detail and detail.lower() not in main.lower():
        return f"{main} – {detail}" if main else detail
    return main or text(scan.get("derivedStatus"))


def _classify(
    event_type: str | None, exception_code: str | None, derived: str | None, description: str
) -> tuple[Status, Substatus | None]:
    mapped = (
        EXCEPTION_CODES.get(exception_code or "")
        or EVENT_TYPES.get(event_type or "")
        or DERIVED_CODES.get(derived or "")
        or (S.IN_TRANSIT, None)
    )
    return refine(mapped[0], mapped[1], description)


def _location(value: Any) -> Location | None:
    if not isinstance(value, dict):
        return None
    return place(
        city=text(value.get("city")) or None,
        region=text(value.get("stateOrProvinceCode")) or None,
        postal_code=text(value.get("postalCode")) or None,
        country=iso2(value.get("countryCode")),
    )


__all__ = ["DERIVED_CODES", "EVENT_TYPES", "EXCEPTION_CODES", "FedexAdapter"]
