"""DHL Shipment Tracking – Unified API (``GET /track/shipments``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §1.1): event timestamps are local wall times without
an offset (the instant is derived only where the country fixes the zone), ``status.timestamp`` may
carry ``Z``; events come newest first; ``id`` may be a JSON number; ``references`` may be an object
or an array; ``statusCode: unknown`` is an ordinary scan; ``description`` and ``location`` may be
missing; ``postalCode`` may be a place name and ``addressLocality`` may already name the country;
one response may hold several shipments, and the returned number may differ from the one asked for.
Errors are RFC 7807 problem documents with real HTTP status codes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from services.carriers.adapters.assembly import (
    Draft,
    Route,
    Shipment,
    assign_modules,
    build_events,
    customs_side,
)
from services.carriers.adapters.base import ParseError, ParseResult, guarded
from shared.errors import InvalidInput
from shared.schema import Location, TrackingEvent
from shared.taxonomy import Module, Source, Status, Substatus
from shared.timeparse import resolve_iso

CARRIER = "dhl"

# statusCode → base status; "unknown" is an ordinary scan in real ecommerce data, not an error.
STATUS_CODES: dict[str, Status] = {
    "pre-transit": Status.INFO_RECEIVED,
    "transit": Status.IN_TRANSIT,
    "delivered": Status.DELIVERED,
    "failure": Status.EXCEPTION,
    "unknown": Status.IN_TRANSIT,
}

S, U = Status, Substatus
EXPRESS_CODES: dict[str, tuple[Status, Substatus | None]] = {
    "PU": (S.IN_TRANSIT, U.PICKED_UP),
    "PL": (S.IN_TRANSIT, None),
    "AF": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "DF": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "AR": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "WC": (S.OUT_FOR_DELIVERY, None),
    "OK": (S.DELIVERED, None),
    "CC": (S.AVAILABLE_FOR_PICKUP, None),
    "BA": (S.EXCEPTION, U.ADDRESS_ISSUE),
    "NH": (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    "RD": (S.EXCEPTION, U.REFUSED),
    "RT": (S.RETURNED, None),
    "OH": (S.EXCEPTION, U.DELAYED),
    "CR": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
    "IC": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    "CD": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),  # controllable: the consignee has to act
    "UD": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_HELD),
    "MS": (S.IN_TRANSIT, U.DELAYED),
    "TP": (S.IN_TRANSIT, U.HANDED_OVER),
}
PARCEL_DE_CODES: dict[str, tuple[Status, Substatus | None]] = {
    "VA": (S.INFO_RECEIVED, None),
    "ES": (S.IN_TRANSIT, None),
    "AE": (S.IN_TRANSIT, U.PICKED_UP),
    "AN": (S.EXCEPTION, None),
    "NB": (S.IN_TRANSIT, None),
    "PO": (S.OUT_FOR_DELIVERY, None),
    "ZU": (S.DELIVERED, None),
    "ZN": (S.FAILED_ATTEMPT, None),
    "ZF": (S.AVAILABLE_FOR_PICKUP, None),
    "LA": (S.AVAILABLE_FOR_PICKUP, None),
    "ZO": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    "BV": (S.EXCEPTION, None),
}
DETAILED_CODES: dict[str, dict[str, tuple[Status, Substatus | None]]] = {
    "express": EXPRESS_CODES,
    "parcel-de": PARCEL_DE_CODES,
}
ALL_CODES = {**EXPRESS_CODES, **PARCEL_DE_CODES}  # the two lists do not overlap
# Detailed codes whose module the taxonomy cannot infer from status and substatus alone.
# fmt: off
CODE_MODULES: dict[str, Module] = {
    "PU": Module.ORIGIN, "VA": Module.ORIGIN, "ES": Module.ORIGIN, "AE": Module.ORIGIN,
    "AN": Module.ORIGIN, "AR": Module.DESTINATION,
}
# fmt: on

# Free-text rules over status + description, first match wins; a keyword matches at the start of a
# word, so inflections match too ("delay" → "delayed"). A status of None keeps the base status from
# statusCode. Customs rules name the import side; customs_side turns export ones round.
# fmt: off
TEXT_RULES: tuple[tuple[tuple[str, ...], Status | None, Substatus | None], ...] = (
    (("returned to shipper", "returned to sender", "returned to consignor"), S.RETURNED, None),
    (("return to sender", "return to shipper", "being returned", "returning to sender"),
     S.EXCEPTION, U.RETURNING),
    (("duties paid", "duty paid", "taxes paid"), None, U.DUTIES_PAID),
    (("duties", "duty", "import tax", "taxes due"), None, U.DUTIES_PAYABLE),
    (("clearance delay", "customs delay", "held by customs", "held in customs", "customs hold",
      "held for customs", "awaiting customs", "customs documents"), None, U.IMPORT_CUSTOMS_HELD),
    (("clearance processing complete", "clearance complete", "customs cleared", "cleared customs",
      "released by customs", "released from customs", "customs release", "clearance release"),
     None, U.IMPORT_CUSTOMS_RELEASED),
    (("customs", "clearance"), None, U.IMPORT_CUSTOMS_PRESENTED),
    (("bad address", "incorrect address", "address incorrect", "insufficient address",
      "address unknown", "unknown address", "address issue"), S.EXCEPTION, U.ADDRESS_ISSUE),
    (("refused", "rejected by recipient"), S.EXCEPTION, U.REFUSED),
    (("damage",), S.EXCEPTION, U.DAMAGED),
    (("lost", "cannot be located", "missing"), S.EXCEPTION, U.LOST),
    (("not home", "recipient not available", "consignee not available", "no one available",
      "recipient unavailable", "closed on arrival"), S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    (("delivery attempt", "delivery attempted", "attempted delivery", "could not be delivered",
      "unable to deliver", "not delivered"), S.FAILED_ATTEMPT, None),
    (("awaiting collection", "awaiting consignee collection", "ready for pickup",
      "ready for collection", "available for pickup", "available for collection"),
     S.AVAILABLE_FOR_PICKUP, None),
    (("out for delivery", "with delivering courier", "out with courier", "on vehicle for delivery",
      "loaded for delivery"), S.OUT_FOR_DELIVERY, None),
    (("departed origin country", "departed from origin country", "left the origin country",
      "departure from origin country", "departed country of origin"),
     None, U.DEPARTED_ORIGIN_COUNTRY),
    (("arrived at destination country", "arrived in destination country",
      "arrived in the destination country", "arrival in destination country"),
     None, U.ARRIVED_DESTINATION_COUNTRY),
    (("handed over", "forwarded to third party", "transferred to", "handover", "tendered to"),
     None, U.HANDED_OVER),
    (("picked up", "pickup", "pick-up", "collected from", "accepted"), None, U.PICKED_UP),
    (("delay", "mis-sort", "missort", "missed connection", "on hold"), None, U.DELAYED),
    (("arrived", "arrival"), None, U.ARRIVED_HUB),
    (("depart", "left", "dispatched"), None, U.DEPARTED_HUB),
)
# fmt: on
_RULE_PATTERNS = tuple(
    (re.compile(r"\b(?:" + "|".join(re.escape(k) for k in keys) + ")"), status, sub)
    for keys, status, sub in TEXT_RULES
)
_NAME_KEYS = frozenset({"name", "familyName", "givenName", "organizationName"})
_SIGNED_BY = re.compile(r"(signed\s+(?:for\s+)?by\s*:?\s*).*$", re.IGNORECASE)
_REDACTED = "[redacted]"


class DhlAdapter:
    carrier = CARRIER
    name = "DHL (Shipment Tracking – Unified API)"

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.POLL,
        http_status: int = 200,
    ) -> ParseResult:
        return guarded(_parse, payload, requested, raw_ref, source, http_status)


def _malformed(requested: str | None, message: str) -> ParseResult:
    return ParseResult(errors=[ParseError(requested, "malformed", message)])


def _parse(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    try:
        doc = json.loads(payload)  # not orjson: it turns integers over 64 bits into floats
    except (ValueError, TypeError, RecursionError) as exc:
        if http_status >= 400:
            return _problem({}, requested, http_status)
        return _malformed(requested, f"invalid JSON: {exc}")
    if isinstance(doc, dict) and (http_status >= 400 or _is_problem(doc)):
        return _problem(doc, requested, http_status)
    if not isinstance(doc, dict) or not isinstance(doc.get("shipments"), list):
        return _malformed(requested, "expected an object with a 'shipments' array")
    if not doc["shipments"]:
        return ParseResult(errors=[ParseError(requested, "not_found", "empty 'shipments' array")])
    events: list[TrackingEvent] = []
    errors: list[ParseError] = []
    for index, shipment in enumerate(doc["shipments"]):
        result = _parse_shipment(shipment, index, requested, raw_ref, source)
        events.extend(result.events)
        errors.extend(result.errors)
    return ParseResult(events=events, errors=errors)


def _is_problem(doc: dict[str, Any]) -> bool:
    return "shipments" not in doc and ("title" in doc or isinstance(doc.get("status"), int))


def _problem(doc: dict[str, Any], requested: str | None, http_status: int) -> ParseResult:
    status = doc.get("status") if isinstance(doc.get("status"), int) else http_status
    title, detail = _text(doc.get("title")), _text(doc.get("detail"))
    if status == 404 or http_status == 404:
        message = title or "No shipment with given tracking number found."
        return ParseResult(errors=[ParseError(requested, "not_found", message)])
    message = " – ".join(p for p in (title, detail) if p) or "problem document without a title"
    return ParseResult(errors=[ParseError(requested, "carrier_error", f"HTTP {status}: {message}")])


def _parse_shipment(
    shipment: Any, index: int, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(shipment, dict):
        return _malformed(requested, f"shipments[{index}] is not an object")
    number = _tracking_number(shipment.get("id"))
    if number is None:
        return _malformed(requested, f"shipments[{index}] has no usable 'id'")
    raw_events = shipment.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        status = shipment.get("status")
        raw_events = [status] if isinstance(status, dict) else []
    service = shipment.get("service") if isinstance(shipment.get("service"), str) else None
    route = Route(_country_of(shipment.get("origin")), _country_of(shipment.get("destination")))
    names = _personal_names(shipment.get("details"))
    numbered: list[tuple[int, Draft]] = []
    errors: list[ParseError] = []
    total = len(raw_events)
    for position, raw in enumerate(raw_events):
        try:  # newest first in the payload: reversed, so that a higher sequence is later
            numbered.append((total - 1 - position, _read_event(raw, service, route, names)))
        except (InvalidInput, ValueError, TypeError, AttributeError, KeyError) as exc:
            errors.append(ParseError(number, "malformed", f"events[{position}]: {exc}"))
    numbered.reverse()
    drafts = assign_modules([draft for _, draft in numbered], route)
    sequences = [sequence for sequence, _ in numbered]
    numbering = zip(sequences, drafts, strict=True)
    events = build_events(Shipment(CARRIER, number, raw_ref, source), numbering, errors)
    return ParseResult(events=events, errors=errors)


def _tracking_number(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _text(value: Any) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def _read_event(raw: Any, service: str | None, route: Route, names: list[str]) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    timestamp = raw.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp.strip():
        raise InvalidInput("event has no 'timestamp' string")
    status_code = raw.get("statusCode")
    if status_code is not None and not isinstance(status_code, str):
        raise InvalidInput("'statusCode' is not a string")
    location = _location(raw.get("location"), names)
    code = _detailed_code(raw, service)
    text = _redact(_describe(raw, code), names)
    status, substatus, module = _classify(status_code, code, text)
    country = location.country if location else None
    substatus = customs_side(
        substatus, text, country, route, names_import=_names_import, names_export=_names_export
    )
    return Draft(
        raw_timestamp=timestamp,
        carrier_code=code or status_code,
        status=status,
        substatus=substatus,
        module=module,
        description=text,
        location=location,
        time=resolve_iso(timestamp, country),
    )


def _describe(raw: dict[str, Any], code: str | None) -> str:
    status, description = _text(raw.get("status")), _text(raw.get("description"))
    if status == code and description:  # the code is kept in carrier_code already
        return description
    if status and description and status.lower() not in description.lower():
        return f"{status} – {description}"
    return description or status


def _detailed_code(raw: dict[str, Any], service: str | None) -> str | None:
    """The per-service detailed code, from ``statusDetailed`` or a ``status`` that is one."""
    table = ALL_CODES if service is None else DETAILED_CODES.get(service, {})
    for key in ("statusDetailed", "status"):
        value = raw.get(key)
        if isinstance(value, str) and value.strip() in table:
            return value.strip()
    return None


def _classify(
    status_code: str | None, code: str | None, text: str
) -> tuple[Status, Substatus | None, Module | None]:
    if code is not None:
        status, substatus = ALL_CODES[code]
        return status, substatus, CODE_MODULES.get(code)
    base = STATUS_CODES.get(status_code or "unknown", Status.IN_TRANSIT)
    lowered = text.lower()
    if base is Status.DELIVERED:  # authoritative; its texts ("left at the door") only mislead
        returned = _RULE_PATTERNS[0][0].search(lowered)
        return (Status.RETURNED if returned else base), None, None
    for pattern, status_rule, substatus in _RULE_PATTERNS:
        if pattern.search(lowered):
            return status_rule or base, substatus, None
    return base, None, None


def _names_import(text: str) -> bool:
    return "import" in text.lower()


def _names_export(text: str) -> bool:
    return "export" in text.lower()


def _address(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    address = value.get("address")
    return address if isinstance(address, dict) else {}


def _iso2(value: Any) -> str | None:
    text = _text(value)
    return text.upper() if len(text) == 2 and text.isascii() and text.isalpha() else None


def _country_of(place: Any) -> str | None:
    address = _address(place)
    return _iso2(address.get("countryCode")) or _split_locality(address.get("addressLocality"))[1]


def _split_locality(value: Any) -> tuple[str | None, str | None]:
    """'HEATHROW, GB' → ('HEATHROW', 'GB'); 'LEIPZIG - GERMANY' stays as it is."""
    text = _text(value)
    head, sep, tail = text.rpartition(",")
    if sep and _iso2(tail):
        return head.strip() or None, _iso2(tail)
    return text or None, None


def _location(value: Any, names: list[str]) -> Location | None:
    address = _address(value)
    if not address:
        return None
    city, locality_country = _split_locality(_redact(_text(address.get("addressLocality")), names))
    country = _iso2(address.get("countryCode")) or locality_country
    postal = _text(address.get("postalCode")) or None
    facility = _service_point(value)
    if postal and not any(ch.isdigit() for ch in postal):  # a place name such as "HEATHROW"
        if city is not None and city.upper() != postal.upper():
            facility = facility or postal
        city, postal = city or postal, None
    parts = [p for p in (postal, city, country) if p]
    if not parts:
        return None
    return Location(
        city=city, postal_code=postal, country=country, facility=facility, text=", ".join(parts)
    )


def _service_point(value: Any) -> str | None:
    point = value.get("servicePoint") if isinstance(value, dict) else None
    label = point.get("label") if isinstance(point, dict) else None
    return _text(label) or None


def _personal_names(details: Any) -> list[str]:
    """Names found under receiver, sender and proofOfDelivery, to be kept out of every event."""
    if not isinstance(details, dict):
        return []
    found: set[str] = set()
    for key in ("receiver", "sender", "proofOfDelivery"):
        _collect_names(details.get(key), found, depth=0)
    return sorted((n for n in found if len(n) >= 3), key=len, reverse=True)


def _collect_names(value: Any, found: set[str], depth: int) -> None:
    if depth > 4 or not isinstance(value, dict):
        return
    for key, item in value.items():
        if key in _NAME_KEYS and isinstance(item, str) and item.strip():
            found.add(item.strip())
        elif isinstance(item, dict):
            _collect_names(item, found, depth + 1)


def _redact(text: str, names: list[str]) -> str:
    text = _SIGNED_BY.sub(lambda m: m.group(1) + _REDACTED, text)
    for name in names:
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", _REDACTED, text, flags=re.IGNORECASE)
    return text
