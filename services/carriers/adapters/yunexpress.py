"""YunExpress OMS API (``GET /api/Tracking/GetTrackInfo``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §6.3): every answer is an envelope whose ``Code``
("0000" success, leading zeros kept) says whether it worked, inside HTTP 200 (1002 bad credentials,
1006 no data, 10000 rate limit); the envelope holds ``Item`` or ``Items``; ``ProcessDate``
("YYYY-MM-DDTHH:MM:SS") is a wall time without an offset (the instant is derived only where the
place's zone is unambiguous; a per-event time zone is used when the payload has one); events are
listed in journey order, and a payload that runs newest first is turned round. ``WaybillNumber`` is
YunExpress's own number and carries the events; ``TrackingNumber``, when different, is the last-mile
number: the scan that hands the parcel over (else the first last-mile scan) carries a hand-off to
it (evidence ``TrackingNumber``).
YunExpress describes scans in prose, so the status comes from ``ProcessContent``; the optional
``TrackNodeCode`` is kept as ``carrier_code``.
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
    iso2,
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
from shared.taxonomy import STATUS_MODULE, Source, Status, Substatus

CARRIER = "yunexpress"
S, U = Status, Substatus

SUCCESS = "0000"
# Envelope codes that are answers about the number rather than failures of the request.
ENVELOPE_ERRORS: dict[str, str] = {
    "1002": "carrier_error",  # bad credentials
    "1006": "not_found",  # no data
    "10000": "carrier_error",  # rate limit
}
# Item.TrackingStatus (shipment level), named in the error for a number without details.
TRACKING_STATUS: dict[str, str] = {
    "0": "not found",
    "10": "pre-advice",
    "20": "in transit",
    "30": "ready for pickup",
    "40": "delivery failed",
    "50": "delivered",
    "60": "exception",
    "80": "unknown",
    "90": "returned",
    "100": "cancelled",
}


class YunExpressAdapter:
    carrier = CARRIER
    name = "YunExpress (OMS API GetTrackInfo)"

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
    if not isinstance(doc, dict) or "Code" not in doc:
        return failure(requested, "malformed", "expected an envelope with 'Code'")
    envelope_code = text(doc.get("Code"))
    if envelope_code != SUCCESS or http_status >= 400:
        kind = ENVELOPE_ERRORS.get(envelope_code, "carrier_error")
        return failure(
            requested, kind, f"HTTP {http_status}: Code {envelope_code}: {text(doc.get('Message'))}"
        )
    items = as_list(doc.get("Item")) + as_list(doc.get("Items"))
    if not items:
        return failure(requested, "not_found", "envelope without 'Item'")
    return merge(_item(item, requested, raw_ref, source) for item in items)


def _item(item: Any, requested: str | None, raw_ref: str | None, source: Source) -> ParseResult:
    if not isinstance(item, dict):
        return failure(requested, "malformed", "item is not an object")
    waybill = text(item.get("WaybillNumber")) or requested
    last_mile = text(item.get("TrackingNumber"))
    number = waybill or last_mile
    if not number:
        return failure(requested, "malformed", "item without 'WaybillNumber'")
    scans = as_list(item.get("OrderTrackingDetails"))
    if not scans:
        state = text(item.get("TrackingStatus"))
        meaning = TRACKING_STATUS.get(state, "unknown code")
        return failure(
            number, "not_found", f"no tracking details (TrackingStatus {state}: {meaning})"
        )
    own = {n.upper() for n in (number, requested) if n}
    drafts, errors = read_scans(scans, lambda d: _read(d, own), number, "OrderTrackingDetails")
    ordered = journey_order(drafts, "oldest_first")
    route = route_of(ordered, None, iso2(item.get("CountryCode")))
    ordered = sided(ordered, route)
    if last_mile and last_mile.upper() not in own:
        ordered = _hand_off(ordered, last_mile)
    return assemble(Shipment(CARRIER, number, raw_ref, source), ordered, route, errors)


def _hand_off(drafts: list[Draft], last_mile: str) -> list[Draft]:
    """The scan that hands the parcel over (else the first last-mile one, else the latest)
    announces the last-mile number, unless the text already named it."""
    if any(d.handoff and d.handoff.tracking_number == last_mile.upper() for d in drafts):
        return drafts
    handed = (i for i, d in enumerate(drafts) if d.substatus is U.HANDED_OVER)
    last_mile_scans = (i for i, d in enumerate(drafts) if d.status in STATUS_MODULE)
    at = next(handed, next(last_mile_scans, len(drafts) - 1))
    carrier = next((c for d in drafts if (c := carrier_in_text(d.description, CARRIER))), None)
    handoff = Handoff(carrier=carrier, tracking_number=last_mile, evidence="TrackingNumber")
    return [replace(d, handoff=handoff) if i == at else d for i, d in enumerate(drafts)]


def _read(detail: Any, own_numbers: set[str]) -> Draft:
    if not isinstance(detail, dict):
        raise InvalidInput("tracking detail is not an object")
    raw_time = detail.get("ProcessDate")
    if not isinstance(raw_time, str) or not raw_time.strip():
        raise InvalidInput("tracking detail has no 'ProcessDate' string")
    location = free_place(detail.get("ProcessLocation"), [])
    country = location.country if location else None
    content = text(detail.get("ProcessContent"))
    status, substatus = refine(S.IN_TRANSIT, None, content, text_decides=True)
    local, written = wall_time(raw_time)
    offset = written or zone_offset(detail.get("TimeZone"))
    return Draft(
        raw_timestamp=raw_time.strip(),
        time=resolve_time(local, offset, country),
        carrier_code=code(detail.get("TrackNodeCode")),
        status=status,
        substatus=substatus,
        module=None,
        description=redact(content, []),
        location=location,
        handoff=handoff_in_text(content, CARRIER, own_numbers),
    )


__all__ = ["TRACKING_STATUS", "YunExpressAdapter"]
