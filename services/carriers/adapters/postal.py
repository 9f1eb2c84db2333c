"""What the postal adapters share: reading untrusted bodies, times, places, and finishing events.

Every postal adapter turns its carrier's payload into ``Draft`` events (position in the payload,
raw timestamp, resolved time, status, module, code, text, place, hand-off) and hands them to
``finish``, which puts them in journey order, fills in modules along the route, builds canonical
``TrackingEvent`` objects with deterministic ids, drops duplicates (same id twice in one payload)
and numbers them: ``sequence`` is the journey order, oldest first.

Event ids follow DESIGN.md (carrier, returned number, carrier code, raw timestamp, location text);
carriers without codes (Australia Post, China Post's feed) use the event text in the code's place,
so two different scans at the same minute and place stay apart.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XmlSyntaxError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import ValidationError

from services.carriers.adapters.assembly import module_by_country
from services.carriers.adapters.base import ParseError, ParseResult
from services.carriers.adapters.phrases import EXPORT_SIDE
from shared.errors import InvalidInput
from shared.numbers import is_valid_s10
from shared.schema import Handoff, Location, TrackingEvent, make_event_id
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis, infer_module
from shared.timeparse import ResolvedTime, format_offset, local_iso, resolve, split_iso

# The designated postal operator of a country, as carrier ids of this build.
POSTS: dict[str, str] = {
    "US": "usps",
    "GB": "royal-mail",
    "FR": "la-poste",
    "AU": "australia-post",
    "CA": "canada-post",
    "CN": "china-post",
}

# fmt: off
COUNTRY_NAMES: dict[str, str] = {
    "CHINA": "CN", "CHINA MAINLAND": "CN", "PEOPLE'S REPUBLIC OF CHINA": "CN", "CHN": "CN",
    "HONG KONG": "HK", "HONG KONG SAR": "HK", "HKG": "HK", "TAIWAN": "TW", "TWN": "TW",
    "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US", "USA": "US", "U.S.A.": "US",
    "UNITED KINGDOM": "GB", "GREAT BRITAIN": "GB", "UK": "GB", "GBR": "GB",
    "UNITED KINGDOM OF GREAT BRITAIN AND NORTHERN IRELAND": "GB",
    "FRANCE": "FR", "FRA": "FR", "GERMANY": "DE", "DEU": "DE", "AUSTRALIA": "AU", "AUS": "AU",
    "CANADA": "CA", "CAN": "CA", "JAPAN": "JP", "JPN": "JP", "SINGAPORE": "SG", "SGP": "SG",
    "NETHERLANDS": "NL", "NLD": "NL", "BELGIUM": "BE", "BEL": "BE", "SPAIN": "ES", "ESP": "ES",
    "ITALY": "IT", "ITA": "IT", "IRELAND": "IE", "IRL": "IE", "SWITZERLAND": "CH", "CHE": "CH",
    "NEW ZEALAND": "NZ", "NZL": "NZ", "KOREA, REPUBLIC OF": "KR", "SOUTH KOREA": "KR",
    "KOR": "KR", "MEXICO": "MX", "MEX": "MX", "INDIA": "IN", "IND": "IN", "SWEDEN": "SE",
    "SWE": "SE", "THAILAND": "TH", "MALAYSIA": "MY", "UNITED ARAB EMIRATES": "AE",
    "BRAZIL": "BR", "BRA": "BR", "POLAND": "PL", "POL": "PL",
}
# fmt: on
KNOWN_COUNTRIES = frozenset(COUNTRY_NAMES.values())

_REDACTED = "[redacted]"
_SIGNATORY = re.compile(
    r"((?:signed\s+(?:for\s+)?by|signature\s+of|sign(?:atory|ed)\s*:|"
    r"signataire\s*:?|sign[ée]\s+par)\s*:?\s*)[^,;()\n]*",
    re.IGNORECASE,
)
_SIGNATORY_ZH = re.compile(r"((?:签收人|签收者)\s*[:：]?\s*|收件人\s*[:：]\s*)[^\s,，。;；]+")
_LOCAL_RE = (
    (re.compile(r"^(\d{4})(\d{2})(\d{2})[ T]?(\d{2})(\d{2})(\d{2})?$"), "ymd"),
    (re.compile(r"^(\d{2})\.(\d{2})\.(\d{4})[ T](\d{2}):(\d{2})(?::(\d{2}))?$"), "dmy"),
)


@dataclass(frozen=True)
class Draft:
    position: int  # index in the payload as received
    raw_timestamp: str
    time: ResolvedTime
    status: Status
    substatus: Substatus | None
    module: Module | None
    carrier_code: str | None
    description: str
    location: Location | None
    handoff: Handoff | None = None

    @property
    def country(self) -> str | None:
        return self.location.country if self.location else None


@dataclass(frozen=True)
class Route:
    origin: str | None = None
    destination: str | None = None

    @property
    def international(self) -> bool:
        """Origin known and the destination another country (or not known yet)."""
        return bool(self.origin) and self.origin != self.destination


# --- reading untrusted bodies ------------------------------------------------------------------


def load_json(payload: bytes) -> Any:
    """JSON from bytes; InvalidInput for anything that is not (not orjson: big integers stay)."""
    try:
        return json.loads(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"invalid JSON: {str(exc)[:120]}") from exc


def load_xml(payload: bytes) -> Element:
    """XML through defusedxml: no DTDs, no entities, no external references (bombs included)."""
    try:
        root: Element = SafeET.fromstring(payload, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidInput(f"refused XML: {type(exc).__name__}") from exc
    except (XmlSyntaxError, ValueError, TypeError, LookupError, RecursionError) as exc:
        raise InvalidInput(f"invalid XML: {str(exc)[:120]}") from exc
    return root


def tag(element: Element) -> str:
    """The local name of an element, without its namespace."""
    name = element.tag if isinstance(element.tag, str) else ""
    return name.rsplit("}", 1)[-1]


def children(element: Element, name: str) -> list[Element]:
    return [child for child in element if tag(child) == name]


def child_text(element: Element, name: str) -> str:
    for child in element:
        if tag(child) == name:
            return text(child.text)
    return ""


def text(value: Any) -> str:
    """A string field with whitespace collapsed; anything else (numbers included) is ''."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def code_text(value: Any) -> str:
    """A carrier code as a string: leading zeros kept, case kept; integers are written out."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return text(value)


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def arr(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def first(value: Any) -> dict[str, Any]:
    """The first object of a list, or the object itself (APIs that wrap objects in arrays)."""
    if isinstance(value, list):
        return next((item for item in value if isinstance(item, dict)), {})
    return obj(value)


# --- times -------------------------------------------------------------------------------------


def split_local(value: str) -> tuple[datetime, str | None]:
    """Any of the carriers' spellings → (naive wall time, offset as written or None).

    ISO 8601 with or without an offset (``+0800``, 7-digit fractions), ``YYYY-MM-DD HH:MM:SS``,
    ``YYYYMMDD HHMMSS`` / ``YYYYMMDDHHMM`` (EDI) and ``DD.MM.YYYY HH:MM``.
    """
    stripped = value.strip()
    try:
        return split_iso(stripped)
    except InvalidInput:
        pass
    for pattern, order in _LOCAL_RE:
        match = pattern.match(stripped)
        if match:
            a, b, c, hh, mm, ss = match.groups()
            year, month, day = (a, b, c) if order == "ymd" else (c, b, a)
            return datetime(int(year), int(month), int(day), int(hh), int(mm), int(ss or 0)), None
    raise InvalidInput(f"unreadable timestamp {value[:40]!r}")


def resolve_text(
    value: str, country: str | None, offset: str | None = None, *, trust_offset: bool = True
) -> ResolvedTime:
    """Resolve a timestamp string; a separate ``offset`` field applies when the string has none."""
    naive, written = split_local(value)
    return resolve(naive, written or offset, country, trust_offset=trust_offset)


def utc_with_local(local: datetime, utc: datetime) -> ResolvedTime:
    """A carrier that states both the local wall time and the UTC instant (USPS, UPU IPS)."""
    instant = utc.replace(tzinfo=UTC)
    delta = local.replace(tzinfo=UTC) - instant
    minutes = delta.total_seconds() / 60
    offset = None
    if abs(delta) <= timedelta(hours=14) and minutes % 15 == 0:
        offset = format_offset(delta)
    return ResolvedTime(local_iso(local), offset, instant, TimeBasis.CARRIER_UTC)


# --- places and people ------------------------------------------------------------------------


def country_code(value: Any) -> str | None:
    """ISO alpha-2 from an alpha-2 code, an alpha-3 code or a country name; None if unknown."""
    name = text(value).upper()
    if len(name) == 2 and name.isascii() and name.isalpha():
        return name
    return COUNTRY_NAMES.get(name)


def impc_country(value: str) -> str | None:
    """The country of a six-character UPU office-of-exchange code such as ``USJFKA``."""
    code = value.strip().upper()
    if len(code) == 6 and code.isascii() and code.isalpha():
        return code[:2]
    return None


def s10_origin(number: str) -> str | None:
    """The origin country of a valid UPU S10 number (``LX123456785CN`` → ``CN``)."""
    return number[-2:] if is_valid_s10(number) else None


def make_location(
    *,
    city: str | None = None,
    region: str | None = None,
    postal_code: str | None = None,
    country: str | None = None,
    facility: str | None = None,
) -> Location | None:
    parts = [p for p in (facility, city, region, postal_code, country) if p]
    if not parts:
        return None
    return Location(
        city=city or None,
        region=region or None,
        postal_code=postal_code or None,
        country=country,
        facility=facility or None,
        text=", ".join(parts),
    )


class Redactor:
    """Keeps recipients' names and signatories out of event texts."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        found = {n.strip() for n in names if isinstance(n, str) and len(n.strip()) >= 2}
        self._names = sorted(found, key=len, reverse=True)

    def __call__(self, value: str) -> str:
        value = _SIGNATORY.sub(lambda m: m.group(1) + _REDACTED, value)
        value = _SIGNATORY_ZH.sub(lambda m: m.group(1) + _REDACTED, value)
        for name in self._names:
            value = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", _REDACTED, value, flags=re.I)
        return value


def postal_handoff(
    country: str | None, number: str, evidence: str, confidence: float
) -> Handoff | None:
    """The destination post taking over the same S10 number, when it is one of ours."""
    carrier = POSTS.get(country or "")
    if carrier is None or not is_valid_s10(number):
        return None
    return Handoff(
        carrier=carrier, tracking_number=number, evidence=evidence, confidence=confidence
    )


# --- errors ------------------------------------------------------------------------------------


def failed(number: str | None, code: str, message: str) -> ParseResult:
    return ParseResult(errors=[ParseError(number, code, message)])


# What one bad event may raise; ``read_events`` skips it with a ParseError.
EVENT_ERRORS: tuple[type[Exception], ...] = (InvalidInput, ValueError, TypeError, OverflowError)
T = TypeVar("T")


def read_events(
    raws: Iterable[T],
    read: Callable[[T, int], Draft],
    number: str,
    label: str,
    *,
    skipped: tuple[type[Exception], ...] = EVENT_ERRORS,
    start: int = 0,
) -> tuple[list[Draft], list[ParseError]]:
    """Each raw event read by ``read`` with its position (from ``start``); an event that raises one
    of ``skipped`` is reported as ``label[index]`` and left out, the others still come through."""
    drafts: list[Draft] = []
    errors: list[ParseError] = []
    for index, raw in enumerate(raws):
        try:
            drafts.append(read(raw, start + index))
        except skipped as exc:
            errors.append(ParseError(number, "malformed", f"{label}[{index}]: {exc}"))
    return drafts, errors


# --- finishing ---------------------------------------------------------------------------------


def finish(
    carrier: str,
    number: str,
    drafts: list[Draft],
    *,
    raw_ref: str | None,
    source: Source,
    newest_first: bool,
    route: Route | None = None,
    errors: Iterable[ParseError] = (),
    handoff: Handoff | None = None,
    handoff_at: Callable[[Draft], bool] | None = None,
) -> ParseResult:
    """Journey order, modules, ids, duplicates dropped, ``sequence`` numbered 0..n-1.

    A shipment-level ``handoff`` (a field of the answer, not of one scan) is put on the first
    event, in journey order, that ``handoff_at`` accepts, else on the newest event.
    """
    ordered = assign_modules(journey_order(drafts, newest_first), route or Route())
    unique: list[Draft] = []
    seen: set[uuid.UUID] = set()
    for draft in ordered:
        event_id = _event_id(carrier, number, draft)
        if event_id not in seen:  # the same scan twice in one answer is kept once
            seen.add(event_id)
            unique.append(draft)
    if handoff is not None and unique:
        at = next((i for i, d in enumerate(unique) if handoff_at and handoff_at(d)), -1)
        unique[at] = replace(unique[at], handoff=handoff)
    events: list[TrackingEvent] = []
    problems = list(errors)
    for draft in unique:
        try:
            events.append(_build(carrier, number, draft, len(events), raw_ref, source))
        except ValidationError as exc:
            problems.append(ParseError(number, "malformed", f"event {draft.position}: {exc}"))
    return ParseResult(events=events, errors=problems)


def merge(parts: Iterable[ParseResult]) -> ParseResult:
    """One result from several parts of one answer (shipments, pieces, items, ids).

    A number that appears in more than one part (asked twice, or a consignment listing the same
    article again) gets its events pooled: duplicates dropped, journey order, ``sequence`` 0..n-1.
    """
    pooled: dict[str, list[TrackingEvent]] = {}
    parts_of: dict[str, int] = {}
    errors: list[ParseError] = []
    for index, part in enumerate(parts):
        errors.extend(part.errors)
        for event in part.events:
            if parts_of.setdefault(event.tracking_number, index) != index:
                parts_of[event.tracking_number] = -1  # seen in two parts
            pooled.setdefault(event.tracking_number, []).append(event)
    events: list[TrackingEvent] = []
    for number, group in pooled.items():
        if parts_of[number] != -1:
            events.extend(group)
            continue
        unique = list({e.event_id: e for e in reversed(group)}.values())[::-1]
        ordered = _by_carried_instant(unique)
        events.extend(e.model_copy(update={"sequence": i}) for i, e in enumerate(ordered))
    return ParseResult(events=events, errors=errors)


def _by_carried_instant(events: list[TrackingEvent]) -> list[TrackingEvent]:
    keys: list[tuple[datetime, int]] = []
    carried = datetime.min.replace(tzinfo=UTC)
    for index, event in enumerate(events):
        carried = event.occurred_at or carried
        keys.append((carried, index))
    return [e for _, e in sorted(zip(keys, events, strict=True), key=lambda kv: kv[0])]


def journey_order(drafts: list[Draft], newest_first: bool) -> list[Draft]:
    """Oldest first: by instant where known, payload order as the tie-break.

    An event without an instant keeps its place next to its payload neighbours: it borrows the
    instant of the closest earlier event (in payload order) that has one.
    """
    base = sorted(drafts, key=lambda d: d.position, reverse=newest_first)
    keys: list[tuple[datetime, int]] = []
    carried = datetime.min.replace(tzinfo=UTC)
    for index, draft in enumerate(base):
        if draft.time.occurred_at is not None:
            carried = draft.time.occurred_at
        keys.append((carried, index))
    return [draft for _, draft in sorted(zip(keys, base, strict=True), key=lambda kv: kv[0])]


_LEFT_ORIGIN = frozenset(
    {
        Substatus.EXPORT_CUSTOMS_PRESENTED,
        Substatus.EXPORT_CUSTOMS_HELD,
        Substatus.EXPORT_CUSTOMS_RELEASED,
        Substatus.DEPARTED_ORIGIN_COUNTRY,
    }
)
_EXPORT_WORD = re.compile(r"\bexport|出口", re.IGNORECASE)
_PAST_ORIGIN = frozenset({Module.INTERNATIONAL, Module.DESTINATION})
_ARRIVED = frozenset(
    {
        Substatus.ARRIVED_DESTINATION_COUNTRY,
        Substatus.IMPORT_CUSTOMS_PRESENTED,
        Substatus.IMPORT_CUSTOMS_HELD,
        Substatus.IMPORT_CUSTOMS_RELEASED,
        Substatus.DUTIES_PAYABLE,
        Substatus.DUTIES_PAID,
    }
)


def assign_modules(drafts: list[Draft], route: Route) -> list[Draft]:
    """Module per event, walking the journey oldest first (explicit modules are kept).

    Customs read from text name the import side unless the text or the place says export.

    Without a module from the code, origin-country scans before the departure are ``origin``,
    destination-country scans after the arrival are ``destination``, the rest ``international``;
    the first destination-country arrival of an international item is the arrival in the country.
    """
    left_origin = arrived = False
    out: list[Draft] = []
    for draft in drafts:
        substatus, country = draft.substatus, draft.country
        if draft.module is None and substatus in EXPORT_SIDE:
            origin_side = route.international and country == route.origin and not left_origin
            if origin_side or _EXPORT_WORD.search(draft.description):
                substatus = EXPORT_SIDE[substatus]
        module = draft.module or infer_module(draft.status, substatus)
        if module is None and route.international and country:
            if country == route.destination and not arrived and substatus is Substatus.ARRIVED_HUB:
                substatus = Substatus.ARRIVED_DESTINATION_COUNTRY
                module = Module.INTERNATIONAL
            else:
                module = module_by_country(
                    country, route.origin, route.destination, left_origin, arrived
                )
        left_origin = left_origin or substatus in _LEFT_ORIGIN or module in _PAST_ORIGIN
        arrived = arrived or substatus in _ARRIVED or module is Module.DESTINATION
        if route.international and country:
            left_origin = left_origin or country != route.origin
            arrived = arrived or country == route.destination
        out.append(replace(draft, module=module, substatus=substatus))
    return out


def _event_id(carrier: str, number: str, draft: Draft) -> uuid.UUID:
    location_text = draft.location.text if draft.location else None
    code = draft.carrier_code or draft.description  # codeless carriers: the text stands in
    return make_event_id(carrier, number, code, draft.raw_timestamp, location_text)


def _build(
    carrier: str, number: str, draft: Draft, sequence: int, raw_ref: str | None, source: Source
) -> TrackingEvent:
    return TrackingEvent(
        event_id=_event_id(carrier, number, draft),
        carrier=carrier,
        tracking_number=number,
        occurred_at_local=draft.time.occurred_at_local,
        utc_offset=draft.time.utc_offset,
        occurred_at=draft.time.occurred_at,
        time_basis=draft.time.time_basis,
        status=draft.status,
        substatus=draft.substatus,
        module=draft.module,
        carrier_code=draft.carrier_code,
        description=draft.description,
        location=draft.location,
        handoff=draft.handoff,
        source=source,
        raw_ref=raw_ref,
        sequence=sequence,
    )
