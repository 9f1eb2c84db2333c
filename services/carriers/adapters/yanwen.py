"""Yanwen tracking API (``GET /api/tracking?nums=a,b,c``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §6.4): ``time_stamp`` is a wall time and the zone
comes separately as ``time_zone: "+8"``; Yanwen stamps +8 on every scan, a US delivery included,
so an offset that cannot occur in the scan's country is kept as written but not trusted (the
instant then comes from the place, if its zone is unambiguous); v2-style timestamps with an offset
and 2-digit fractions are read as well; unknown numbers come back inside HTTP 200 with
``tracking_status: "NOTFOUND"``; a failed request is ``code`` other than 0. Yanwen may answer with
the last-mile number instead of the one asked for: the events are kept under the returned number and
the first last-mile scan carries a hand-off to it (evidence ``tracking_number``). Checkpoint codes
keep their case and digits ("PU10", "LM40"); the prefix gives the module.
"""

from __future__ import annotations

from dataclasses import replace
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
    merge,
    read_scans,
    refine,
    route_of,
    sided,
    text,
)
from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.localtime import resolve_time, wall_time, zone_offset
from services.carriers.adapters.phrases import carrier_in_text, handoff_in_text, redact
from shared.errors import InvalidInput
from shared.schema import Handoff
from shared.taxonomy import STATUS_MODULE, Module, Source, Status, Substatus

CARRIER = "yanwen"
S, U = Status, Substatus
Mapping = tuple[Status, Substatus | None, Module | None]

# Checkpoint codes: exact codes first, then the two-letter family.
CODES: dict[str, Mapping] = {
    "LM40": (S.DELIVERED, None, Module.DESTINATION),
}
CODE_FAMILIES: dict[str, Mapping] = {
    "PU": (S.IN_TRANSIT, U.PICKED_UP, Module.ORIGIN),
    "SC": (S.IN_TRANSIT, None, Module.ORIGIN),
    "LH": (S.IN_TRANSIT, None, Module.INTERNATIONAL),
    "CC": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, Module.INTERNATIONAL),
    "LM": (S.IN_TRANSIT, None, Module.DESTINATION),
}
NOT_FOUND = "NOTFOUND"


class YanwenAdapter:
    carrier = CARRIER
    name = "Yanwen (tracking API)"

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
    if text(doc.get("code")) != "0" or http_status >= 400:
        message = text(doc.get("message")) or "no message"
        return failure(
            requested,
            "carrier_error",
            f"HTTP {http_status}: code {text(doc.get('code'))}: {message}",
        )
    results = doc.get("result")
    if not isinstance(results, list):
        return failure(requested, "malformed", "expected a 'result' array")
    if not results:
        return failure(requested, "not_found", "empty 'result'")
    asked = [n.strip() for n in (requested or "").split(",") if n.strip()]
    return merge(
        _result(r, _asked_for(r, i, asked, len(results)), raw_ref, source)
        for i, r in enumerate(results)
    )


def _asked_for(result: Any, index: int, asked: list[str], count: int) -> str | None:
    """The number this result answers: by position when Yanwen answered each number asked."""
    returned = text(result.get("tracking_number")) if isinstance(result, dict) else ""
    if returned in asked:
        return returned
    if len(asked) == count:
        return asked[index]
    return asked[0] if len(asked) == 1 else None


def _result(result: Any, asked: str | None, raw_ref: str | None, source: Source) -> ParseResult:
    if not isinstance(result, dict):
        return failure(asked, "malformed", "result entry is not an object")
    number = text(result.get("tracking_number")) or asked
    if not number:
        return failure(asked, "malformed", "result without 'tracking_number'")
    if text(result.get("tracking_status")).upper() == NOT_FOUND:
        return failure(asked or number, "not_found", f"tracking_status {NOT_FOUND}")
    scans = as_list(result.get("checkpoints"))
    if not scans:
        return failure(asked or number, "not_found", "no checkpoints")
    own = {n.upper() for n in (number, asked) if n}
    drafts, errors = read_scans(scans, lambda c: _read(c, own), number, "checkpoints")
    ordered = journey_order(drafts, "oldest_first")
    if asked and asked.upper() != number.upper():
        ordered = _hand_off(ordered, number)
    route = route_of(ordered, None, None)
    return assemble(
        Shipment(CARRIER, number, raw_ref, source), sided(ordered, route), route, errors
    )


def _hand_off(drafts: list[Draft], returned: str) -> list[Draft]:
    """The first last-mile scan (else the latest) announces the returned last-mile number."""
    at = next((i for i, d in enumerate(drafts) if d.module is Module.DESTINATION), len(drafts) - 1)
    carrier = next((c for d in drafts if (c := carrier_in_text(d.description, CARRIER))), None)
    handoff = Handoff(carrier=carrier, tracking_number=returned, evidence="tracking_number")
    return [replace(d, handoff=handoff) if i == at else d for i, d in enumerate(drafts)]


def _read(checkpoint: Any, own_numbers: set[str]) -> Draft:
    if not isinstance(checkpoint, dict):
        raise InvalidInput("checkpoint is not an object")
    raw_time = checkpoint.get("time_stamp") or checkpoint.get("timestamp")
    if not isinstance(raw_time, str) or not raw_time.strip():
        raise InvalidInput("checkpoint has no 'time_stamp' string")
    location = free_place(checkpoint.get("location"), [])
    country = location.country if location else None
    message = text(checkpoint.get("message"))
    checkpoint_code = code(checkpoint.get("tracking_status"))
    status, substatus, module = _classify(checkpoint_code, message)
    local, written = wall_time(raw_time)
    offset = written or zone_offset(checkpoint.get("time_zone"))
    return Draft(
        raw_timestamp=f"{raw_time.strip()}{text(checkpoint.get('time_zone'))}",
        time=resolve_time(local, offset, country),
        carrier_code=checkpoint_code,
        status=status,
        substatus=substatus,
        module=module,
        description=redact(message, []),
        location=location,
        handoff=handoff_in_text(message, CARRIER, own_numbers),
    )


def _classify(checkpoint_code: str | None, message: str) -> Mapping:
    key = (checkpoint_code or "").upper()
    status, substatus, module = CODES.get(key) or CODE_FAMILIES.get(
        key[:2], (S.IN_TRANSIT, None, None)
    )
    refined = refine(status, substatus, message, text_decides=True)
    if module not in (None, Module.DESTINATION) and refined[0] in STATUS_MODULE:
        return status, substatus, module  # a last-mile word in an origin-side scan's text
    return refined[0], refined[1], module


__all__ = ["CODES", "CODE_FAMILIES", "YanwenAdapter"]
