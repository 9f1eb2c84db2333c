"""17TRACK API v2.2 webhook push (``TRACKING_UPDATED``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §7.1, conventions in ``aggregator``): the body is
``{"event", "data"}`` and ``TRACKING_STOPPED`` carries no events; events sit per provider under
``track_info.tracking.providers[]``, newest first, and two providers (origin post and last mile)
may relay the same scan, which is kept once; ``time_utc`` (``Z``) is the instant when present,
``time_iso`` keeps the local wall time and may have no offset, in which case ``time_utc`` is null
and the instant comes from the location only where its country fixes the zone; ``time_raw`` is a
last resort; per-event ``sub_status`` and ``stage`` may be null or empty, and then the text
decides; courier keys are integers; ``misc_info.local_number`` names the last-mile number.
"""

from __future__ import annotations

from datetime import UTC, timedelta, timezone
from typing import Any

from services.carriers.adapters.aggregator import (
    CodeTable,
    Draft,
    classify,
    country,
    courier_code,
    courier_id,
    customs_side,
    finish,
    guarded,
    handoff,
    items,
    load_object,
    location,
    lookup,
    malformed,
    obj,
    redact,
    scalar,
    text,
)
from services.carriers.adapters.assembly import SCAN_ERRORS, Route, Shipment
from services.carriers.adapters.base import ParseError, ParseResult
from shared.errors import InvalidInput
from shared.taxonomy import Source, Status, Substatus, TimeBasis
from shared.timeparse import (
    ResolvedTime,
    format_offset,
    local_iso,
    parse_offset,
    resolve,
    split_iso,
)

CARRIER = "17track"
S, U = Status, Substatus

# Top-level status (the part of a sub-status before "_"). NotFound gives no status: text decides.
STATUSES: dict[str, Status] = {
    "InfoReceived": S.INFO_RECEIVED,
    "InTransit": S.IN_TRANSIT,
    "Expired": S.EXCEPTION,
    "AvailableForPickup": S.AVAILABLE_FOR_PICKUP,
    "OutForDelivery": S.OUT_FOR_DELIVERY,
    "DeliveryFailure": S.FAILED_ATTEMPT,
    "Delivered": S.DELIVERED,
    "Exception": S.EXCEPTION,
}
# Sub-statuses [R]: 17TRACK's Departure and Arrival are the international milestones.
SUB_STATUSES: CodeTable = {
    "InTransit_PickedUp": (S.IN_TRANSIT, U.PICKED_UP),
    "InTransit_Departure": (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),
    "InTransit_Arrival": (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
    "InTransit_CustomsProcessing": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),
    "InTransit_CustomsReleased": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),
    # the consignee has to act, as with any customs hold asking for documents
    "InTransit_CustomsRequiringInformation": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),
    "Expired_Other": (S.EXCEPTION, U.DELAYED),
    "DeliveryFailure_NoBody": (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    "DeliveryFailure_Rejected": (S.FAILED_ATTEMPT, U.REFUSED),
    "DeliveryFailure_InvalidAddress": (S.FAILED_ATTEMPT, U.ADDRESS_ISSUE),
    "Exception_Returning": (S.EXCEPTION, U.RETURNING),
    "Exception_Returned": (S.RETURNED, None),
    "Exception_NoBody": (S.EXCEPTION, U.RECIPIENT_UNAVAILABLE),
    "Exception_Damage": (S.EXCEPTION, U.DAMAGED),
    "Exception_Destroyed": (S.EXCEPTION, U.DAMAGED),
    "Exception_Rejected": (S.EXCEPTION, U.REFUSED),
    "Exception_Delayed": (S.EXCEPTION, U.DELAYED),
    "Exception_Lost": (S.EXCEPTION, U.LOST),
}
# Event ``stage`` / milestone ``key_stage``.
STAGES: CodeTable = {
    "InfoReceived": (S.INFO_RECEIVED, None),
    "PickedUp": (S.IN_TRANSIT, U.PICKED_UP),
    "Departure": (S.IN_TRANSIT, U.DEPARTED_ORIGIN_COUNTRY),
    "Arrival": (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
    "AvailableForPickup": (S.AVAILABLE_FOR_PICKUP, None),
    "OutForDelivery": (S.OUT_FOR_DELIVERY, None),
    "Delivered": (S.DELIVERED, None),
    "Returning": (S.EXCEPTION, U.RETURNING),
    "Returned": (S.RETURNED, None),
}
# 17TRACK courier keys → Throughline carrier ids, for hand-offs [S for 100002, R for the others].
COURIERS: dict[str, str] = {
    "100001": "dhl",
    "100002": "ups",
    "100003": "fedex",
    "21051": "usps",
    "3011": "china-post",
    "190271": "cainiao",
}


class Track17Adapter:
    carrier = CARRIER
    name = "17TRACK (webhook push, API v2.2)"

    def parse(
        self,
        payload: bytes,
        *,
        requested: str | None = None,
        raw_ref: str | None = None,
        source: Source = Source.AGGREGATOR,
        http_status: int = 200,
    ) -> ParseResult:
        return guarded(_parse, payload, requested, raw_ref, source)


def _parse(
    payload: bytes, requested: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    doc = load_object(payload)
    event, data = doc.get("event"), doc.get("data")
    if not isinstance(event, str) or not isinstance(data, dict):
        return malformed(requested, "expected an object with 'event' and a 'data' object")
    number = scalar(data.get("number"))
    if event == "TRACKING_STOPPED":
        return ParseResult()  # tracking ended at 17TRACK: nothing new about the parcel
    if event != "TRACKING_UPDATED":
        return ParseResult(errors=[ParseError(number, "unsupported_event", f"event {event!r}")])
    if number is None:
        return malformed(requested, "data has no usable 'number'")
    info = data.get("track_info")
    if not isinstance(info, dict):
        return ParseResult(errors=[ParseError(number, "not_found", "no track_info")])
    return _parse_info(info, number, scalar(data.get("carrier")), raw_ref, source)


def _parse_info(
    info: dict[str, Any], number: str, main_courier: str | None, raw_ref: str | None, source: Source
) -> ParseResult:
    shipping = obj(info.get("shipping_info"))
    route = Route(
        country(obj(shipping.get("shipper_address")).get("country")),
        country(obj(shipping.get("recipient_address")).get("country")),
    )
    errors: list[ParseError] = []
    drafts = _provider_drafts(info, number, route, errors)
    if not drafts and not errors and isinstance(info.get("latest_event"), dict):
        try:
            drafts = [_read_event(info["latest_event"], main_courier, route)]
        except SCAN_ERRORS as exc:
            errors.append(ParseError(number, "malformed", f"latest_event: {exc}"))
    if not drafts and not errors:
        latest = obj(info.get("latest_status"))
        if text(latest.get("status")) in ("", "NotFound"):
            message = text(latest.get("sub_status_descr")) or "no events yet"
            return ParseResult(errors=[ParseError(number, "not_found", message)])
    misc = obj(info.get("misc_info"))
    local_key = scalar(misc.get("local_key"))
    next_carrier = courier_id(CARRIER, local_key, COURIERS)
    found = handoff(misc.get("local_number"), number, next_carrier, "misc_info.local_number")
    shipment = Shipment(CARRIER, number, raw_ref, source)
    return finish(shipment, _unique(drafts), route, found, local_key, errors)


def _provider_drafts(
    info: dict[str, Any], number: str, route: Route, errors: list[ParseError]
) -> list[Draft]:
    """Drafts oldest first: providers are listed last mile first, their events newest first."""
    providers = items(obj(info.get("tracking")).get("providers"))
    drafts: list[Draft] = []
    for p in reversed(range(len(providers))):
        provider = providers[p]
        if not isinstance(provider, dict):
            errors.append(ParseError(number, "malformed", f"providers[{p}] is not an object"))
            continue
        courier = scalar(obj(provider.get("provider")).get("key"))
        events = items(provider.get("events"))
        for e in reversed(range(len(events))):
            try:
                drafts.append(_read_event(events[e], courier, route))
            except SCAN_ERRORS as exc:
                errors.append(ParseError(number, "malformed", f"providers[{p}].events[{e}]: {exc}"))
    return drafts


def _unique(drafts: list[Draft]) -> list[Draft]:
    """One draft per scan: the last-mile provider often repeats the origin post's scans."""
    seen: set[tuple[str, str]] = set()
    out = []
    for draft in drafts:
        when = draft.time.occurred_at.isoformat() if draft.time.occurred_at else draft.raw_timestamp
        key = (when, draft.description.casefold())
        if key not in seen:
            seen.add(key)
            out.append(draft)
    return out


def _read_event(raw: Any, courier: str | None, route: Route) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("event is not an object")
    address = obj(raw.get("address"))
    where = location(
        city=address.get("city"),
        region=address.get("state"),
        postal_code=address.get("postal_code"),
        country_code=address.get("country"),
        label=raw.get("location"),
    )
    iso2 = where.country if where else None
    resolved, raw_timestamp = _time(raw, iso2)
    translation = obj(raw.get("description_translation")).get("description")
    description = redact(text(raw.get("description")) or text(translation), ())
    sub_status, stage = text(raw.get("sub_status")), text(raw.get("stage"))
    status, substatus = classify(*_code(sub_status, stage), description)
    return Draft(
        raw_timestamp=raw_timestamp,
        carrier_code=courier_code(courier, sub_status or stage or None),
        status=status,
        substatus=customs_side(substatus, description, iso2, route),
        description=description,
        location=where,
        time=resolved,
        courier=courier,
    )


def _code(sub_status: str, stage: str) -> tuple[Status | None, Substatus | None]:
    status, substatus = lookup(SUB_STATUSES, sub_status)
    if status is None and sub_status:
        status = STATUSES.get(sub_status.partition("_")[0])
    if substatus is not None:
        return status, substatus
    stage_status, stage_sub = lookup(STAGES, stage)
    if status is None or status is stage_status:
        return stage_status or status, stage_sub
    return status, None


def _time(raw: dict[str, Any], where: str | None) -> tuple[ResolvedTime, str]:
    iso, utc = text(raw.get("time_iso")), text(raw.get("time_utc"))
    if iso or utc:
        return _resolve(iso, utc, where), iso or utc
    pieces = obj(raw.get("time_raw"))
    date, clock, zone = (
        text(pieces.get("date")),
        text(pieces.get("time")),
        text(pieces.get("timezone")),
    )
    if not date or not clock:
        raise InvalidInput("event has no time_iso, time_utc or complete time_raw")
    stamp = f"{date} {clock}"
    naive, _ = split_iso(stamp)
    try:
        return resolve(naive, zone or None, where), f"{stamp} {zone}".strip()
    except InvalidInput:  # a zone written in some other way: keep the wall time
        return resolve(naive, None, where), f"{stamp} {zone}".strip()


def _resolve(iso: str, utc: str, where: str | None) -> ResolvedTime:
    """The local wall time from ``time_iso``, the instant from ``time_utc`` when there is one."""
    instant = None
    if utc:
        naive_utc, tz = split_iso(utc)
        delta = parse_offset(tz) if tz else timedelta(0)  # the field is UTC by definition
        instant = naive_utc.replace(tzinfo=timezone(delta or timedelta(0))).astimezone(UTC)
    if not iso:
        assert instant is not None
        return ResolvedTime(local_iso(instant), "+00:00", instant, TimeBasis.CARRIER_UTC)
    naive, tz = split_iso(iso)
    if instant is None:
        return resolve(naive, tz, where)
    delta = parse_offset(tz)
    stated = format_offset(delta) if delta is not None else None
    return ResolvedTime(local_iso(naive), stated, instant, TimeBasis.CARRIER_UTC)
