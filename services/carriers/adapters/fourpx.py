"""4PX open platform (``tr.order.tracking.get``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §6.2): ``occurDatetime`` ("YYYY-MM-DD HH:MM:SS") is a
local wall time without an offset, so the instant is derived only where the free-text
``occurLocation`` names a country with one zone; events are newest first (a payload that says
otherwise is believed); ``destinationCountry`` is a country name; failures are ``result: "0"`` with
``errors[]`` inside HTTP 200; the optional ``businessLinkCode`` node code is kept as ``carrier_code``
as written. 4PX describes scans in prose, so the status comes from ``trackingContent``; a hand-off to
a last-mile carrier is read from the same text ("handed over to USPS, tracking number ...").
"""

from __future__ import annotations

import re
from typing import Any

from services.carriers.adapters.assembly import (
    Draft,
    Shipment,
    as_list,
    assemble,
    code,
    failure,
    free_place,
    journey_order,
    json_answer,
    read_scans,
    refine,
    route_of,
    sided,
    text,
)
from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.localtime import resolve_time, wall_time
from services.carriers.adapters.phrases import COUNTRY_NAMES, handoff_in_text, redact
from shared.errors import InvalidInput
from shared.taxonomy import Module, Source, Status, Substatus

CARRIER = "4px"
S, U = Status, Substatus

# Phrases of 4PX's own network, read before the shared vocabulary: (pattern, status, substatus,
# module). A status of None keeps what the shared vocabulary found.
# fmt: off
PHRASES: tuple[tuple[str, Status | None, Substatus | None, Module | None], ...] = (
    (r"\b(?:parcel|shipment) information received\b", S.INFO_RECEIVED, None, Module.ORIGIN),
    (r"\barrived at 4px\b", S.IN_TRANSIT, U.ARRIVED_HUB, Module.ORIGIN),
    (r"\bdeparted from 4px\b", S.IN_TRANSIT, U.DEPARTED_HUB, Module.ORIGIN),
    (r"\bhanded over to (?:the )?(?:airline|carrier for linehaul)\b",
     S.IN_TRANSIT, U.HANDED_OVER, Module.INTERNATIONAL),
    (r"\b(?:last[- ]mile|local) (?:carrier|courier)\b", S.IN_TRANSIT, U.HANDED_OVER, Module.DESTINATION),
)
# fmt: on
_PHRASES = tuple((re.compile(p, re.IGNORECASE), st, sub, mod) for p, st, sub, mod in PHRASES)
NOT_FOUND_WORDS = re.compile(
    r"not found|does not exist|no data|no record|不存在|无轨迹|查无", re.IGNORECASE
)


class FourPxAdapter:
    carrier = CARRIER
    name = "4PX (open platform tr.order.tracking.get)"

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
    result = text(doc.get("result"))
    if result != "1" or http_status >= 400:
        return _errors(doc, requested, http_status)
    data = doc.get("data")
    if not isinstance(data, dict):
        return failure(requested, "malformed", "expected a 'data' object")
    number = text(data.get("deliveryOrderNo")) or requested
    if not number:
        return failure(requested, "malformed", "no 'deliveryOrderNo'")
    scans = as_list(data.get("trackingList"))
    if not scans:
        return failure(number, "not_found", "empty 'trackingList'")
    own = {n.upper() for n in (number, requested) if n}
    drafts, errors = read_scans(scans, lambda s: _read(s, own), number, "trackingList")
    ordered = journey_order(drafts, "newest_first")
    route = route_of(ordered, None, _country(data.get("destinationCountry")))
    return assemble(
        Shipment(CARRIER, number, raw_ref, source), sided(ordered, route), route, errors
    )


def _errors(doc: dict[str, Any], requested: str | None, http_status: int) -> ParseResult:
    errors = [e for e in as_list(doc.get("errors")) if isinstance(e, dict)]
    found = [(code(e.get("errorCode")) or "", text(e.get("errorMsg"))) for e in errors]
    message = "; ".join(f"{c}: {m}" for c, m in found) or text(doc.get("msg")) or "no error list"
    if not found and not text(doc.get("result")):
        return failure(requested, "malformed", "expected 'result' with 'data' or 'errors'")
    kind = "not_found" if NOT_FOUND_WORDS.search(message) else "carrier_error"
    return failure(requested, kind, f"HTTP {http_status}: {message}")


def _country(value: Any) -> str | None:
    name = text(value).upper()
    if len(name) == 2 and name.isalpha():
        return name
    return COUNTRY_NAMES.get(name)


def _read(scan: Any, own_numbers: set[str]) -> Draft:
    if not isinstance(scan, dict):
        raise InvalidInput("tracking entry is not an object")
    raw_time = scan.get("occurDatetime")
    if not isinstance(raw_time, str) or not raw_time.strip():
        raise InvalidInput("tracking entry has no 'occurDatetime' string")
    location = free_place(scan.get("occurLocation"), [])
    country = location.country if location else None
    content = text(scan.get("trackingContent"))
    status, substatus, module = _classify(content)
    local, offset = wall_time(raw_time)
    return Draft(
        raw_timestamp=raw_time.strip(),
        time=resolve_time(local, offset, country),
        carrier_code=code(scan.get("businessLinkCode")),
        status=status,
        substatus=substatus,
        module=module,
        description=redact(content, []),
        location=location,
        handoff=handoff_in_text(content, CARRIER, own_numbers),
    )


def _classify(content: str) -> tuple[Status, Substatus | None, Module | None]:
    status, substatus = refine(S.IN_TRANSIT, None, content, text_decides=True)
    if status is not S.IN_TRANSIT:  # the shared vocabulary found something specific
        return status, substatus, None
    for pattern, phrase_status, phrase_sub, module in _PHRASES:
        if pattern.search(content):
            return phrase_status or status, phrase_sub or substatus, module
    return status, substatus, None


__all__ = ["FourPxAdapter", "PHRASES"]
