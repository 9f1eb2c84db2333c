"""Australia Post Shipping and Tracking API (``GET /shipping/v1/track?tracking_ids=a,b``).

Quirks handled (reference/carrier-contracts.md §0 and §8, Australia Post):
- ``tracking_results[]`` hold either ``trackable_items[].events[]`` (articles) or a
  ``consignment`` with its own ``events[]`` plus ``items[].events[]``; each item's
  ``article_id`` is the number answered and is used;
- per-number errors inside HTTP 200: ``{tracking_id, errors[{code: "ESB-10001", name:
  "Invalid tracking ID"}]}``; a top-level ``errors`` array with a 4xx is the request's error;
- events ``{date, description, location}`` have NO codes: the text is mapped (and stands in for
  the code in the event id);
- ``date`` is ISO with an offset, but Australia Post stamps its own system offset (``+11:00``) on
  events abroad (US scans): outside Australia the offset is kept as written but not trusted, the
  instant coming from the place's zone where the country has one; in Australia the offset is
  trusted when it is the state's real offset at that wall time, else the instant comes from the
  state's zone (not for NSW, which has two), else it stays unknown;
- ``location`` is "SYDNEY NSW", "ALEXANDRIA NSW 2015", a country name, "CITY, COUNTRY", or absent;
- events are newest first; duplicates are dropped;
- signatories ("Signed for by …") are redacted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.postal import (
    EVENT_ERRORS,
    Draft,
    Redactor,
    Route,
    arr,
    code_text,
    country_code,
    failed,
    finish,
    load_json,
    make_location,
    merge,
    obj,
    read_events,
    split_local,
    text,
)
from services.carriers.adapters.upu import classify_postal
from shared.errors import InvalidInput
from shared.schema import Location
from shared.taxonomy import Source, Status, Substatus, TimeBasis
from shared.timeparse import ResolvedTime, format_offset, local_iso, parse_offset, resolve

CARRIER = "australia-post"

S, U = Status, Substatus
# fmt: off
TEXT_RULES: tuple[tuple[str, Status, Substatus | None], ...] = (
    (r"return(?:ed|ing)? to sender", S.EXCEPTION, U.RETURNING),
    (r"shipping information (?:received|approved)|label created", S.INFO_RECEIVED, None),
    (r"held by customs|customs hold", S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
    (r"cleared (?:by )?(?:australian )?customs|released (?:by|from) customs", S.IN_TRANSIT,
     U.IMPORT_CUSTOMS_RELEASED),
    (r"customs", S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    (r"arrived in australia|arrived (?:at|in) (?:the )?destination country", S.IN_TRANSIT,
     U.ARRIVED_DESTINATION_COUNTRY),
    (r"(?:departed|left) (?:the )?(?:origin country|australia)|international departure",
     S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),
    (r"attempted delivery|delivery attempted|carded|unable to deliver", S.FAILED_ATTEMPT, None),
    (r"awaiting collection|available for collection|ready for collection|parcel locker",
     S.AVAILABLE_FOR_PICKUP, None),
    (r"onboard for delivery|with (?:courier|driver) for delivery|out for delivery", S.OUT_FOR_DELIVERY,
     None),
    (r"(?<!un)delivered", S.DELIVERED, None),
    (r"lodged|received by australia post|picked up|accepted", S.IN_TRANSIT, U.PICKED_UP),
    (r"arrived|received", S.IN_TRANSIT, U.ARRIVED_HUB),
    (r"departed|dispatched|in transit to", S.IN_TRANSIT, U.DEPARTED_HUB),
)
# The zone each state keeps; only the single-zone states give an instant on their own.
STATE_ZONES: dict[str, str] = {
    "NSW": "Australia/Sydney", "ACT": "Australia/Sydney", "VIC": "Australia/Melbourne",
    "QLD": "Australia/Brisbane", "SA": "Australia/Adelaide", "WA": "Australia/Perth",
    "TAS": "Australia/Hobart", "NT": "Australia/Darwin",
}
SINGLE_ZONE_STATES = frozenset(STATE_ZONES) - {"NSW"}  # Broken Hill keeps Adelaide time
# fmt: on
_TEXT = tuple((re.compile(p, re.IGNORECASE), st, sub) for p, st, sub in TEXT_RULES)
_AU_PLACE = re.compile(
    r"^(?P<city>.*?)\s+(?P<state>NSW|ACT|VIC|QLD|SA|WA|TAS|NT)(?:\s+(?P<pc>\d{4}))?$"
)
_NOT_FOUND = re.compile(r"ESB-1000[12]|invalid tracking|not found|no tracking", re.IGNORECASE)


class AustraliaPostAdapter:
    carrier = CARRIER
    name = "Australia Post (Shipping and Tracking API)"

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
    try:
        doc = load_json(payload)
    except InvalidInput as exc:
        if http_status >= 400:
            return failed(requested, "carrier_error", f"HTTP {http_status}")
        return failed(requested, "malformed", str(exc))
    if not isinstance(doc, dict):
        return failed(requested, "malformed", "expected a JSON object")
    results = doc.get("tracking_results")
    if not isinstance(results, list):
        if arr(doc.get("errors")) or http_status >= 400:
            return failed(requested, *_error(doc.get("errors"), http_status))
        return failed(requested, "malformed", "expected a 'tracking_results' array")
    if not results:
        return failed(requested, "not_found", "empty 'tracking_results' array")
    return merge(
        _parse_result(result, index, requested, raw_ref, source)
        for index, result in enumerate(results)
    )


def _error(items: Any, http_status: int) -> tuple[str, str]:
    parts: list[str] = []
    for item in arr(items)[:3]:
        parts.extend(text(obj(item).get(k)) for k in ("code", "name", "message"))
    message = " – ".join(p for p in parts if p) or "error without a message"
    code = "not_found" if _NOT_FOUND.search(message) or http_status == 404 else "carrier_error"
    return code, f"HTTP {http_status}: {message}"


def _parse_result(
    result: Any, index: int, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(result, dict):
        return failed(requested, "malformed", f"tracking_results[{index}] is not an object")
    tracking_id = text(result.get("tracking_id")) or requested
    if arr(result.get("errors")):
        return failed(tracking_id, *_error(result["errors"], 200))
    units: list[tuple[str, Any]] = []
    consignment = obj(result.get("consignment"))
    if consignment and tracking_id:
        units.append((tracking_id, consignment.get("events")))
    for item in arr(result.get("trackable_items")) + arr(result.get("items")):
        item = obj(item)
        units.append((text(item.get("article_id")) or tracking_id or "", item.get("events")))
    if not units:
        return failed(tracking_id, "not_found", "no trackable items in the answer")
    return merge(
        _parse_unit(number, raw_events, requested, raw_ref, source) for number, raw_events in units
    )


def _parse_unit(
    number: str, raw_events: Any, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not number:
        return failed(requested, "malformed", "an item without 'article_id'")
    if not isinstance(raw_events, list) or not raw_events:
        return failed(number, "not_found", "no events for this item yet")
    redact = Redactor()
    drafts, errors = read_events(
        raw_events,
        lambda raw, position: _read_event(raw, position, redact),
        number,
        "events",
        skipped=(*EVENT_ERRORS, KeyError),
    )
    return finish(
        CARRIER,
        number,
        drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=True,
        route=Route(),
        errors=errors,
    )


def _read_event(raw: Any, position: int, redact: Redactor) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    stamp = code_text(raw.get("date"))
    if not stamp:
        raise InvalidInput("event has no 'date'")
    description = redact(text(raw.get("description")))
    location, state = _location(redact(text(raw.get("location"))))
    status, substatus, module = classify_postal("", description, {}, _TEXT)  # no codes
    return Draft(
        position=position,
        raw_timestamp=stamp,
        time=_time(stamp, location, state),
        status=status,
        substatus=substatus,
        module=module,
        carrier_code=None,
        description=description,
        location=location,
    )


def _time(stamp: str, location: Location | None, state: str | None) -> ResolvedTime:
    naive, offset = split_local(stamp)
    country = location.country if location else None
    if country != "AU":  # the +11:00 on scans abroad is Australia Post's, not the place's
        return resolve(naive, offset, country, trust_offset=False)
    if state is None:
        return resolve(naive, offset, None)
    zone = ZoneInfo(STATE_ZONES[state])
    if offset is not None and parse_offset(offset) == naive.replace(tzinfo=zone).utcoffset():
        return resolve(naive, offset, None)
    if state in SINGLE_ZONE_STATES:
        return _in_zone(naive, offset, zone)
    return resolve(naive, offset, None, trust_offset=False)


def _in_zone(naive: datetime, offset: str | None, zone: ZoneInfo) -> ResolvedTime:
    stated = parse_offset(offset)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)
    written = format_offset(stated) if stated is not None else None
    return ResolvedTime(local_iso(naive), written, instant, TimeBasis.LOCATION_TIMEZONE)


def _location(value: str) -> tuple[Location | None, str | None]:
    if not value:
        return None, None
    match = _AU_PLACE.match(value.upper())
    if match:
        city = match["city"].strip(" ,") or None
        state = match["state"]
        place = make_location(city=city, region=state, postal_code=match["pc"], country="AU")
        return place, state
    whole = country_code(value)
    if whole is not None:
        return make_location(country=whole), None
    head, _, tail = value.rpartition(",")
    country = country_code(tail) if head else None
    return make_location(city=(head if country else value).strip() or None, country=country), None
