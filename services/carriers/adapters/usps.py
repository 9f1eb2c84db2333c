"""USPS Tracking API v3 (``GET /tracking/v3/tracking/{n}?expand=DETAIL``, JSON) and the legacy
Web Tools ``TrackV2`` XML answer, both parsed to canonical events.

Quirks handled (reference/carrier-contracts.md §4):
- v3 ``eventTimestamp`` is the LOCAL wall time without an offset (minute precision); the instant
  comes from ``GMTTimestamp`` (``Z``), the stated offset from ``GMTOffset``, which may lack a
  leading zero (``-7:00``); without ``GMTTimestamp`` the offset alone gives the instant, and
  without either the scan's state does when it keeps one zone (NY, CA; not TX, FL, IN...);
- ``eventCode`` is a string with leading zeros kept (``03``, ``01``) or letters (``OF``, ``GX``);
- the number answered (``trackingNumber``, the PIC) may differ from the one asked: it is used;
- facility events put the facility name in ``eventCity`` with null state and ZIP: it becomes the
  location's ``facility``; ``eventCountry`` is a country name (blank for US scans);
- international scans reuse UPU wording ("Processed Through Facility", "Arrived at inward office
  of exchange"): UPU codes are read from the text where the code list has nothing;
- the recipient's ``name``, ``firm`` and ``authorizedAgent`` are never copied, and are redacted if
  a text repeats them;
- events are newest first, duplicates are dropped;
- errors: ``{apiVersion, error{code, message, errors[]}}`` (any HTTP status) and the OAuth error
  ``{error, error_description}``; an answer without events is reported, never an empty success;
- TrackV2 XML (defusedxml): ``TrackSummary`` is the newest event and ``TrackDetail`` the older
  ones; ``EventDate`` "January 6, 2016" with a 12-hour ``EventTime`` "10:45 pm" / "9:10 am" and
  no zone (the instant then comes from ``EventState`` as above); ``<Error>`` inside ``TrackInfo`` in an HTTP 200 answer is that number's error.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from services.carriers.adapters.base import ParseError, ParseResult, guarded
from services.carriers.adapters.postal import (
    Draft,
    Redactor,
    Route,
    arr,
    child_text,
    children,
    code_text,
    country_code,
    failed,
    finish,
    load_json,
    load_xml,
    make_location,
    merge,
    obj,
    read_events,
    s10_origin,
    split_local,
    tag,
    text,
    utc_with_local,
)
from services.carriers.adapters.upu import classify_postal
from shared.errors import InvalidInput
from shared.schema import Location
from shared.taxonomy import Source, Status, Substatus
from shared.timeparse import ResolvedTime, format_offset, parse_offset, resolve

CARRIER = "usps"

S, U = Status, Substatus
# fmt: off
EVENT_CODES: dict[str, tuple[Status, Substatus | None]] = {
    "GX": (S.INFO_RECEIVED, None), "MA": (S.INFO_RECEIVED, None),
    "03": (S.IN_TRANSIT, U.PICKED_UP), "10": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "A1": (S.IN_TRANSIT, U.ARRIVED_HUB), "T1": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "TL": (S.IN_TRANSIT, None), "SF": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "07": (S.IN_TRANSIT, U.ARRIVED_HUB), "OF": (S.OUT_FOR_DELIVERY, None),
    "01": (S.DELIVERED, None), "17": (S.DELIVERED, None), "43": (S.DELIVERED, None),
    "02": (S.FAILED_ATTEMPT, None), "04": (S.EXCEPTION, U.REFUSED),
    "05": (S.EXCEPTION, U.ADDRESS_ISSUE), "09": (S.EXCEPTION, U.RETURNING),
    "16": (S.AVAILABLE_FOR_PICKUP, None),
    **{str(c): (S.EXCEPTION, U.RETURNING) for c in range(21, 30)},
    **{str(c): (S.FAILED_ATTEMPT, None) for c in range(53, 57)},
    "80": (S.IN_TRANSIT, U.HANDED_OVER), "81": (S.IN_TRANSIT, U.HANDED_OVER),
    "82": (S.IN_TRANSIT, U.HANDED_OVER),
}
# USPS's own wording for what has no code in the list above; first match wins.
TEXT_RULES: tuple[tuple[str, Status, Substatus | None], ...] = (
    (r"customs clearance processing complete|released from customs", S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
    (r"held (?:in|by) (?:import )?customs|customs delay", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
    (r"inbound into customs|customs clearance", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    (r"origin post is preparing shipment|accepted at|usps in possession", S.IN_TRANSIT, U.PICKED_UP),
    (r"shipping label created|pre-shipment", S.INFO_RECEIVED, None),
    (r"return to sender|returned to sender", S.EXCEPTION, U.RETURNING),
    (r"notice left|delivery attempt|no access to delivery location", S.FAILED_ATTEMPT, None),
    (r"available for pickup", S.AVAILABLE_FOR_PICKUP, None),
    (r"out for delivery", S.OUT_FOR_DELIVERY, None),
    (r"(?<!un)delivered", S.DELIVERED, None),
    (r"arrived|processed through|received", S.IN_TRANSIT, U.ARRIVED_HUB),
    (r"departed|dispatched|left", S.IN_TRANSIT, U.DEPARTED_HUB),
)
# fmt: on
_TEXT = tuple((re.compile(p, re.IGNORECASE), st, sub) for p, st, sub in TEXT_RULES)
_FACILITY = re.compile(
    r"\b(?:CENTER|CENTRE|FACILITY|HUB|ANNEX|NDC|ISC|NETWORK|PLANT|DISTRIBUTION)\b", re.I
)
_NOT_FOUND = re.compile(r"not found|could not locate|no record|-2147219283|404", re.IGNORECASE)


class UspsAdapter:
    carrier = CARRIER
    name = "USPS (Tracking API v3)"

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


def _parse(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    parse = _parse_xml if payload.lstrip()[:1] == b"<" else _parse_json
    return parse(payload, requested, raw_ref, source, http_status)


def _error_code(http_status: int, message: str) -> str:
    return "not_found" if http_status == 404 or _NOT_FOUND.search(message) else "carrier_error"


# --- v3 JSON -------------------------------------------------------------------------------------


def _parse_json(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    try:
        doc = load_json(payload)
    except InvalidInput as exc:
        if http_status >= 400:
            return failed(requested, _error_code(http_status, ""), f"HTTP {http_status}")
        return failed(requested, "malformed", str(exc))
    if not isinstance(doc, dict):
        return failed(requested, "malformed", "expected a JSON object")
    if "error" in doc or http_status >= 400:
        return _json_error(doc, requested, http_status)
    number = text(doc.get("trackingNumber")) or (requested or "")
    if not number:
        return failed(requested, "malformed", "no 'trackingNumber' in the answer")
    raw_events = doc.get("trackingEvents")
    if not isinstance(raw_events, list):
        return failed(number, "malformed", "expected a 'trackingEvents' array")
    if not raw_events:
        return failed(number, "not_found", "the answer has no tracking events yet")
    redact = Redactor(_names(raw_events))
    drafts, errors = read_events(
        raw_events,
        lambda raw, position: _json_event(raw, position, redact),
        number,
        "trackingEvents",
    )
    route = Route(s10_origin(number), "US")
    return finish(
        CARRIER,
        number,
        drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=True,
        route=route,
        errors=errors,
    )


def _json_error(doc: dict[str, Any], requested: str | None, http_status: int) -> ParseResult:
    error = doc.get("error")
    if isinstance(error, str):  # OAuth: {error, error_description}
        message = " – ".join(p for p in (error, text(doc.get("error_description"))) if p)
        return failed(requested, "carrier_error", f"HTTP {http_status}: {message}")
    details = obj(error)
    parts = [text(details.get("code")), text(details.get("message"))]
    for item in arr(details.get("errors"))[:5]:
        parts.extend(text(obj(item).get(k)) for k in ("code", "title", "detail"))
    message = " – ".join(p for p in parts if p) or "error without a message"
    return failed(requested, _error_code(http_status, message), f"HTTP {http_status}: {message}")


def _names(raw_events: list[Any]) -> list[str]:
    return [text(obj(e).get(k)) for e in raw_events for k in ("name", "firm")]


def _json_event(raw: Any, position: int, redact: Redactor) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    local = text(raw.get("eventTimestamp"))
    if not local:
        raise InvalidInput("event has no 'eventTimestamp'")
    location = _location(
        raw.get("eventCity"), raw.get("eventState"), raw.get("eventZIP"), raw.get("eventCountry")
    )
    time = _v3_time(local, text(raw.get("GMTTimestamp")), text(raw.get("GMTOffset")), location)
    return _draft(
        position,
        local,
        time,
        code_text(raw.get("eventCode")),
        redact(text(raw.get("eventType"))),
        location,
    )


def _v3_time(local: str, gmt: str, offset: str, location: Location | None) -> ResolvedTime:
    naive, written = split_local(local)
    if written is None and gmt:
        instant, zone = split_local(gmt)
        if zone in ("Z", "+00:00", "+0000"):
            resolved = utc_with_local(naive, instant)
            stated = parse_offset(offset) if offset else None
            if stated is not None:
                resolved = ResolvedTime(
                    resolved.occurred_at_local,
                    format_offset(stated),
                    resolved.occurred_at,
                    resolved.time_basis,
                )
            return resolved
    country, region = (location.country, location.region) if location else (None, None)
    return resolve(naive, written or offset or None, country, region=region)


# --- shared by both formats ----------------------------------------------------------------------


def _draft(
    position: int,
    raw_timestamp: str,
    time: ResolvedTime,
    code: str,
    description: str,
    location: Location | None,
) -> Draft:
    status, substatus, module = classify_postal(code, description, EVENT_CODES, _TEXT)
    return Draft(
        position=position,
        raw_timestamp=raw_timestamp,
        time=time,
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=code or None,
        description=description,
        location=location,
    )


def _location(city: Any, state: Any, zip_code: Any, country: Any) -> Location | None:
    city_text, state_text, zip_text = text(city), text(state), text(zip_code)
    facility = None
    if city_text and not state_text and not zip_text and _FACILITY.search(city_text):
        facility, city_text = city_text, ""
    iso = country_code(country)
    if iso is None and not text(country) and (state_text or zip_text or facility):
        iso = "US"
    return make_location(
        city=city_text or None,
        region=state_text or None,
        postal_code=zip_text or None,
        country=iso,
        facility=facility,
    )


# --- legacy TrackV2 XML --------------------------------------------------------------------------


def _parse_xml(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source, http_status: int
) -> ParseResult:
    try:
        root = load_xml(payload)
    except InvalidInput as exc:
        return failed(requested, "carrier_error" if http_status >= 400 else "malformed", str(exc))
    if tag(root) == "Error":
        message = child_text(root, "Description") or child_text(root, "Number")
        return failed(requested, _error_code(http_status, message), f"USPS error: {message}")
    if tag(root) != "TrackResponse":
        return failed(requested, "malformed", f"expected <TrackResponse>, got <{tag(root)[:40]}>")
    infos = children(root, "TrackInfo")
    if not infos:
        return failed(requested, "not_found", "no <TrackInfo> in the answer")
    return merge(_parse_track_info(info, requested, raw_ref, source) for info in infos)


def _parse_track_info(
    info: Element, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    number = text(info.get("ID")) or (requested or "")
    error = next(iter(children(info, "Error")), None)
    if error is not None:
        message = child_text(error, "Description") or child_text(error, "Number")
        code = _error_code(200, message + " " + child_text(error, "Number"))
        return failed(number or requested, code, f"USPS error: {message}")
    if not number:
        return failed(requested, "malformed", "<TrackInfo> without an ID")
    nodes = children(info, "TrackSummary") + children(info, "TrackDetail")
    if not nodes:
        return failed(number, "not_found", "no TrackSummary or TrackDetail")
    redact = Redactor(child_text(n, k) for n in nodes for k in ("Name", "FirmName"))
    drafts: list[Draft] = []
    errors: list[ParseError] = []
    for position, node in enumerate(nodes):  # summary first: newest first throughout
        try:
            drafts.append(_xml_event(node, position, redact))
        except (InvalidInput, ValueError, TypeError, OverflowError) as exc:
            errors.append(ParseError(number, "malformed", f"{tag(node)}[{position}]: {exc}"))
    return finish(
        CARRIER,
        number,
        drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=True,
        route=Route(s10_origin(number), "US"),
        errors=errors,
    )


def _xml_event(node: Element, position: int, redact: Redactor) -> Draft:
    date, clock = child_text(node, "EventDate"), child_text(node, "EventTime")
    if not date:
        raise InvalidInput("event has no <EventDate>")
    location = _location(
        child_text(node, "EventCity"),
        child_text(node, "EventState"),
        child_text(node, "EventZIPCode"),
        child_text(node, "EventCountry"),
    )
    naive = parse_us_datetime(date, clock)
    time = resolve(
        naive,
        None,
        location.country if location else None,
        region=location.region if location else None,
    )
    raw_timestamp = f"{date} {clock}".strip()
    return _draft(
        position,
        raw_timestamp,
        time,
        child_text(node, "EventCode"),
        redact(child_text(node, "Event")),
        location,
    )


def parse_us_datetime(date: str, clock: str) -> datetime:
    """'January 6, 2016' + '10:45 pm' (12-hour, no leading zero, may be blank) → naive local."""
    day = datetime.strptime(" ".join(date.replace(",", ", ").split()), "%B %d, %Y")
    if not clock:
        return day
    match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*([ap])\.?m\.?", clock.strip(), re.IGNORECASE)
    if not match:
        raise InvalidInput(f"unreadable 12-hour time {clock[:20]!r}")
    hour, minute = int(match[1]), int(match[2])
    if not 1 <= hour <= 12:
        raise InvalidInput(f"hour out of range in {clock[:20]!r}")
    hour = hour % 12 + (12 if match[3].lower() == "p" else 0)
    return day.replace(hour=hour, minute=minute)
