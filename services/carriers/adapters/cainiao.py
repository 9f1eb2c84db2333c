"""Cainiao global tracking (``GET /global/detail.json?mailNos=..``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §6.1): ``detailList[].time`` is an epoch in
milliseconds (a UTC instant) and the zone comes separately as ``timeZone: "GMT+8"``, which may be
blank (then nothing is assumed: the wall time is written in UTC); ``timeStr``, when present, is the
wall time as Cainiao wrote it; scans are newest first; ``actionCode`` names the step precisely, so it
decides status, substatus and module, and ``GTMS_STA_SIGNED`` (signed by the pickup station) is
"available for pickup", not delivered; unknown codes fall back to the text. An empty ``detailList``
is how an unknown number looks. A hand-off to a last-mile carrier is read from the scan text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.carriers.adapters.assembly import (
    Draft,
    Route,
    Shipment,
    as_list,
    assemble,
    code,
    failure,
    iso2,
    journey_order,
    json_answer,
    merge,
    read_scans,
    refine,
    sided,
    text,
)
from services.carriers.adapters.base import ParseResult, guarded
from services.carriers.adapters.localtime import resolve_time, wall_time, zone_offset
from services.carriers.adapters.phrases import COUNTRY_NAMES, handoff_in_text, redact
from shared.errors import InvalidInput
from shared.taxonomy import Module, Source, Status, Substatus, TimeBasis
from shared.timeparse import ResolvedTime, format_offset, local_iso, parse_offset

CARRIER = "cainiao"
S, U = Status, Substatus
ORI, INT, DST = Module.ORIGIN, Module.INTERNATIONAL, Module.DESTINATION
Mapping = tuple[Status, Substatus | None, Module | None]

# fmt: off
ACTION_CODES: dict[str, Mapping] = {
    # warehouse, order, first mile
    "GWMS_ACCEPT": (S.INFO_RECEIVED, None, ORI),
    "GWMS_PACKAGE": (S.IN_TRANSIT, None, ORI),
    "GWMS_OUTBOUND": (S.IN_TRANSIT, U.DEPARTED_HUB, ORI),
    "CW_INBOUND": (S.IN_TRANSIT, U.ARRIVED_HUB, ORI),
    "CW_OUTBOUND": (S.IN_TRANSIT, U.DEPARTED_HUB, ORI),
    "PU_PICKUP_SUCCESS": (S.IN_TRANSIT, U.PICKED_UP, ORI),
    "SC_INBOUND_SUCCESS": (S.IN_TRANSIT, U.ARRIVED_HUB, ORI),
    "SC_OUTBOUND_SUCCESS": (S.IN_TRANSIT, U.DEPARTED_HUB, ORI),
    # export customs
    "CC_EX_START": (S.IN_TRANSIT, U.EXPORT_CUSTOMS_PRESENTED, INT),
    "CC_EX_SUCCESS": (S.IN_TRANSIT, U.EXPORT_CUSTOMS_RELEASED, INT),
    "CC_EX_FAILURE": (S.EXCEPTION, U.EXPORT_CUSTOMS_HELD, INT),
    # line-haul
    "LH_HO_IN_SUCCESS": (S.IN_TRANSIT, U.HANDED_OVER, INT),
    "LH_HO_AIRLINE": (S.IN_TRANSIT, U.HANDED_OVER, INT),
    "LH_DEPART": (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY, INT),
    "LH_ARRIVE": (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY, INT),
    "LH_HO_OUT_SUCCESS": (S.IN_TRANSIT, None, INT),
    # import customs
    "CC_HO_IN_SUCCESS": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, INT),
    "CC_IM_START": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED, INT),
    "CC_IM_SUCCESS": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED, INT),
    "CC_IM_FAILURE": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD, INT),
    "CC_HO_OUT_SUCCESS": (S.IN_TRANSIT, None, INT),
    # transit country
    "TD_TRANS_ARRIVE": (S.IN_TRANSIT, U.ARRIVED_HUB, INT),
    "TD_TRANS_ARRIVE_C": (S.IN_TRANSIT, U.ARRIVED_HUB, INT),
    "TD_TRANS_DEPART": (S.IN_TRANSIT, U.DEPARTED_HUB, INT),
    "TD_TRANS_DEPART_C": (S.IN_TRANSIT, U.DEPARTED_HUB, INT),
    # last mile
    "GTMS_ACCEPT": (S.IN_TRANSIT, U.HANDED_OVER, DST),
    "GTMS_SC_ARRIVE": (S.IN_TRANSIT, U.ARRIVED_HUB, DST),
    "GTMS_DO_ARRIVE": (S.IN_TRANSIT, U.ARRIVED_HUB, DST),
    "GTMS_DO_DEPART": (S.OUT_FOR_DELIVERY, None, DST),
    "GTMS_DELIVERING": (S.OUT_FOR_DELIVERY, None, DST),
    "GTMS_DEL_FAILURE": (S.FAILED_ATTEMPT, None, DST),
    "GTMS_RE_DELIVERING": (S.OUT_FOR_DELIVERY, None, DST),
    "GTMS_WAIT_SELF_PICK": (S.AVAILABLE_FOR_PICKUP, None, DST),
    "GSTA_INFORM_BUYER": (S.AVAILABLE_FOR_PICKUP, None, DST),
    "GTMS_STA_SIGNED": (S.AVAILABLE_FOR_PICKUP, None, DST),  # the station signed, not the buyer
    "GTMS_SIGNED": (S.DELIVERED, None, DST),
    "SIGN_SUCCESS": (S.DELIVERED, None, DST),
    # returns
    "RT_INBOUND": (S.EXCEPTION, U.RETURNING, None),
    "RETURNED": (S.RETURNED, None, None),
}
# fmt: on


class CainiaoAdapter:
    carrier = CARRIER
    name = "Cainiao (global detail.json)"

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
    if http_status >= 400 or doc.get("success") is False:
        message = text(doc.get("errorMsg")) or text(doc.get("errorCode")) or "request failed"
        return failure(requested, "carrier_error", f"HTTP {http_status}: {message}")
    modules = doc.get("module")
    if not isinstance(modules, list):
        return failure(requested, "malformed", "expected a 'module' array")
    if not modules:
        return failure(requested, "not_found", "empty 'module'")
    return merge(_module(m, requested, raw_ref, source) for m in modules)


def _module(entry: Any, requested: str | None, raw_ref: str | None, source: Source) -> ParseResult:
    if not isinstance(entry, dict):
        return failure(requested, "malformed", "module entry is not an object")
    number = text(entry.get("mailNo")) or requested
    if not number:
        return failure(requested, "malformed", "module entry without 'mailNo'")
    scans = as_list(entry.get("detailList"))
    if not scans:
        return failure(
            number, "not_found", f"no details (status {text(entry.get('status')) or '?'})"
        )
    route = Route(_country(entry.get("originCountry")), _country(entry.get("destCountry")))
    own = {n.upper() for n in (number, requested) if n}
    drafts, errors = read_scans(scans, lambda d: _read(d, own), number, "detailList")
    ordered = sided(journey_order(drafts, "newest_first"), route)
    return assemble(Shipment(CARRIER, number, raw_ref, source), ordered, route, errors)


def _country(value: Any) -> str | None:
    return iso2(value) or COUNTRY_NAMES.get(text(value).upper())


def _read(detail: Any, own_numbers: set[str]) -> Draft:
    if not isinstance(detail, dict):
        raise InvalidInput("detail is not an object")
    description = (
        text(detail.get("desc"))
        or text(detail.get("standerdDesc"))
        or text(detail.get("descTitle"))
    )
    action = code(detail.get("actionCode"))
    mapped = ACTION_CODES.get(action or "")
    if mapped is None:
        status, substatus = refine(S.IN_TRANSIT, None, description, text_decides=True)
        mapped = (status, substatus, None)
    raw_timestamp, resolved = _time(detail)
    return Draft(
        raw_timestamp=raw_timestamp,
        time=resolved,
        carrier_code=action,
        status=mapped[0],
        substatus=mapped[1],
        module=mapped[2],
        description=redact(description, []),
        location=None,
        handoff=handoff_in_text(description, CARRIER, own_numbers),
    )


def _time(detail: dict[str, Any]) -> tuple[str, ResolvedTime]:
    offset = zone_offset(detail.get("timeZone"))
    written = text(detail.get("timeStr"))
    epoch = detail.get("time")
    if isinstance(epoch, str) and epoch.strip().isdigit():
        epoch = int(epoch)
    if isinstance(epoch, int) and not isinstance(epoch, bool):
        instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch)
        delta = parse_offset(offset)
        if written:  # the wall time as Cainiao wrote it, in the zone it names (if any)
            local = wall_time(written)[0]
        else:  # no zone named: the epoch is all there is, so the wall time is UTC's
            delta = delta if delta is not None else timedelta(0)
            local = (instant + delta).replace(tzinfo=None)
        stated = format_offset(delta) if delta is not None else None
        return str(epoch), ResolvedTime(local_iso(local), stated, instant, TimeBasis.CARRIER_UTC)
    if written:
        local, stated = wall_time(written)
        return written, resolve_time(local, stated or offset, None)
    raise InvalidInput("detail has neither 'time' nor 'timeStr'")


__all__ = ["ACTION_CODES", "CainiaoAdapter"]
