"""UPU postal events: the one EMSEVT mapping table, and the adapter for the UPU IPS Track and Trace
REST API (``GET /IPSAPIService/TrackAndTraceService.svc/rest/Mailitems?ids=..&lang=en``).

``UPU_EVENTS`` maps every EMSEVT code exactly as reference/tracking-standards.md does; the postal
adapters whose carriers carry UPU codes or UPU wording (China Post, USPS, Royal Mail, Australia
Post) import it, and ``upu_code_for_text`` recognises the UPU labels in free text ("Departure from
outward office of exchange, SGSINN"). ``classify_postal`` is how USPS, Royal Mail and Australia
Post read a scan: their own code, else UPU wording at an office of exchange, else their own wording.

Quirks handled by ``UpuAdapter`` (IPS answers; contracts §5):
- ``Results[].OperationalMailitems[].Events[]`` carry ``LocalDateTime`` without an offset (newer
  versions may add one) and ``GmtDateTime`` in UTC without ``Z``: the wall time is kept, the
  instant comes from ``GmtDateTime`` and the stated offset is their difference;
- ``InfoFromEdi[]`` relays partner posts' EMSEVT records: EDI ``YYYYMMDDHHMM`` local times, an
  optional offset without a colon (``-0400``); without one the instant is derived from the IMPC's
  country only where that country has a single zone (``US`` stays unknown);
- reference data comes wrapped in one-element arrays (``EventOffice: [{Code, Name}]``);
- the IMPC office code (``USJFKA``) gives the country; local office codes give none;
- an unknown item is an empty result inside HTTP 200; ``{"Errors": [..]}`` bodies (400/401/500,
  and sometimes 200) become per-number errors;
- the number answered (``InternationalId``) may differ from the one asked (a local id);
- events arrive in no guaranteed order and the same scan can appear twice;
- EMH/EMI carry a non-delivery reason, read for the substatus; ``Delivery`` / ``DeliveryAgent``
  (signatory names) are never read;
- at EMD (arrival at the inward office of exchange) the destination post takes over the same S10
  number: a ``handoff`` to that post (evidence ``DestCountry`` / ``OfficeCd``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.postal import (
    Draft,
    Redactor,
    Route,
    arr,
    code_text,
    country_code,
    failed,
    finish,
    first,
    impc_country,
    load_json,
    make_location,
    merge,
    postal_handoff,
    read_events,
    resolve_text,
    s10_origin,
    split_local,
    text,
    utc_with_local,
)
from shared.errors import InvalidInput
from shared.schema import Handoff, Location
from shared.taxonomy import Module, Source, Status, Substatus
from shared.timeparse import ResolvedTime, resolve

CARRIER = "upu"

S, U, M = Status, Substatus, Module
# fmt: off
UPU_EVENTS: dict[str, tuple[Status, Substatus | None, Module]] = {
    "EMA": (S.IN_TRANSIT, U.PICKED_UP, M.ORIGIN),
    "EMB": (S.IN_TRANSIT, U.ARRIVED_HUB, M.ORIGIN),
    "EXA": (S.IN_TRANSIT, U.EXPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
    "EXB": (S.EXCEPTION, U.EXPORT_CUSTOMS_HELD, M.INTERNATIONAL),
    "EXC": (S.IN_TRANSIT, U.EXPORT_CUSTOMS_RELEASED, M.INTERNATIONAL),
    "EXD": (S.IN_TRANSIT, U.DELAYED, M.INTERNATIONAL),
    "EXX": (S.EXCEPTION, None, M.INTERNATIONAL),
    "EMC": (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY, M.INTERNATIONAL),
    "EMJ": (S.IN_TRANSIT, None, M.INTERNATIONAL),
    "EMK": (S.IN_TRANSIT, None, M.INTERNATIONAL),
    "EMD": (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY, M.INTERNATIONAL),
    "EDA": (S.IN_TRANSIT, U.DELAYED, M.INTERNATIONAL),
    "EDB": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, M.INTERNATIONAL),
    "EME": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD, M.INTERNATIONAL),
    "EDC": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED, M.INTERNATIONAL),
    "EMF": (S.IN_TRANSIT, U.HANDED_OVER, M.DESTINATION),
    "EDD": (S.IN_TRANSIT, None, M.DESTINATION),
    "EDE": (S.IN_TRANSIT, None, M.DESTINATION),
    "EMG": (S.IN_TRANSIT, U.ARRIVED_HUB, M.DESTINATION),
    "EDF": (S.IN_TRANSIT, U.DELAYED, M.DESTINATION),
    "EDG": (S.OUT_FOR_DELIVERY, None, M.DESTINATION),
    "EDH": (S.AVAILABLE_FOR_PICKUP, None, M.DESTINATION),
    "EMH": (S.FAILED_ATTEMPT, None, M.DESTINATION),
    "EMI": (S.DELIVERED, None, M.DESTINATION),
    "EDX": (S.EXCEPTION, None, M.INTERNATIONAL),
}
UPU_LABELS: dict[str, str] = {
    "EMA": "Posting/collection", "EMB": "Arrival at outward office of exchange",
    "EXA": "Item presented to export customs", "EXB": "Item held by export customs",
    "EXC": "Item returned from export customs", "EXD": "Item held at outward office of exchange",
    "EXX": "Export cancellation", "EMC": "Departure from outward office of exchange",
    "EMJ": "Arrival at transit office of exchange", "EMK": "Departure from transit office of exchange",
    "EMD": "Arrival at inward office of exchange", "EDA": "Held at inward office of exchange",
    "EDB": "Item presented to import customs", "EME": "Held by import customs",
    "EDC": "Item returned from import customs", "EMF": "Departure from inward office of exchange",
    "EDD": "Item into sorting centre", "EDE": "Item out of sorting centre",
    "EMG": "Arrival at delivery office", "EDF": "Item held at delivery depot/delivery office",
    "EDG": "Item out for physical delivery", "EDH": "Item arrived at collection point for pick-up",
    "EMH": "Attempted/unsuccessful delivery", "EMI": "Final delivery", "EDX": "Import terminated",
}
# UPU wording in free text → EMSEVT code; first match wins, so the specific phrases come first.
_TEXT_CODES: tuple[tuple[str, str], ...] = (
    (r"import terminated", "EDX"),
    (r"export cancel", "EXX"),
    (r"held (?:by|at|in) export customs|export customs hold", "EXB"),
    (r"(?:returned|released) from export customs|export customs (?:clearance )?(?:completed|released)", "EXC"),
    (r"(?:presented|handed over|submitted) to export customs|export customs", "EXA"),
    (r"held at (?:the )?outward office of exchange", "EXD"),
    (r"held at (?:the )?inward office of exchange", "EDA"),
    (r"(?:depart\w*|dispatch\w*|despatch\w*) (?:from )?(?:the )?outward office of exchange", "EMC"),
    (r"(?:arriv\w*|received) (?:at|in) (?:the )?outward office of exchange", "EMB"),
    (r"(?:arriv\w*|received) (?:at|in) (?:the )?transit office of exchange", "EMJ"),
    (r"(?:depart\w*|dispatch\w*|despatch\w*) (?:from )?(?:the )?transit office of exchange", "EMK"),
    (r"(?:arriv\w*|received) (?:at|in) (?:the )?inward office of exchange", "EMD"),
    (r"(?:depart\w*|dispatch\w*|despatch\w*) (?:from )?(?:the )?inward office of exchange", "EMF"),
    (r"(?:held|detained|retained) (?:by|at|in) (?:import )?customs|customs hold", "EME"),
    (r"(?:returned|released) (?:from|by) (?:import )?customs|customs (?:clearance )?(?:completed|released)|cleared customs", "EDC"),
    (r"(?:presented|handed over|submitted|sent) to (?:import )?customs", "EDB"),
    (r"held at (?:the )?delivery (?:office|depot)", "EDF"),
    (r"out for (?:physical )?delivery", "EDG"),
    (r"collection point|available for (?:pick-?up|collection)|ready for (?:pick-?up|collection)", "EDH"),
    (r"unsuccessful delivery|attempted delivery|delivery attempt|could not be delivered", "EMH"),
    (r"arriv\w* at (?:the )?delivery office", "EMG"),
    (r"final delivery|(?<!un)(?<!not )delivered", "EMI"),
    (r"^(?:posting|posted|acceptance|accepted)\b", "EMA"),
)
# fmt: on
_TEXT_PATTERNS = tuple((re.compile(p, re.IGNORECASE), code) for p, code in _TEXT_CODES)
_REASONS: tuple[tuple[str, Substatus], ...] = (
    (r"refus", U.REFUSED),
    (r"absent|not (?:at )?home|no one|unavailable|closed", U.RECIPIENT_UNAVAILABLE),
    (r"address|unknown|moved|insufficient|incorrect", U.ADDRESS_ISSUE),
    (r"damag", U.DAMAGED),
)
_REASON_PATTERNS = tuple((re.compile(p, re.IGNORECASE), sub) for p, sub in _REASONS)


def upu_code_for_text(value: str) -> str | None:
    """The EMSEVT code whose UPU wording appears in ``value``, if any."""
    for pattern, code in _TEXT_PATTERNS:
        if pattern.search(value):
            return code
    return None


def reason_substatus(value: str) -> Substatus | None:
    """Substatus of a non-delivery reason text (EMH/EMI reasons: absent, refused, address)."""
    for pattern, substatus in _REASON_PATTERNS:
        if pattern.search(value):
            return substatus
    return None


def upu_status(code: str, reason: str = "") -> tuple[Status, Substatus | None, Module]:
    """Status, substatus and module of an EMSEVT code (KeyError if it is not one)."""
    status, substatus, module = UPU_EVENTS[code]
    if code == "EMH" and reason:
        substatus = reason_substatus(reason)
    return status, substatus, module


def classify_postal(
    code: str,
    description: str,
    codes: Mapping[str, tuple[Status, Substatus | None]],
    rules: Iterable[tuple[re.Pattern[str], Status, Substatus | None]],
) -> tuple[Status, Substatus | None, Module | None]:
    """A post's scan: its ``codes`` where they know the code, else the UPU wording of a step at an
    office of exchange, else the first of the post's own ``rules`` its text matches (in transit
    when none does)."""
    if code in codes:
        status, substatus = codes[code]
        return status, substatus, None
    upu = upu_code_for_text(description)
    if upu is not None and "office of exchange" in description.lower():
        return upu_status(upu, description)
    for pattern, status, substatus in rules:
        if pattern.search(description):
            return status, substatus, None
    return Status.IN_TRANSIT, None, None


class UpuAdapter:
    carrier = CARRIER
    name = "UPU (IPS Track and Trace API)"

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
            return failed(requested, _error_code(http_status), f"HTTP {http_status}")
        return failed(requested, "malformed", str(exc))
    if isinstance(doc, dict) and isinstance(doc.get("Errors"), list):
        messages = "; ".join(text(e) for e in doc["Errors"] if text(e)) or "no message"
        return failed(requested, _error_code(http_status), f"HTTP {http_status}: {messages}")
    if not isinstance(doc, dict) or not isinstance(doc.get("Results"), list):
        if http_status >= 400:
            return failed(requested, _error_code(http_status), f"HTTP {http_status}")
        return failed(requested, "malformed", "expected an object with a 'Results' array")
    if not doc["Results"]:
        return failed(requested, "not_found", "empty 'Results' array")
    return merge(
        _parse_result(result, index, requested, raw_ref, source)
        for index, result in enumerate(doc["Results"])
    )


def _error_code(http_status: int) -> str:
    return "not_found" if http_status == 404 else "carrier_error"


def _parse_result(
    result: Any, index: int, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(result, dict):
        return failed(requested, "malformed", f"Results[{index}] is not an object")
    fid = text(result.get("Fid")) or requested
    items = [i for i in arr(result.get("OperationalMailitems")) if isinstance(i, dict)]
    edi = [e for e in arr(result.get("InfoFromEdi")) if isinstance(e, dict)]
    if not items and not edi:
        return failed(fid, "not_found", "no mail item with this identifier")
    if not items:
        items = [{"InternationalId": fid}]
    parts = []
    for position, item in enumerate(items):
        number = text(item.get("InternationalId")) or text(item.get("LocalId")) or fid
        if not number:
            parts.append(failed(requested, "malformed", f"Results[{index}] has no item id"))
            continue
        parts.append(_parse_item(number, item, edi if position == 0 else [], raw_ref, source))
    return merge(parts)


def _parse_item(
    number: str,
    item: dict[str, Any],
    edi: list[dict[str, Any]],
    raw_ref: str | None,
    source: Source,
) -> ParseResult:
    route = Route(
        country_code(first(item.get("OrigCountry")).get("Code")) or s10_origin(number),
        country_code(first(item.get("DestCountry")).get("Code")),
    )
    redact = Redactor()
    raw_events = arr(item.get("Events"))
    skipped = (InvalidInput, ValueError, TypeError, KeyError)
    drafts, errors = read_events(
        raw_events,
        lambda raw, position: _operational(raw, position, number, route, redact),
        number,
        "Events",
        skipped=skipped,
    )
    edi_drafts, edi_errors = read_events(
        edi,
        lambda raw, position: _edi_record(raw, position, number, redact),
        number,
        "InfoFromEdi",
        skipped=skipped,
        start=len(raw_events),  # EDI records follow the operational events
    )
    return finish(
        CARRIER,
        number,
        drafts + edi_drafts,
        raw_ref=raw_ref,
        source=source,
        newest_first=False,
        route=route,
        errors=errors + edi_errors,
    )


def _operational(raw: Any, position: int, number: str, route: Route, redact: Redactor) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    local = text(raw.get("LocalDateTime"))
    if not local:
        raise InvalidInput("event has no 'LocalDateTime'")
    edi_event, ips_type = first(raw.get("EdiEvent")), first(raw.get("IPSEventType"))
    office = first(raw.get("EventOffice"))
    reason = text(first(raw.get("NonDeliveryReason")).get("Name"))
    label = text(edi_event.get("Name")) or text(ips_type.get("Name"))
    code = code_text(edi_event.get("Code")).upper() or upu_code_for_text(label)
    location = _office_location(code_text(office.get("Code")), text(office.get("Name")))
    country = location.country if location else None
    handoff = _arrival_handoff(code, route.destination, number, "DestCountry")
    return _draft(
        position,
        local,
        _ips_time(local, text(raw.get("GmtDateTime")), country),
        code,
        label,
        reason,
        location,
        handoff,
        redact,
    )


def _edi_record(raw: dict[str, Any], position: int, number: str, redact: Redactor) -> Draft:
    local = code_text(raw.get("EventLocalDt"))
    if not local:
        raise InvalidInput("EDI record has no 'EventLocalDt'")
    code = code_text(raw.get("EventCd")).upper()
    office = code_text(raw.get("OfficeCd"))
    location = _office_location(office, "")
    country = location.country if location else None
    time = resolve_text(local, country, text(raw.get("EventUtcOffset")) or None)
    reason = text(raw.get("NonDeliveryReasonNm"))
    handoff = _arrival_handoff(code, country, number, "OfficeCd")
    return _draft(
        position, local, time, code, UPU_LABELS.get(code, ""), reason, location, handoff, redact
    )


def _draft(
    position: int,
    raw_timestamp: str,
    time: ResolvedTime,
    code: str | None,
    label: str,
    reason: str,
    location: Location | None,
    handoff: Handoff | None,
    redact: Redactor,
) -> Draft:
    if code in UPU_EVENTS:
        status, substatus, module = upu_status(code, reason)
    else:
        status, substatus, module = Status.IN_TRANSIT, None, None
    description = redact(
        ", ".join(p for p in (label or UPU_LABELS.get(code or "", ""), reason) if p)
    )
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
        handoff=handoff,
    )


def _ips_time(local: str, gmt: str, country: str | None) -> ResolvedTime:
    naive, offset = split_local(local)
    if offset is None and gmt:
        try:
            utc, utc_offset = split_local(gmt)
        except InvalidInput:
            utc, utc_offset = None, None
        if utc is not None and utc_offset in (None, "Z", "+00:00", "+0000"):
            return utc_with_local(naive, utc)
    return resolve(naive, offset, country)


def _office_location(code: str, name: str) -> Location | None:
    country = impc_country(code)
    facility = f"{name} ({code})" if name and code else name or code or None
    return make_location(facility=facility, country=country)


def _arrival_handoff(
    code: str | None, destination: str | None, number: str, evidence: str
) -> Handoff | None:
    if code != "EMD":
        return None
    return postal_handoff(destination, number, evidence, confidence=0.7)
