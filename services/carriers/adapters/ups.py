"""UPS Track API (``GET /api/track/v1/details/{inquiryNumber}``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §2): ``date`` + ``time`` (``YYYYMMDD`` + ``HHMMSS``)
are local wall times without a zone, so the instant comes from ``gmtDate`` + ``gmtTime`` when UPS
sends them (``gmtTime`` may have lost its leading zero: "74700"), else from ``gmtOffset``, else from
the activity's country, or its state or province ("ATLANTA, GA"), when that keeps one zone (Texas
or Indiana do not: those scans stay ``time_basis: unknown``); activities are nominally newest first but CIE
data is unordered, so they are sorted by time; repeated activities collapse; the 3-digit
``statusCode`` keeps its leading zeros ("003") and is kept with the activity code in
``carrier_code`` as ``"<code>/<statusCode>"``; not found is a shipment ``warnings`` entry inside HTTP
200 and other failures are ``response.errors`` documents. Receiver names, signatures and street
addresses are never copied.
"""

from __future__ import annotations

from datetime import UTC, datetime
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
from services.carriers.adapters.localtime import resolve_time, zone_offset
from services.carriers.adapters.phrases import personal_names, redact
from shared.errors import InvalidInput
from shared.schema import Location
from shared.taxonomy import Source, Status, Substatus, TimeBasis
from shared.timeparse import ResolvedTime, format_offset, local_iso, parse_offset

CARRIER = "ups"
S, U = Status, Substatus
Mapping = tuple[Status, Substatus | None]

# status.statusCode: UPS's 3-digit customer-facing code (the most specific signal).
STATUS_CODES: dict[str, Mapping] = {
    "003": (S.INFO_RECEIVED, None),
    "005": (S.IN_TRANSIT, None),
    "010": (S.IN_TRANSIT, None),
    "011": (S.DELIVERED, None),
    "012": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    "013": (S.EXCEPTION, None),
    "021": (S.OUT_FOR_DELIVERY, None),
    "022": (S.FAILED_ATTEMPT, None),
    "034": (S.RETURNED, None),
    "038": (S.IN_TRANSIT, U.PICKED_UP),
    "040": (S.AVAILABLE_FOR_PICKUP, None),
}
# status.code: the activity code (manifest codes are read through status.type "M" instead).
ACTIVITY_CODES: dict[str, Mapping] = {
    "FS": (S.DELIVERED, None),
    "OT": (S.OUT_FOR_DELIVERY, None),
    "YP": (S.IN_TRANSIT, None),
    "AR": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "DP": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "OR": (S.IN_TRANSIT, U.PICKED_UP),
    "XD": (S.IN_TRANSIT, U.PICKED_UP),
    "SR": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
    "KB": (S.IN_TRANSIT, None),
    "DJ": (S.IN_TRANSIT, U.DELAYED),
    "RD": (S.IN_TRANSIT, U.HANDED_OVER),
    "PX": (S.IN_TRANSIT, None),
    "UP": (S.IN_TRANSIT, None),
    "UT": (S.IN_TRANSIT, None),
}
# status.type: the activity class, used when neither code is known.
TYPE_CODES: dict[str, Mapping] = {
    "D": (S.DELIVERED, None),
    "I": (S.IN_TRANSIT, None),
    "M": (S.INFO_RECEIVED, None),
    "MV": (S.EXCEPTION, None),
    "X": (S.EXCEPTION, None),
    "P": (S.IN_TRANSIT, U.PICKED_UP),
    "DO": (S.IN_TRANSIT, None),
    "DD": (S.IN_TRANSIT, None),
    "W": (S.IN_TRANSIT, None),
    "NA": (S.IN_TRANSIT, None),
    "U": (S.IN_TRANSIT, None),
}
MANIFEST_TYPES = frozenset({"M", "MV"})
NOT_FOUND_CODES = frozenset({"TW0001", "TV1002"})


class UpsAdapter:
    carrier = CARRIER
    name = "UPS (Track API)"

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
    if isinstance(doc.get("response"), dict) or http_status >= 400:
        return _errors(doc, requested, http_status)
    track = doc.get("trackResponse")
    shipments = track.get("shipment") if isinstance(track, dict) else None
    if not isinstance(shipments, list):
        return failure(requested, "malformed", "expected 'trackResponse.shipment' as an array")
    if not shipments:
        return failure(requested, "not_found", "empty 'trackResponse.shipment'")
    return merge(_shipment(s, i, requested, raw_ref, source) for i, s in enumerate(shipments))


def _errors(doc: dict[str, Any], requested: str | None, http_status: int) -> ParseResult:
    response = doc.get("response")
    errors = as_list(response.get("errors")) if isinstance(response, dict) else []
    return error_list(errors, requested, http_status, NOT_FOUND_CODES.__contains__)


def _shipment(
    shipment: Any, index: int, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(shipment, dict):
        return failure(requested, "malformed", f"shipment[{index}] is not an object")
    inquiry = text(shipment.get("inquiryNumber")) or requested
    packages = [p for p in as_list(shipment.get("package")) if isinstance(p, dict)]
    warnings = [w for w in as_list(shipment.get("warnings")) if isinstance(w, dict)]
    if not packages:
        if not warnings:
            return failure(inquiry, "not_found", "shipment without packages")
        codes = {code(w.get("code")) for w in warnings}
        kind = "not_found" if codes & NOT_FOUND_CODES else "carrier_error"
        message = "; ".join(f"{code(w.get('code'))}: {text(w.get('message'))}" for w in warnings)
        return failure(inquiry, kind, message)
    return merge(_package(p, inquiry, raw_ref, source) for p in packages)


def _package(
    package: dict[str, Any], inquiry: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    number = text(package.get("trackingNumber")) or inquiry
    if not number:
        return failure(inquiry, "malformed", "package without 'trackingNumber'")
    names = _names(package)
    route = Route(_address_country(package, "ORIGIN"), _address_country(package, "DESTINATION"))
    activities = as_list(package.get("activity"))
    if not activities:
        return failure(number, "not_found", "package without activity")
    drafts, errors = read_scans(activities, lambda a: _read(a, names, route), number, "activity")
    # Newest first in the documentation, unordered in CIE: sort, payload order breaking ties.
    ordered = journey_order(drafts[::-1], "unordered")
    return assemble(Shipment(CARRIER, number, raw_ref, source), ordered, route, errors)


def _names(package: dict[str, Any]) -> list[str]:
    values: list[Any] = []
    for entry in as_list(package.get("packageAddress")):
        if isinstance(entry, dict):
            values += [entry.get("name"), entry.get("attentionName")]
    delivery = package.get("deliveryInformation")
    if isinstance(delivery, dict):
        values.append(delivery.get("receivedBy"))
    return personal_names(*values)


def _address_country(package: dict[str, Any], kind: str) -> str | None:
    for entry in as_list(package.get("packageAddress")):
        if isinstance(entry, dict) and text(entry.get("type")).upper() == kind:
            address = entry.get("address")
            if isinstance(address, dict):
                return iso2(address.get("countryCode")) or iso2(address.get("country"))
    return None


def _read(activity: Any, names: list[str], route: Route) -> Draft:
    if not isinstance(activity, dict):
        raise InvalidInput("activity is not an object")
    status = activity.get("status")
    if not isinstance(status, dict):
        raise InvalidInput("activity has no 'status' object")
    location = _location(activity.get("location"))
    country = location.country if location else None
    description = text(status.get("description")) or text(status.get("simplifiedTextDescription"))
    kind, activity_code = code(status.get("type")), code(status.get("code"))
    status_code = code(status.get("statusCode"))
    mapped, substatus = _classify(kind, activity_code, status_code, description)
    raw_date, raw_time = text(activity.get("date")), text(activity.get("time"))
    return Draft(
        raw_timestamp=f"{raw_date}T{raw_time}",
        time=_time(activity, raw_date, raw_time, location),
        carrier_code="/".join(c for c in (activity_code, status_code) if c) or kind,
        status=mapped,
        substatus=customs_side(substatus, description, country, route),
        module=None,
        description=redact(description, names),
        location=location,
    )


def _classify(
    kind: str | None, activity_code: str | None, status_code: str | None, description: str
) -> tuple[Status, Substatus | None]:
    by_type = TYPE_CODES.get(kind or "", (S.IN_TRANSIT, None))
    if kind in MANIFEST_TYPES:  # manifest codes (DP "ready", MP, VP) are not movement codes
        return by_type
    by_status = STATUS_CODES.get(status_code or "")
    by_activity = ACTIVITY_CODES.get(activity_code or "")
    status = (by_status or by_activity or by_type)[0]
    substatus = next((m[1] for m in (by_status, by_activity, by_type) if m and m[1]), None)
    return refine(status, substatus, description)


def _time(
    activity: dict[str, Any], raw_date: str, raw_time: str, location: Location | None
) -> ResolvedTime:
    local = _compact(raw_date, raw_time)
    offset = zone_offset(activity.get("gmtOffset"))
    gmt_date, gmt_time = text(activity.get("gmtDate")), text(activity.get("gmtTime"))
    if gmt_date and gmt_time:
        instant = _compact(gmt_date, gmt_time).replace(tzinfo=UTC)
        stated = format_offset(delta) if (delta := parse_offset(offset)) is not None else None
        return ResolvedTime(local_iso(local), stated, instant, TimeBasis.CARRIER_UTC)
    country, region = (location.country, location.region) if location else (None, None)
    return resolve_time(local, offset, country, region=region)


def _compact(raw_date: str, raw_time: str) -> datetime:
    """'20250310' + '74700' → 2025-03-10T07:47:00 (a time that lost its leading zero is padded)."""
    if len(raw_date) != 8 or not raw_date.isdigit():
        raise InvalidInput(f"date is not YYYYMMDD: {raw_date!r}")
    if not 1 <= len(raw_time) <= 6 or not raw_time.isdigit():
        raise InvalidInput(f"time is not HHMMSS: {raw_time!r}")
    return datetime.strptime(raw_date + raw_time.zfill(6), "%Y%m%d%H%M%S")


def _location(value: Any) -> Location | None:
    address = value.get("address") if isinstance(value, dict) else None
    if not isinstance(address, dict):
        return None
    return place(
        city=text(address.get("city")) or None,
        region=text(address.get("stateProvince")) or None,
        postal_code=text(address.get("postalCode")) or None,
        country=iso2(address.get("countryCode")) or iso2(address.get("country")),
    )


__all__ = ["ACTIVITY_CODES", "STATUS_CODES", "TYPE_CODES", "UpsAdapter"]
