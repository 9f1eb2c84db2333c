"""SF Express open platform (``EXP_RECE_SEARCH_ROUTES``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §6.5): the platform wraps the service's answer in an
envelope whose ``apiResultData`` is itself a JSON *string* (the bare service document is read too);
envelope failures are ``apiResultCode`` other than "A1000" and service failures are ``success:
false`` / ``errorCode`` other than "S0000", both inside HTTP 200; a number SF does not know comes back
with an empty ``routes`` list; ``acceptTime`` is a wall time without an offset (Beijing time for
mainland scans: the instant is derived only where the place's zone is unambiguous); routes are oldest
first; ``opCode`` is a string code. SF's remarks are precise and SF's published code lists disagree
about some codes (50 is "派件" in one, "收件" in another), so the remark decides where it says
something and the code table is the fallback. Remarks name couriers, signatories and phone
numbers: all are redacted.
"""

from __future__ import annotations

import json
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
    route_of,
    sided,
    text,
)
from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.localtime import resolve_time, wall_time
from services.carriers.adapters.phrases import classify_text, handoff_in_text, redact
from shared.errors import InvalidInput
from shared.taxonomy import Source, Status, Substatus

CARRIER = "sf-express"
S, U = Status, Substatus
API_SUCCESS = "A1000"
SERVICE_SUCCESS = "S0000"

OP_CODES: dict[str, tuple[Status, Substatus | None]] = {
    "50": (S.OUT_FOR_DELIVERY, None),
    "80": (S.DELIVERED, None),
    "54": (S.IN_TRANSIT, U.PICKED_UP),
    "30": (S.IN_TRANSIT, None),
    "31": (S.IN_TRANSIT, U.ARRIVED_HUB),
    "36": (S.IN_TRANSIT, U.DEPARTED_HUB),
    "44": (S.OUT_FOR_DELIVERY, None),
    "70": (S.FAILED_ATTEMPT, None),
    "99": (S.RETURNED, None),
}


class SfExpressAdapter:
    carrier = CARRIER
    name = "SF Express (open platform EXP_RECE_SEARCH_ROUTES)"

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
    if "apiResultCode" in doc or http_status >= 400:
        unwrapped = _unwrap(doc, requested, http_status)
        if isinstance(unwrapped, ParseResult):
            return unwrapped
        doc = unwrapped
    if not {"success", "errorCode", "msgData"} & doc.keys():
        return failure(requested, "malformed", "expected the route service document")
    if doc.get("success") is not True or text(doc.get("errorCode")) not in ("", SERVICE_SUCCESS):
        message = f"errorCode {text(doc.get('errorCode')) or '?'}: {text(doc.get('errorMsg'))}"
        return failure(requested, "carrier_error", message)
    msg_data = doc.get("msgData")
    responses = msg_data.get("routeResps") if isinstance(msg_data, dict) else None
    if not isinstance(responses, list):
        return failure(requested, "malformed", "expected 'msgData.routeResps' array")
    if not responses:
        return failure(requested, "not_found", "empty 'routeResps'")
    return merge(_route_resp(r, requested, raw_ref, source) for r in responses)


def _unwrap(
    doc: dict[str, Any], requested: str | None, http_status: int
) -> dict[str, Any] | ParseResult:
    """The service document inside the platform envelope, or the envelope's failure."""
    api_code = text(doc.get("apiResultCode"))
    if api_code != API_SUCCESS or http_status >= 400:
        message = text(doc.get("apiErrorMsg")) or "no message"
        return failure(
            requested, "carrier_error", f"HTTP {http_status}: {api_code or '?'}: {message}"
        )
    inner = doc.get("apiResultData")
    if isinstance(inner, str):
        try:
            inner = json.loads(inner)
        except (ValueError, RecursionError) as exc:
            return failure(requested, "malformed", f"'apiResultData' is not JSON: {exc}")
    if not isinstance(inner, dict):
        return failure(requested, "malformed", "'apiResultData' is not an object")
    return inner


def _route_resp(
    resp: Any, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    if not isinstance(resp, dict):
        return failure(requested, "malformed", "routeResps entry is not an object")
    number = text(resp.get("mailNo")) or requested
    if not number:
        return failure(requested, "malformed", "routeResps entry without 'mailNo'")
    routes = as_list(resp.get("routes"))
    if not routes:
        return failure(number, "not_found", "no routes")
    own = {n.upper() for n in (number, requested) if n}
    drafts, errors = read_scans(routes, lambda r: _read(r, own), number, "routes")
    ordered = journey_order(drafts, "oldest_first")
    route = route_of(ordered, None, next((d.country for d in reversed(ordered) if d.country), None))
    return assemble(
        Shipment(CARRIER, number, raw_ref, source), sided(ordered, route), route, errors
    )


def _read(route: Any, own_numbers: set[str]) -> Draft:
    if not isinstance(route, dict):
        raise InvalidInput("route is not an object")
    raw_time = route.get("acceptTime")
    if not isinstance(raw_time, str) or not raw_time.strip():
        raise InvalidInput("route has no 'acceptTime' string")
    location = free_place(route.get("acceptAddress"), [])
    remark = text(route.get("remark"))
    op_code = code(route.get("opCode"))
    status, substatus = _classify(op_code, remark)
    local, offset = wall_time(raw_time)
    return Draft(
        raw_timestamp=raw_time.strip(),
        time=resolve_time(local, offset, location.country if location else None),
        carrier_code=op_code,
        status=status,
        substatus=substatus,
        module=None,
        description=redact(remark, []),
        location=location,
        handoff=handoff_in_text(remark, CARRIER, own_numbers),
    )


def _classify(op_code: str | None, remark: str) -> tuple[Status, Substatus | None]:
    """The remark's reading where it says anything (a step without a status is in transit),
    else the code table's."""
    said = classify_text(remark)
    if said is not None:
        return said.status or S.IN_TRANSIT, said.substatus
    return OP_CODES.get(op_code or "", (S.IN_TRANSIT, None))


__all__ = ["OP_CODES", "SfExpressAdapter"]
