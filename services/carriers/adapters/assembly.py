"""From a carrier's scans to canonical events: times, journey order, modules, ids, duplicates.

An adapter reads its payload into ``Draft`` objects (one per scan, already classified) and hands
them to ``assemble``, which puts them in journey order, gives each a module, builds the
deterministic ``event_id`` and drops scans the payload repeats. ``sequence`` is the position in the
journey after that, so it always counts 0, 1, 2, ... per shipment.

Adapters that order and number scans themselves and keep every scan (DHL, the aggregators) use
``assign_modules`` and ``build_events`` directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from services.carriers.adapters.base import Parse, ParseError, ParseResult
from services.carriers.adapters.phrases import (
    EXPORT_SIDE,
    city_in_text,
    classify_text,
    country_in_text,
    redact,
    says_export,
    says_import,
)
from shared.errors import InvalidInput
from shared.schema import Handoff, Location, TrackingEvent, make_event_id
from shared.taxonomy import Module, Source, Status, Substatus, infer_module
from shared.timeparse import ResolvedTime

U = Substatus
Listing = Literal["newest_first", "oldest_first", "unordered"]

_LEFT_ORIGIN = frozenset({*EXPORT_SIDE.values(), U.DEPARTED_ORIGIN_COUNTRY})
_ARRIVED = frozenset({*EXPORT_SIDE, U.ARRIVED_DESTINATION_COUNTRY, U.DUTIES_PAYABLE, U.DUTIES_PAID})


@dataclass(frozen=True)
class Route:
    origin: str | None
    destination: str | None

    @property
    def international(self) -> bool:
        return bool(self.origin and self.destination and self.origin != self.destination)


@dataclass(frozen=True)
class Draft:
    """One scan, read and classified, before it gets its place in the journey."""

    raw_timestamp: str
    time: ResolvedTime
    carrier_code: str | None
    status: Status
    substatus: Substatus | None
    module: Module | None
    description: str
    location: Location | None
    handoff: Handoff | None = None

    @property
    def country(self) -> str | None:
        return self.location.country if self.location else None


D = TypeVar("D", bound=Draft)


# --- reading values ---------------------------------------------------------------------------


def load_json(payload: bytes) -> Any:
    """The JSON document; ``InvalidInput`` for anything else (not orjson: big ints stay exact)."""
    try:
        return json.loads(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"invalid JSON: {exc}") from exc


def text(value: Any) -> str:
    """A string field with its whitespace collapsed; numbers become their digits; else ''."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return " ".join(value.split()) if isinstance(value, str) else ""


def code(value: Any) -> str | None:
    """A carrier code as written: strings keep leading zeros and case; integers become text."""
    return text(value) or None


def iso2(value: Any) -> str | None:
    candidate = text(value)
    return (
        candidate.upper()
        if len(candidate) == 2 and candidate.isascii() and candidate.isalpha()
        else None
    )


def as_list(value: Any) -> list[Any]:
    """Carriers send one object where a list is expected when there is only one."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def failure(number: str | None, kind: str, message: str) -> ParseResult:
    return ParseResult(errors=[ParseError(number, kind, message)])


def error_list(
    entries: list[Any], requested: str | None, http_status: int, not_found: Callable[[str], bool]
) -> ParseResult:
    """A carrier's ``[{code, message}]`` list as one error for the number asked: ``not_found``
    when ``not_found`` accepts one of the codes, else the carrier's."""
    found = [
        (code(e.get("code")) or "", text(e.get("message"))) for e in entries if isinstance(e, dict)
    ]
    if not found:
        return failure(requested, "carrier_error", f"HTTP {http_status} without an error list")
    kind = "not_found" if any(not_found(c) for c, _ in found) else "carrier_error"
    message = "; ".join(f"{c}: {m}" for c, m in found)
    return failure(requested, kind, f"HTTP {http_status}: {message}")


Read = Callable[[Any, str | None, str | None, Source, int], ParseResult]


def json_answer(read: Read) -> Parse:
    """A parse function that hands ``read`` the decoded JSON answer (to be run behind
    ``base.guarded``). A body that is not JSON is the carrier's error when the HTTP status says so
    (gateways answer 4xx and 5xx with HTML), else a malformed answer."""

    def parse(
        payload: bytes, requested: str | None, raw_ref: str | None, source: Source, status: int
    ) -> ParseResult:
        try:
            doc = load_json(payload)
        except InvalidInput as exc:
            if status >= 400:
                return failure(requested, "carrier_error", f"HTTP {status} without a JSON body")
            return failure(requested, "malformed", str(exc))
        return read(doc, requested, raw_ref, source, status)

    return parse


SCAN_ERRORS = (InvalidInput, ValueError, TypeError, AttributeError, KeyError, OverflowError)


def read_scans(
    raws: list[Any], read: Callable[[Any], D], number: str, label: str
) -> tuple[list[D], list[ParseError]]:
    """Each raw scan read by ``read``; a scan that cannot be read is reported and skipped."""
    drafts: list[D] = []
    errors: list[ParseError] = []
    for index, raw in enumerate(raws):
        try:
            drafts.append(read(raw))
        except SCAN_ERRORS as exc:
            errors.append(ParseError(number, "malformed", f"{label}[{index}]: {exc}"))
    return drafts, errors


def merge(results: Iterable[ParseResult]) -> ParseResult:
    events: list[TrackingEvent] = []
    errors: list[ParseError] = []
    for result in results:
        events.extend(result.events)
        errors.extend(result.errors)
    return ParseResult(events=events, errors=errors)


# Statuses a scan's text may put in place of a generic coded status ("exception", "in transit").
_TEXT_MAY_OVERRIDE = frozenset(
    {Status.FAILED_ATTEMPT, Status.AVAILABLE_FOR_PICKUP, Status.RETURNED, Status.EXCEPTION}
)
_GENERIC = frozenset({Status.IN_TRANSIT, Status.EXCEPTION})
# Substatuses the text may add to a coded status because they explain it.
_REASONS: dict[Status, frozenset[Substatus]] = {
    Status.FAILED_ATTEMPT: frozenset({U.ADDRESS_ISSUE, U.RECIPIENT_UNAVAILABLE, U.REFUSED}),
}
_PRESENTED = frozenset({U.IMPORT_CUSTOMS_PRESENTED, U.EXPORT_CUSTOMS_PRESENTED})
_CUSTOMS_OUTCOME = frozenset(
    {U.IMPORT_CUSTOMS_HELD, U.IMPORT_CUSTOMS_RELEASED, U.DUTIES_PAYABLE, U.DUTIES_PAID}
)


def refine(
    status: Status, substatus: Substatus | None, description: str, *, text_decides: bool = False
) -> tuple[Status, Substatus | None]:
    """A coded status made finer by the scan's text: substatus where the code gave none, and a
    specific status in place of a generic one.

    For carriers with precise codes text never makes a scan delivered or out for delivery; for
    carriers whose codes are coarse (``text_decides``) a generic code yields to any status the
    text names.
    """
    match = classify_text(description)
    if match is None:
        return status, substatus
    allowed = match.status is not None if text_decides else match.status in _TEXT_MAY_OVERRIDE
    if status in _GENERIC and allowed and match.status is not None:
        return match.status, match.substatus
    if substatus in _PRESENTED and match.substatus in _CUSTOMS_OUTCOME:
        return status, match.substatus  # "clearance in progress" coded, "held" or "released" said
    agrees = match.status is status or match.substatus in _REASONS.get(status, ())
    if status in _GENERIC or agrees:
        return status, substatus or match.substatus
    return status, substatus


# --- journey ------------------------------------------------------------------------------------


def journey_order(drafts: list[Draft], listing: Listing) -> list[Draft]:
    """Drafts oldest first.

    ``listing`` is what the carrier documents; a payload whose first and last scans say otherwise
    is believed over the documentation. Unordered payloads are sorted by instant where every scan
    has one, else by wall time, the payload order breaking ties.
    """
    if len(drafts) < 2:
        return list(drafts)
    if listing == "unordered":
        instants = [d.time.occurred_at for d in drafts]
        if all(instants):
            return sorted(drafts, key=lambda d: _when(d, d))
        return sorted(drafts, key=lambda d: d.time.occurred_at_local)
    first, last = _when(drafts[0], drafts[-1]), _when(drafts[-1], drafts[0])
    if first > last:
        return drafts[::-1]
    if first < last:
        return list(drafts)
    return drafts[::-1] if listing == "newest_first" else list(drafts)


def _when(draft: Draft, other: Draft) -> str:
    """Comparable time of ``draft``: the instant when both have one, else the wall time."""
    if draft.time.occurred_at is not None and other.time.occurred_at is not None:
        return draft.time.occurred_at.isoformat()
    return draft.time.occurred_at_local


def route_of(drafts: Iterable[Draft], origin: str | None, destination: str | None) -> Route:
    """The route, taking the first located scan's country as origin when the carrier gives none."""
    if origin is None:
        origin = next((d.country for d in drafts if d.country), None)
    return Route(origin, destination)


def customs_side(
    substatus: Substatus | None,
    description: str,
    country: str | None,
    route: Route,
    *,
    names_import: Callable[[str], bool] = says_import,
    names_export: Callable[[str], bool] = says_export,
) -> Substatus | None:
    """Customs rules name the import side; turn them round where the scan is on the export side:
    where the text says export, or the scan is in the origin country and the text does not say
    import. ``names_import`` and ``names_export`` are how the carrier's texts say so."""
    if substatus not in EXPORT_SIDE:
        return substatus
    if names_import(description):
        return substatus
    if names_export(description) or (route.international and country == route.origin):
        return EXPORT_SIDE[substatus]
    return substatus


def sided(drafts: list[Draft], route: Route) -> list[Draft]:
    """``customs_side`` applied to every draft, for adapters that learn the route after reading."""
    return [
        replace(d, substatus=customs_side(d.substatus, d.description, d.country, route))
        for d in drafts
    ]


def assign_modules(drafts: Sequence[D], route: Route) -> list[D]:
    """Module per scan, walking the journey oldest first.

    Origin-country scans before an export or departure are ``origin``; destination-country scans
    after the arrival there are ``destination``; everything between is ``international``; a scan
    with neither a telling code nor a country stays unknown.
    """
    left_origin = arrived = False
    out: list[D] = []
    for draft in drafts:
        module = draft.module or infer_module(draft.status, draft.substatus)
        substatus, country = draft.substatus, draft.country
        if module is None and route.international and country:
            if country == route.destination and not arrived and substatus is U.ARRIVED_HUB:
                substatus = U.ARRIVED_DESTINATION_COUNTRY
            module = module_by_country(
                country, route.origin, route.destination, left_origin, arrived
            )
        left_origin = (
            left_origin or substatus in _LEFT_ORIGIN or bool(country and country != route.origin)
        )
        arrived = arrived or substatus in _ARRIVED or bool(country and country == route.destination)
        out.append(replace(draft, module=module, substatus=substatus))
    return out


def module_by_country(
    country: str, origin: str | None, destination: str | None, left_origin: bool, arrived: bool
) -> Module:
    """The module of a scan placed only by its country, given how far the journey has come."""
    if country == origin:
        return Module.INTERNATIONAL if left_origin else Module.ORIGIN
    if country == destination:
        return Module.DESTINATION if arrived else Module.INTERNATIONAL
    return Module.INTERNATIONAL


@dataclass(frozen=True)
class Shipment:
    """Where the drafts of one shipment go: carrier, returned number, and the id scope."""

    carrier: str
    number: str
    raw_ref: str | None
    source: Source
    id_scope: str | None = None  # a carrier's unique shipment id, when one number has several


def assemble(
    shipment: Shipment, drafts: list[Draft], route: Route, errors: Iterable[ParseError] = ()
) -> ParseResult:
    """Events in journey order (drafts must be oldest first), duplicates dropped; ``errors`` (the
    scans that could not be read) come first in the result."""
    events: list[TrackingEvent] = []
    problems = list(errors)
    seen: set[Any] = set()
    for draft in assign_modules(drafts, route):
        event_id = _event_id(shipment, draft)
        if event_id in seen:  # the carrier listed the same scan twice
            continue
        seen.add(event_id)
        try:
            events.append(_build(shipment, draft, event_id, len(events)))
        except ValidationError as exc:
            problems.append(
                ParseError(shipment.number, "malformed", f"scan {draft.raw_timestamp}: {exc}")
            )
    return ParseResult(events=events, errors=problems)


def build_events(
    shipment: Shipment, numbered: Iterable[tuple[int, Draft]], errors: list[ParseError]
) -> list[TrackingEvent]:
    """Events with the sequence each draft was given, in the order given; for adapters that number
    scans themselves and keep every scan. A draft the schema refuses is added to ``errors``."""
    events: list[TrackingEvent] = []
    for sequence, draft in numbered:
        try:
            events.append(_build(shipment, draft, _event_id(shipment, draft), sequence))
        except ValidationError as exc:
            errors.append(ParseError(shipment.number, "malformed", f"event {sequence}: {exc}"))
    return events


def _event_id(shipment: Shipment, draft: Draft) -> Any:
    carrier_code = draft.carrier_code or ""
    if shipment.id_scope:
        carrier_code = f"{carrier_code}~{shipment.id_scope}"
    location_text = draft.location.text if draft.location else None
    return make_event_id(
        shipment.carrier, shipment.number, carrier_code, draft.raw_timestamp, location_text
    )


def _build(shipment: Shipment, draft: Draft, event_id: Any, sequence: int) -> TrackingEvent:
    return TrackingEvent(
        event_id=event_id,
        carrier=shipment.carrier,
        tracking_number=shipment.number,
        status=draft.status,
        substatus=draft.substatus,
        module=draft.module,
        carrier_code=draft.carrier_code,
        description=draft.description,
        location=draft.location,
        handoff=draft.handoff,
        source=shipment.source,
        raw_ref=shipment.raw_ref,
        sequence=sequence,
        occurred_at_local=draft.time.occurred_at_local,
        utc_offset=draft.time.utc_offset,
        occurred_at=draft.time.occurred_at,
        time_basis=draft.time.time_basis,
    )


def place(
    *,
    city: str | None = None,
    region: str | None = None,
    postal_code: str | None = None,
    country: str | None = None,
    facility: str | None = None,
    free_text: str | None = None,
) -> Location | None:
    """A Location, or None when nothing is known; ``text`` is the free text or the parts joined."""
    parts = [p for p in (city, region, postal_code, country) if p]
    label = free_text or ", ".join(parts)
    if not label and not facility:
        return None
    return Location(
        city=city,
        region=region,
        postal_code=postal_code,
        country=country,
        facility=facility,
        text=label or facility,
    )


def free_place(value: Any, names: list[str]) -> Location | None:
    """A Location from a free-text place ("Los Angeles, CA, US", "深圳市"), country where known."""
    raw = redact(text(value), names)
    if not raw:
        return None
    city = city_in_text(raw)
    return Location(city=city, country=country_in_text(raw), text=raw)
