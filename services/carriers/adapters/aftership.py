"""AfterShip Tracking webhook (``tracking_update``): pure parse to canonical events.

Quirks handled (reference/carrier-contracts.md §7.2, conventions in ``aggregator``): the body is
``{ts, event, event_id, msg: <Tracking>}`` and ``edd_revise`` / ``tracking_pending_time`` carry the
same tracking object, so every event code is read the same way (event ids are deterministic, a
repeat is harmless); ``checkpoints[]`` come oldest first; ``checkpoint_time`` is the courier's local
time, with the local offset or with none, while ``created_at`` is only when AfterShip stored it and
is never used as the event time; countries are ISO alpha-3 in ``country_iso3`` (older versions) or
``country_region`` (newer ones); ``raw_tag`` (the courier's own code) may be missing; each
checkpoint names its courier ``slug``; ``next_couriers`` names the next leg. The tracking object
also holds customer names, e-mails and phone numbers: none of them is read, and the names are
redacted from checkpoint texts.
"""

from __future__ import annotations

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
    personal_names,
    redact,
    scalar,
    text,
)
from services.carriers.adapters.assembly import Route, Shipment, read_scans
from services.carriers.adapters.base import ParseResult
from shared.errors import InvalidInput
from shared.taxonomy import Source, Status, Substatus
from shared.timeparse import resolve_iso

CARRIER = "aftership"
S, U = Status, Substatus

TAGS: dict[str, Status] = {
    "Pending": S.INFO_RECEIVED,
    "InfoReceived": S.INFO_RECEIVED,
    "InTransit": S.IN_TRANSIT,
    "OutForDelivery": S.OUT_FOR_DELIVERY,
    "AttemptFail": S.FAILED_ATTEMPT,
    "Delivered": S.DELIVERED,
    "AvailableForPickup": S.AVAILABLE_FOR_PICKUP,
    "Exception": S.EXCEPTION,
    "Expired": S.EXCEPTION,
}
# Sub-tags whose meaning is finer than their tag [R: AfterShip's published sub-tag list].
SUBTAGS: CodeTable = {
    "InTransit_002": (S.IN_TRANSIT, U.PICKED_UP),  # acceptance scan
    "InTransit_003": (S.IN_TRANSIT, U.ARRIVED_HUB),  # arrival scan
    "InTransit_004": (S.IN_TRANSIT, U.ARRIVED_DESTINATION_COUNTRY),
    "InTransit_005": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_RELEASED),  # clearance completed
    "InTransit_006": (S.IN_TRANSIT, U.IMPORT_CUSTOMS_PRESENTED),  # clearance started
    "InTransit_007": (S.IN_TRANSIT, U.DEPARTED_HUB),  # departure scan
    "AttemptFail_002": (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),
    "AttemptFail_003": (S.FAILED_ATTEMPT, U.RECIPIENT_UNAVAILABLE),  # business closed
    "Exception_002": (S.EXCEPTION, U.ADDRESS_ISSUE),  # customer moved
    "Exception_003": (S.EXCEPTION, U.REFUSED),
    "Exception_004": (S.EXCEPTION, U.IMPORT_CUSTOMS_HELD),  # delayed by customs clearance
    "Exception_005": (S.EXCEPTION, U.DELAYED),  # delayed by external factors
    "Exception_006": (S.EXCEPTION, U.DUTIES_PAYABLE),  # held for payment
    "Exception_007": (S.EXCEPTION, U.ADDRESS_ISSUE),  # incorrect address
    "Exception_008": (S.EXCEPTION, U.DELAYED),  # pickup missed
    "Exception_010": (S.EXCEPTION, U.RETURNING),
    "Exception_011": (S.RETURNED, None),
    "Exception_012": (S.EXCEPTION, U.DAMAGED),
    "Exception_013": (S.EXCEPTION, U.LOST),
    "Expired_001": (S.EXCEPTION, U.DELAYED),
}
# AfterShip slugs that differ from the Throughline carrier id (most are the same: usps, royal-mail).
SLUGS: dict[str, str] = {
    "la-poste-colissimo": "la-poste",
    "colissimo": "la-poste",
    "dhl-germany": "dhl",
    "dhl-global-mail": "dhl",
    "china-ems": "china-post",
    "sfb2c": "sf-express",
}


class AftershipAdapter:
    carrier = CARRIER
    name = "AfterShip Tracking (webhook)"

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
    tracking = doc.get("msg")
    if not isinstance(tracking, dict):
        return malformed(requested, "expected an object with a 'msg' tracking object")
    number = scalar(tracking.get("tracking_number"))
    if number is None:
        return malformed(requested, "msg has no usable 'tracking_number'")
    checkpoints = tracking.get("checkpoints")
    if checkpoints is not None and not isinstance(checkpoints, list):
        return malformed(number, "'checkpoints' is not an array")
    slug = scalar(tracking.get("slug"))
    route = Route(
        _country(tracking, "origin_country_region", "origin_country_iso3"),
        _country(tracking, "destination_country_region", "destination_country_iso3"),
    )
    names = _names(tracking)
    drafts, errors = read_scans(
        items(checkpoints),
        lambda raw: _read_checkpoint(raw, slug, route, names),
        number,
        "checkpoints",
    )
    following = obj(next(iter(items(tracking.get("next_couriers"))), None))
    next_slug = scalar(following.get("slug"))
    next_carrier = courier_id(CARRIER, next_slug, SLUGS)
    found = handoff(following.get("tracking_number"), number, next_carrier, "next_couriers")
    return finish(
        Shipment(CARRIER, number, raw_ref, source), drafts, route, found, next_slug, errors
    )


def _country(doc: dict[str, Any], *keys: str) -> str | None:
    return next((c for c in (country(doc.get(k)) for k in keys) if c), None)


def _names(tracking: dict[str, Any]) -> list[str]:
    customers = [obj(c).get("name") for c in items(tracking.get("customers"))]
    return personal_names(tracking.get("signed_by"), tracking.get("customer_name"), *customers)


def _read_checkpoint(raw: Any, slug: str | None, route: Route, names: list[str]) -> Draft:
    if not isinstance(raw, dict):
        raise InvalidInput("checkpoint is not an object")
    stamp = text(raw.get("checkpoint_time"))
    if not stamp:
        raise InvalidInput("checkpoint has no 'checkpoint_time'")
    where = location(
        city=raw.get("city"),
        region=raw.get("state"),
        postal_code=raw.get("zip") or raw.get("postal_code"),
        country_code=raw.get("country_region") or raw.get("country_iso3"),
        label=raw.get("location"),
        names=names,
    )
    iso2 = where.country if where else None
    description = redact(text(raw.get("message")) or text(raw.get("subtag_message")), names)
    tag, subtag = text(raw.get("tag")), text(raw.get("subtag"))
    status, substatus = lookup(SUBTAGS, subtag)
    status = status or TAGS.get(tag or subtag.partition("_")[0])
    status, substatus = classify(status, substatus, description)
    courier = scalar(raw.get("slug")) or slug
    return Draft(
        raw_timestamp=stamp,
        carrier_code=courier_code(courier, scalar(raw.get("raw_tag")) or subtag or tag or None),
        status=status,
        substatus=customs_side(substatus, description, iso2, route),
        description=description,
        location=where,
        time=resolve_iso(stamp, iso2),
        courier=courier,
    )
